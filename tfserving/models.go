package tfserving

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/grpc/codes"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

// DefaultSignature is what a request without signature_name runs, as in TF Serving.
const DefaultSignature = "serving_default"

// servable is one loaded version of the model.
type servable struct {
	version    int64
	model      *tfgraph.Model
	signatures map[string]*corepb.SignatureDef // only the inference ones: see servedSignatures
	batch      *batcher
	refs       sync.WaitGroup // requests using it; unloading waits for them
	runErrors  runErrorLog

	maxImagePixels int64
	classifyCrop   string
	classifierOnce sync.Once
	classify       *classify.Classifier
	classifyErr    error
}

// loadServable loads the version at dir once it is whole (checkComplete) and has answered
// its warm-up requests; until then it takes no traffic. Its errors say which of the three
// stages failed.
func loadServable(dir string, version int64, cfg Config, observe func(rows, requests int)) (*servable, error) {
	incomplete := func(err error) error {
		return &loadError{stage: "incomplete", code: codes.FailedPrecondition, err: fmt.Errorf("incomplete: %w", err)}
	}
	mg, err := tfgraph.ReadMetaGraph(dir)
	if err != nil {
		return nil, incomplete(err)
	}
	if err := checkComplete(dir, mg); err != nil {
		return nil, incomplete(err)
	}
	m, err := tfgraph.LoadSavedModel(dir, cfg.Session)
	if err != nil {
		return nil, &loadError{stage: "load", err: err}
	}
	sigs := servedSignatures(mg, m)
	if len(sigs) == 0 {
		m.Close()
		return nil, &loadError{stage: "load", code: codes.FailedPrecondition, err: fmt.Errorf("%s: no %s or serve signature to serve", dir, DefaultSignature)}
	}
	s := &servable{version: version, model: m, signatures: sigs, batch: newBatcher(m.Run, cfg.Batch, observe), maxImagePixels: cfg.MaxImagePixels, classifyCrop: cfg.ClassifyCrop}
	if err := s.warmUp(dir, cfg.MaxRequestBytes); err != nil {
		s.close()
		return nil, &loadError{stage: "warmup", err: err}
	}
	return s, nil
}

// servedSignatures are, for a model of ours (with emotions.json), serving_default and the
// metadata's "serve" one: a training model passed with --model also has train_step & co.,
// which change the weights, never served. Any other SavedModel (a Keras model.export(), a
// tf.saved_model.save) is served with all its signatures, as TF Serving does.
func servedSignatures(mg *corepb.MetaGraphDef, m *tfgraph.Model) map[string]*corepb.SignatureDef {
	out := map[string]*corepb.SignatureDef{}
	for name, def := range mg.GetSignatureDef() {
		if _, ok := m.Signature(name); !ok {
			continue // TensorFlow's __saved_model_init_op
		}
		if !m.HasMetadata() || name == DefaultSignature || name == m.Meta.Signatures["serve"] {
			out[name] = def
		}
	}
	return out
}

// describe says what was loaded and what is served, for the log.
func (s *servable) describe() string {
	kind := "a model with " + savedmodel.MetadataFile
	if !s.model.HasMetadata() {
		kind = "a SavedModel without " + savedmodel.MetadataFile
	}
	var sigs []string
	for _, name := range sortedKeys(s.signatures) {
		if spec, ok := s.model.SignatureSpec(name); ok {
			sigs = append(sigs, spec.String())
		}
	}
	return kind + ": signatures " + strings.Join(sigs, "; ")
}

// signature resolves a request's signature_name ("" = serving_default).
func (s *servable) signature(name string) (string, tf.Signature, *Error) {
	if name == "" {
		name = DefaultSignature
	}
	sig, ok := s.model.Signature(name)
	if _, served := s.signatures[name]; !ok || !served {
		return name, sig, errorf(codes.InvalidArgument, "serving signature key %q not found (this model serves %v)", name, sortedKeys(s.signatures))
	}
	return name, sig, nil
}

// imageSignature is the one :classify_image runs and the warm-up without a warm-up file
// runs: serving_default when the model has it, else the metadata's serve one, else (a
// SavedModel without metadata) the first served by name.
func (s *servable) imageSignature() string {
	if _, ok := s.signatures[DefaultSignature]; ok {
		return DefaultSignature
	}
	if s.model.HasMetadata() {
		return s.model.Meta.Signatures["serve"]
	}
	return sortedKeys(s.signatures)[0]
}

// errNoImageMetadata is :classify_image's answer for a model without emotions.json: nothing
// says how to turn a photo into its input (size, channels, pixel scale, crop).
var errNoImageMetadata = errorf(codes.FailedPrecondition, "this model has no image preprocessing metadata (the %s "+
	"of an image classifier: input size, pixel scale, classes): :classify_image needs it; send its input tensors to :predict instead", savedmodel.MetadataFile)

