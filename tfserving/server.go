package tfserving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Config is what `emotions serve` passes in. Exactly one of ModelBase and ModelDir is set.
type Config struct {
	ModelName string
	ModelBase string // TF Serving's --model_base_path: numbered version directories
	ModelDir  string // a single model directory, served as version 1
	// NumVersions is how many of the highest versions are served (TF Serving's
	// latest{num_versions}); more than 1 lets version labels point at older versions.
	NumVersions   int
	VersionLabels map[string]int64
	Poll          time.Duration // how often ModelBase is rescanned for new versions
	// VersionSettle is how long a new version's files must stay unchanged (no file added,
	// grown or touched) before it is loaded: an upload copying it file by file is waited for.
	VersionSettle time.Duration
	// LoadRetryInterval is the wait after a version's first failed attempt (incomplete, load
	// or warm-up error), doubled after each further one; a change to its files also brings a
	// new attempt. MaxLoadRetries bounds the attempts on unchanged files (TF Serving's
	// --max_num_load_retries).
	LoadRetryInterval time.Duration
	MaxLoadRetries    int
	Batch             BatchOptions
	// MaxRequestBytes bounds one request: its REST body or gRPC message, and the tensor data
	// it decodes to (a few bytes of protobuf can claim any shape, one JSON digit is 4 bytes
	// of float32), summed over its inputs.
	MaxRequestBytes int64
	// MaxInFlight bounds the requests being read, decoded, queued or run at once, REST and
	// gRPC together; beyond it a request is refused at once. Memory stays within about
	// MaxInFlight x 4 x MaxRequestBytes above the model's own (README, "Limits").
	MaxInFlight int
	// MaxRequestMemory bounds the bytes of the requests in progress, REST bodies and gRPC
	// messages together: each reserves its size (a REST body its Content-Length, a chunked one
	// MaxRequestBytes until read) before it is read or decoded. One that does not fit waits
	// in FIFO order for AdmissionWait, then is refused (429 / RESOURCE_EXHAUSTED). It is at
	// least MaxRequestBytes; below MaxInFlight x MaxRequestBytes it is what bounds the memory
	// requests take: about 4 x MaxRequestMemory (README, "Limits").
	MaxRequestMemory int64
	AdmissionWait    time.Duration
	// MaxImagePixels: :classify_image refuses images whose header declares more pixels.
	MaxImagePixels int64
	// ClassifyCrop overrides how :classify_image crops photos (savedmodel.CropFace, CropCenter,
	// CropNone); "" uses each model's emotions.json (a face crop unless it says otherwise).
	ClassifyCrop string
	// ReadHeaderTimeout bounds a REST request's headers and a gRPC connection's handshake;
	// ReadTimeout a whole REST request (headers and body) and a gRPC message's arrival;
	// IdleTimeout a connection with no request in progress. Slow clients are cut off by them.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	RequestTimeout    time.Duration // from a request's arrival to its answer
	Session           tfgraph.Options
	Log               *log.Logger // nil: stderr

	clock clock // nil: the real one; tests drive their own
}

// DefaultConfig has the flag defaults of `emotions serve`.
func DefaultConfig() Config {
	return Config{
		NumVersions:       1,
		Poll:              time.Second,
		VersionSettle:     time.Second,
		LoadRetryInterval: 5 * time.Second,
		MaxLoadRetries:    5,
		Batch:             BatchOptions{MaxBatchSize: 64, Timeout: 2 * time.Millisecond, Threads: 2, MaxQueued: 1024},
		MaxRequestBytes:   64 << 20,
		MaxInFlight:       32,
		MaxRequestMemory:  256 << 20,
		AdmissionWait:     500 * time.Millisecond,
		MaxImagePixels:    preprocess.DefaultMaxPixels,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		RequestTimeout:    30 * time.Second,
	}
}

// maxHeaderBytes bounds a REST request's headers (beyond: 431) and a gRPC request's metadata.
const maxHeaderBytes = 1 << 20

