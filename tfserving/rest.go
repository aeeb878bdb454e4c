package tfserving

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

// protoJSON prints protos as TF Serving's REST API does: proto field names, defaults shown.
var protoJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// Handler serves TF Serving's REST API under /v1/models/, plus /healthz and the Prometheus
// metrics at /metrics and at TF Serving's /monitoring/prometheus/metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/models/", s.modelAPI)
	mux.HandleFunc("/healthz", s.healthz)
	metrics := promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
	mux.Handle("/metrics", metrics)
	mux.Handle("/monitoring/prometheus/metrics", metrics)
	return s.recoverHTTP(mux)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if len(s.models.versions()) == 0 {
		http.Error(w, "no model version loaded yet\n", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// route is a parsed /v1/models/NAME[/versions/N|/labels/L][/metadata][:verb] path.
type route struct {
	spec     ModelSpec
	metadata bool
	verb     string
}

func (r route) endpoint() string {
	switch {
	case r.metadata:
		return "metadata"
	case r.verb == "":
		return "status"
	}
	return r.verb
}

func parseRoute(path string) (route, *Error) {
	var rt route
	rest := strings.TrimPrefix(path, "/v1/models/")
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, rt.verb = rest[:i], rest[i+1:]
	}
	parts := strings.Split(rest, "/")
	rt.spec.Name = parts[0]
	parts = parts[1:]
	if len(parts) >= 2 && (parts[0] == "versions" || parts[0] == "labels") {
		if parts[0] == "labels" {
			rt.spec.Label = parts[1]
		} else {
			v, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil || v <= 0 {
				return rt, errorf(codes.InvalidArgument, "malformed version %q in %s: versions are positive integers", parts[1], path)
			}
			rt.spec.Version = v
		}
		parts = parts[2:]
	}
	if len(parts) == 1 && parts[0] == "metadata" && rt.verb == "" {
		rt.metadata = true
		parts = nil
	}
	if rt.spec.Name == "" || len(parts) > 0 {
		return rt, errorf(codes.NotFound, "malformed request path %s: want /v1/models/NAME[/versions/N|/labels/L][/metadata|:predict|:classify_image]", path)
	}
	return rt, nil
}

func (s *Server) modelAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, perr := parseRoute(r.URL.Path)
	endpoint := rt.endpoint()
	if perr != nil {
		s.writeError(w, "unknown", perr, start)
		return
	}
	var body []byte
	var err error
	switch endpoint {
	case "status", "metadata":
		if r.Method != http.MethodGet {
			err = &Error{Code: codes.InvalidArgument, HTTP: http.StatusMethodNotAllowed, Msg: "use GET for model " + endpoint}
		} else if endpoint == "status" {
			body, err = s.restStatus(rt.spec)
		} else {
			body, err = s.restMetadata(rt.spec)
		}
	case "predict", "classify_image":
		if r.Method != http.MethodPost {
			err = &Error{Code: codes.InvalidArgument, HTTP: http.StatusMethodNotAllowed, Msg: "use POST for :" + endpoint}
			break
		}
		release := s.admit.enter() // before the body is read: it is what takes the memory
		if release == nil {
			err = s.admit.busy()
			break
		}
		defer release()
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		res, rerr := s.reserveBody(r)
		if rerr != nil {
			err = rerr
			break
		}
		defer res.release() // on a panic too
		if endpoint == "predict" {
			body, err = s.restPredict(ctx, w, r, rt.spec, res)
		} else {
			body, err = s.restClassifyImage(ctx, w, r, rt.spec, res)
		}
		// Before the answer goes out: a client that has it finds the budget given back.
		res.release()
	default:
		endpoint = "unknown"
		err = errorf(codes.InvalidArgument, "unsupported verb :%s: this server answers :predict and :classify_image", rt.verb)
	}
	if err != nil {
		s.writeError(w, endpoint, err, start)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
	s.metrics.observe(endpoint, "200", "", start)
}

// writeError answers TF Serving's way: {"error": "..."} with the mapped HTTP status.
func (s *Server) writeError(w http.ResponseWriter, endpoint string, err error, start time.Time) {
	status := restStatus(err)
	body, _ := json.Marshal(map[string]string{"error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
	s.metrics.observe(endpoint, strconv.Itoa(status), codeOf(err).String(), start)
}

func (s *Server) restStatus(spec ModelSpec) ([]byte, error) {
	resp, err := s.modelStatus(spec)
	if err != nil {
		return nil, err
	}
	return protoJSON.Marshal(resp)
}

// restMetadata is TF Serving's metadata answer, plus the model's emotions.json (classes,
// input size, normalisation) under metadata.emotions for clients that send raw pixels, when
// it has one.
func (s *Server) restMetadata(spec ModelSpec) ([]byte, error) {
	ms, sigs, sv, err := s.modelMetadata(spec)
	if err != nil {
		return nil, err
	}
	specJSON, err := protoJSON.Marshal(ms)
	if err != nil {
		return nil, err
	}
	sigJSON, err := protoJSON.Marshal(sigs)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{"signature_def": json.RawMessage(sigJSON)}
	if sv.model.HasMetadata() {
		meta["emotions"] = sv.model.Meta
	}
	return json.Marshal(map[string]any{"model_spec": json.RawMessage(specJSON), "metadata": meta})
}

func (s *Server) restPredict(ctx context.Context, w http.ResponseWriter, r *http.Request, spec ModelSpec, res *reservation) ([]byte, error) {
	raw, err := s.readBody(r, res)
	if err != nil {
		return nil, err
	}
	req, format, perr := parsePredictBody(raw)
	if perr != nil {
		// An unknown model or version says so even when the body is wrong too.
		if _, release, aerr := s.models.acquire(spec); aerr != nil {
			return nil, aerr
		} else {
			release()
		}
		return nil, perr
	}
	outputs, _, err := s.predict(ctx, spec, req.SignatureName, func(name string, sv *servable) (map[string]rawTensor, *Error) {
		_, sig, _ := sv.signature(name)
		return decodeInputs(req, format, name, sig, s.cfg.MaxRequestBytes)
	})
	if err != nil {
		return nil, err
	}
	return encodePredictResponse(outputs, format)
}

// restClassifyImage takes photos (a raw image body, or JSON {"instances": [{"b64": ...}]}),
// preprocesses them as `emotions predict` does and answers a list of Prediction objects. A
// photo that cannot be read gets its own error; the others are still classified.
func (s *Server) restClassifyImage(ctx context.Context, w http.ResponseWriter, r *http.Request, spec ModelSpec, res *reservation) ([]byte, error) {
	raw, err := s.readBody(r, res)
	if err != nil {
		return nil, err
	}
	images, ierr := imagesFromRequest(r, raw)
	if ierr != nil {
		return nil, ierr
	}
	sv, release, aerr := s.models.acquire(spec)
	if aerr != nil {
		return nil, aerr
	}
	defer release()
	c, err := sv.classifier(s.log)
	if err != nil {
		return nil, err
	}
	// The images become one float32 tensor: the same --max-request-bytes bound as :predict's.
	if maxImages := s.cfg.MaxRequestBytes / int64(4*c.Input.Values()); int64(len(images)) > maxImages {
		return nil, errorf(codes.InvalidArgument, "%d images in one request: at most %d fit the %d bytes of tensor data a request may hold (--max-request-bytes)",
			len(images), maxImages, s.cfg.MaxRequestBytes)
	}
	results := make([]preprocess.Result, len(images))
	for i, img := range images {
		if results[i], err = s.decodeImage(ctx, c.Prep, img); err != nil {
			return nil, err
		}
	}
	preds, err := c.Results(ctx, results)
	if err != nil {
		return nil, err
	}
	return json.Marshal(preds)
}

// decodeImage preprocesses one image once a decoding slot is free (Server.decoding).
func (s *Server) decodeImage(ctx context.Context, prep *preprocess.Preprocessor, img classify.Image) (preprocess.Result, error) {
	select {
	case s.decoding <- struct{}{}:
		defer func() { <-s.decoding }()
		return prep.Bytes(img.Name, img.Data), nil
	case <-ctx.Done():
		return preprocess.Result{}, contextError(ctx)
	}
}

// imagesFromRequest: a JSON body holds {"instances": [{"b64": "...", "file": "name"?}]};
// any other body is one image, named by ?file= (default "image").
func imagesFromRequest(r *http.Request, body []byte) ([]classify.Image, *Error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		if len(body) == 0 {
			return nil, errorf(codes.InvalidArgument, "empty body: send the image bytes (Content-Type image/jpeg, image/png, application/octet-stream)")
		}
		name := r.URL.Query().Get("file")
		if name == "" {
			name = "image"
		}
		return []classify.Image{{Name: name, Data: body}}, nil
	}
	var req struct {
		Instances []struct {
			B64  *string `json:"b64"`
			File string  `json:"file"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errorf(codes.InvalidArgument, "malformed JSON request body: %v", err)
	}
	if len(req.Instances) == 0 {
		return nil, errorf(codes.InvalidArgument, `want {"instances": [{"b64": "<base64 image>"}, ...]}`)
	}
	out := make([]classify.Image, len(req.Instances))
	for i, in := range req.Instances {
		if in.B64 == nil {
			return nil, errorf(codes.InvalidArgument, `instance %d has no "b64" image`, i)
		}
		data, err := base64.StdEncoding.DecodeString(*in.B64)
		if err != nil {
			return nil, errorf(codes.InvalidArgument, "instance %d: b64 is not base64: %v", i, err)
		}
		name := in.File
		if name == "" {
			name = fmt.Sprintf("instances[%d]", i)
		}
		out[i] = classify.Image{Name: name, Data: data}
	}
	return out, nil
}

// float32Bytes views x as TensorFlow's little-endian bytes without copying.
func float32Bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}