// classifier is :classify_image's pipeline, made on first use (only that endpoint needs a
// preprocessor): the one `emotions predict` runs, with this version's signature run through
// its request batcher, so photos from concurrent requests share session runs.
func (s *servable) classifier(logger *log.Logger) (*classify.Classifier, error) {
	s.classifierOnce.Do(func() {
		if !s.model.HasMetadata() || s.model.Generic() { // a generic model's emotions.json has no image fields
			s.classifyErr = errNoImageMetadata
			return
		}
		opts := preprocess.OptionsFor(s.model.Meta)
		opts.MaxPixels = s.maxImagePixels
		if s.classifyCrop != "" {
			opts.Crop = s.classifyCrop
		}
		prep, err := preprocess.New(opts)
		if err != nil {
			s.classifyErr = fmt.Errorf("preprocessor: %w", err)
			return
		}
		in := preprocess.InputOf(s.model.Meta)
		name := s.imageSignature()
		_, sig, serr := s.signature(name)
		if serr != nil {
			s.classifyErr = serr
			return
		}
		inputs := sortedKeys(sig.Inputs)
		if len(inputs) != 1 {
			s.classifyErr = errorf(codes.FailedPrecondition, "signature %s has %d inputs; :classify_image needs one image input", name, len(inputs))
			return
		}
		predict := func(ctx context.Context, x []float32, n int) ([]float32, error) {
			t := rawTensor{dtype: tf.Float, shape: in.Shape(n), data: float32Bytes(x)}
			batch := map[string]rawTensor{inputs[0]: t}
			if err := checkInputs(name, sig, batch); err != nil {
				return nil, err
			}
			outputs, err := s.batch.submit(ctx, name, batch)
			if err != nil {
				if codeOf(err) == codes.Internal {
					s.runErrors.log(logger, time.Now(), fmt.Sprintf("version %d signature %s", s.version, name), err)
				}
				return nil, err
			}
			out, ok := outputs["probabilities"]
			if !ok && len(outputs) == 1 {
				out = outputs[sortedKeys(outputs)[0]]
			}
			vals, err := out.values()
			if err != nil {
				return nil, fmt.Errorf("model output: %w", err)
			}
			probs := make([]float32, len(vals))
			for i, v := range vals {
				probs[i] = float32(v)
			}
			return probs, nil
		}
		s.classify = &classify.Classifier{Prep: prep, Input: in, Classes: s.model.Meta.Classes, Predict: predict}
	})
	return s.classify, s.classifyErr
}

func (s *servable) close() {
	s.refs.Wait()
	s.batch.close()
	s.model.Close()
}

// ModelSpec picks a version: by number, by label, or (neither) the highest loaded.
type ModelSpec struct {
	Name    string
	Version int64
	Label   string
}

// registry keeps the served versions of one model in step with the disk, following TF
// Serving's "latest" version policy: the highest Keep versions that are whole and work are
// served. A new version takes traffic only once its files have stopped changing, its
// checkpoint is complete and its warm-up requests succeed (lifecycle.go); until then, and
// when it fails, the versions already served stay in service. Older ones are unloaded once
// a newer one is ready and their in-flight requests finish.
type registry struct {
	name   string
	base   string // versions are its numbered subdirectories
	dir    string // or: this one directory, served as version 1
	keep   int
	labels map[string]int64
	load   func(dir string, version int64) (*servable, error)
	log    *log.Logger
	// unloaded is told after each version is unloaded (the server hands memory back then).
	unloaded func()

	clock      clock
	settle     time.Duration // a version's files must not change for this long before it is loaded
	retry      time.Duration // the first wait after a failed attempt; doubled after each
	maxRetries int           // attempts on unchanged files after the first failed one
	metrics    *metrics

	syncMu   sync.Mutex // one sync at a time: New's and the poller's
	mu       sync.RWMutex
	loaded   map[int64]*servable
	pending  map[int64]*versionState // versions on disk not served: waiting, loading or failed
	orphaned int64                   // a served version gone from disk, kept until another is ready
	unloads  sync.WaitGroup
}