// Server answers TF Serving's REST and gRPC APIs for one model.
type Server struct {
	cfg     Config
	models  *registry
	metrics *metrics
	log     *log.Logger
	admit   *admission
	budget  *memoryBudget
	memory  *memoryReturner
	// decoding bounds the images being decoded at once: a photo of --max-image-pixels takes
	// ~10 bytes a pixel while it is decoded, and more decoders than cores add no speed.
	decoding chan struct{}
	// testHook, when set, runs at the start of every predict (tests inject panics with it).
	testHook atomic.Pointer[func()]
}

// New loads the model's current versions. A model base with no version yet is not an
// error: versions are picked up as they appear, as TF Serving does.
func New(cfg Config) (*Server, error) {
	if cfg.ModelName == "" {
		return nil, errors.New("no model name")
	}
	if (cfg.ModelBase == "") == (cfg.ModelDir == "") {
		return nil, errors.New("give exactly one of a model base directory and a single model directory")
	}
	if cfg.NumVersions < 1 {
		cfg.NumVersions = 1
	}
	logger := cfg.Log
	if logger == nil {
		logger = log.New(os.Stderr, "serve: ", log.LstdFlags)
	}
	if cfg.MaxRequestBytes <= 0 {
		return nil, fmt.Errorf("max request bytes %d: must be positive", cfg.MaxRequestBytes)
	}
	if cfg.MaxRequestMemory < cfg.MaxRequestBytes {
		return nil, fmt.Errorf("max request memory %d: must be at least max request bytes (%d), or a request of that size could never be admitted", cfg.MaxRequestMemory, cfg.MaxRequestBytes)
	}
	s := &Server{cfg: cfg, log: logger, admit: newAdmission(cfg.MaxInFlight), decoding: make(chan struct{}, runtime.GOMAXPROCS(0)),
		budget: newMemoryBudget(cfg.MaxRequestMemory, cfg.AdmissionWait), memory: newMemoryReturner(memoryReturnDelay)}
	// A burst is over when the reservations fall to zero after a maximum-size request's worth
	// of bytes: light traffic of small requests does not return memory after every request.
	s.budget.drained, s.budget.drainAfter = s.memory.schedule, cfg.MaxRequestBytes
	s.metrics = newMetrics(func() float64 { return float64(len(s.models.versions())) })
	if cfg.clock == nil {
		cfg.clock = realClock{}
	}
	s.metrics.registerAdmission(s)
	s.models = &registry{
		name:       cfg.ModelName,
		base:       cfg.ModelBase,
		dir:        cfg.ModelDir,
		keep:       cfg.NumVersions,
		labels:     cfg.VersionLabels,
		log:        logger,
		clock:      cfg.clock,
		settle:     max(cfg.VersionSettle, 0),
		retry:      max(cfg.LoadRetryInterval, time.Millisecond),
		maxRetries: max(cfg.MaxLoadRetries, 0),
		metrics:    s.metrics,
		loaded:     map[int64]*servable{},
		pending:    map[int64]*versionState{},
		load: func(dir string, version int64) (*servable, error) {
			return loadServable(dir, version, cfg, s.metrics.observeBatch)
		},
	}
	s.models.unloaded = s.memory.schedule
	if err := s.models.sync(); err != nil {
		return nil, err
	}
	if err := s.models.waitForSettling(); err != nil {
		return nil, err
	}
	if cfg.ModelDir != "" && len(s.models.versions()) == 0 {
		return nil, fmt.Errorf("model %s did not load (see the log above)", cfg.ModelDir)
	}
	if len(s.models.versions()) == 0 {
		if onDisk, _ := Versions(cfg.ModelBase); len(onDisk) > 0 {
			// They are on their way (settling) or failed: their lines above say which and why.
			logger.Printf("%s: no version serves yet; versions on disk: %v (see their state above); the poller retries them", cfg.ModelBase, onDisk)
		} else {
			logger.Printf("%s: no version yet; waiting for BASE/<number>/saved_model.pb to appear", cfg.ModelBase)
		}
	}
	for label, v := range cfg.VersionLabels {
		if !slices.Contains(s.models.versions(), v) {
			logger.Printf("version label %s=%d: version %d is not loaded now (with --num-versions %d only the highest are)", label, v, v, cfg.NumVersions)
		}
	}
	return s, nil
}