// acquire returns the servable for spec; the caller must call release when done with it.
func (r *registry) acquire(spec ModelSpec) (s *servable, release func(), err *Error) {
	version, err := r.resolve(spec)
	if err != nil {
		return nil, nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if version == 0 {
		version = r.latestLocked()
		if version == 0 {
			return nil, nil, errorf(codes.NotFound, "model %s has no version loaded yet", r.name)
		}
	}
	s, ok := r.loaded[version]
	if !ok {
		return nil, nil, errorf(codes.NotFound, "model %s version %d is not loaded (loaded: %v)", r.name, version, r.versionsLocked())
	}
	s.refs.Add(1)
	return s, s.refs.Done, nil
}

// resolve checks spec's model name and turns its label into a version (0: none asked for).
func (r *registry) resolve(spec ModelSpec) (int64, *Error) {
	if spec.Name != r.name {
		return 0, errorf(codes.NotFound, "model %q not found: this server serves %q", spec.Name, r.name)
	}
	if spec.Label == "" {
		return spec.Version, nil
	}
	v, ok := r.labels[spec.Label]
	if !ok {
		return 0, errorf(codes.NotFound, "model %s has no version label %q (labels: %v)", r.name, spec.Label, sortedKeys(r.labels))
	}
	return v, nil
}

func (r *registry) latestLocked() int64 {
	var top int64
	for v := range r.loaded {
		top = max(top, v)
	}
	return top
}

func (r *registry) versionsLocked() []int64 {
	out := make([]int64, 0, len(r.loaded))
	for v := range r.loaded {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}

// versions lists the loaded versions, highest first.
func (r *registry) versions() []int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.versionsLocked()
}

// sync walks the versions on disk from the highest down until Keep of them are served: each
// one not served yet is loaded once it is ready (settled, complete, warmed up) and skipped
// while it is not, so an older version keeps serving meanwhile. Then the served versions the
// policy no longer wants are unloaded. Loading happens outside the lock: requests keep being
// served by the old versions.
func (r *registry) sync() error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	onDisk, err := r.onDisk()
	if err != nil {
		return err
	}
	visited := map[int64]bool{}
	served := 0
	for i := len(onDisk) - 1; i >= 0 && served < r.keep; i-- {
		v := onDisk[i]
		visited[v] = true
		if r.isLoaded(v) || r.tryLoad(v) {
			served++
		}
	}
	r.forget(visited)
	r.unloadUnwanted(onDisk)
	return nil
}

func (r *registry) isLoaded(v int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded[v] != nil
}

func (r *registry) versionDir(v int64) string {
	if r.dir != "" {
		return r.dir
	}
	return filepath.Join(r.base, fmt.Sprint(v))
}

// unloadUnwanted unloads the served versions that are not among the highest Keep both served
// and on disk. A served version removed from disk stays while no other version is served:
// rolling back by deleting a version swaps to the older one once that is ready.
func (r *registry) unloadUnwanted(onDisk []int64) {
	r.mu.Lock()
	var candidates []int64
	for _, v := range onDisk {
		if r.loaded[v] != nil {
			candidates = append(candidates, v)
		}
	}
	keep := map[int64]bool{}
	for i := len(candidates) - 1; i >= 0 && len(keep) < r.keep; i-- {
		keep[candidates[i]] = true
	}
	orphan := int64(0)
	if len(keep) == 0 && len(r.loaded) > 0 {
		orphan = r.latestLocked()
		keep[orphan] = true
	}
	var dropped []*servable
	for v, s := range r.loaded {
		if !keep[v] {
			delete(r.loaded, v)
			dropped = append(dropped, s)
		}
	}
	announce := orphan != 0 && orphan != r.orphaned
	r.orphaned = orphan
	r.mu.Unlock()
	if announce {
		r.log.Printf("model %s version %d: removed from disk; still served until another version is ready", r.name, orphan)
	}
	for _, s := range dropped {
		r.log.Printf("model %s version %d: unloading (no longer the latest, or removed)", r.name, s.version)
		r.metrics.forgetVersion(r.name, s.version)
		r.unloads.Add(1)
		go func() {
			defer r.unloads.Done()
			s.close()
			if r.unloaded != nil {
				r.unloaded()
			}
		}()
	}
}

// onDisk lists the versions present, ascending.
func (r *registry) onDisk() ([]int64, error) {
	if r.dir != "" {
		return []int64{1}, nil
	}
	return Versions(r.base)
}

// poll re-syncs with the disk every interval until ctx ends.
func (r *registry) poll(ctx context.Context, every time.Duration) {
	if r.dir != "" || every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := r.sync(); err != nil {
				r.log.Printf("model %s: poll %s: %v", r.name, r.base, err)
			}
		}
	}
}

// closeAll unloads every version after its requests finish.
func (r *registry) closeAll() {
	r.mu.Lock()
	all := r.loaded
	r.loaded = map[int64]*servable{}
	r.mu.Unlock()
	for _, s := range all {
		s.close()
	}
	r.unloads.Wait()
}

// describe is a one-line summary for logs.
func (r *registry) describe() string {
	src := r.base
	if r.dir != "" {
		src = r.dir
	}
	return fmt.Sprintf("model %s from %s, versions %v", r.name, src, strings.Trim(fmt.Sprint(r.versions()), "[]"))
}