// Serve answers on the listeners (grpcLn may be nil) until ctx ends, then stops taking
// requests, finishes the ones in flight and unloads the model.
func (s *Server) Serve(ctx context.Context, httpLn, grpcLn net.Listener) error {
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go s.models.poll(pollCtx, s.cfg.Poll)

	httpSrv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.writeTimeout(),
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          s.log,
	}
	errc := make(chan error, 2)
	go func() { errc <- httpSrv.Serve(httpLn) }()
	var grpcSrv *grpc.Server
	if grpcLn != nil {
		grpcSrv = s.GRPCServer()
		go func() { errc <- grpcSrv.Serve(grpcLn) }()
	}
	s.log.Printf("%s; REST on http://%s, gRPC on %s", s.models.describe(), httpLn.Addr(), addrOrOff(grpcLn))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	}
	s.log.Printf("shutting down: finishing requests in flight")
	stopPoll()
	grace, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout+5*time.Second)
	defer cancel()
	if grpcSrv != nil {
		go func() { <-grace.Done(); grpcSrv.Stop() }()
		grpcSrv.GracefulStop()
	}
	if shutErr := httpSrv.Shutdown(grace); shutErr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", shutErr)
	}
	s.models.closeAll()
	s.memory.stop()
	return err
}

func addrOrOff(ln net.Listener) string {
	if ln == nil {
		return "(off)"
	}
	return ln.Addr().String()
}

// ParseVersionLabels reads "stable=1,canary=2".
func ParseVersionLabels(s string) (map[string]int64, error) {
	out := map[string]int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		label, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || label == "" || err != nil || v <= 0 {
			return nil, fmt.Errorf("version label %q: want LABEL=VERSION, e.g. stable=1", part)
		}
		if _, dup := out[label]; dup {
			return nil, fmt.Errorf("version label %q given twice", label)
		}
		out[label] = v
	}
	return out, nil
}

// memoryReturnDelay: memory is returned this long after the last unload or drained burst.
const memoryReturnDelay = 2 * time.Second

// reserveBody reserves a REST body's memory before it is read: its Content-Length, or
// --max-request-bytes when chunked (readBody shrinks that to the size read). A declared
// length over the limit reserves nothing: readBody refuses it from the header.
func (s *Server) reserveBody(r *http.Request) (*reservation, error) {
	n := r.ContentLength
	if n >= 0 {
		s.metrics.requestBytes.Observe(float64(n))
	}
	if n > s.cfg.MaxRequestBytes {
		return nil, nil
	}
	if n < 0 {
		n = s.cfg.MaxRequestBytes
	}
	res, err := s.budget.reserve(r.Context(), n)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// readBody reads a body of at most --max-request-bytes: a larger one is refused with 413,
// from its Content-Length when it declares one, before anything is read.
func (s *Server) readBody(r *http.Request, res *reservation) ([]byte, error) {
	buf, err := s.readBodyBytes(r)
	if err == nil && r.ContentLength < 0 { // chunked: its size is known now
		res.shrink(int64(len(buf)))
		s.metrics.requestBytes.Observe(float64(len(buf)))
	}
	return buf, err
}

func (s *Server) readBodyBytes(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxRequestBytes
	tooLarge := &Error{Code: codes.ResourceExhausted, HTTP: http.StatusRequestEntityTooLarge,
		Msg: fmt.Sprintf("request body larger than %d bytes (--max-request-bytes)", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	// A declared length (checked above) sizes the buffer once; a chunked body grows it.
	buf := make([]byte, 0, max(r.ContentLength, 0)+512)
	body := io.LimitReader(r.Body, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, tooLarge
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return nil, &Error{Code: codes.DeadlineExceeded, HTTP: http.StatusRequestTimeout,
				Msg: fmt.Sprintf("request body not received within %s (--read-timeout)", s.cfg.ReadTimeout)}
		}
		if err != nil {
			return nil, errorf(codes.InvalidArgument, "read request body: %v", err)
		}
	}
}
