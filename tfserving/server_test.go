package tfserving

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

type testServer struct {
	srv  *Server
	url  string // http://127.0.0.1:port/v1/models/emo
	root string // http://127.0.0.1:port
	grpc string // 127.0.0.1:port
}

// startServer serves cfg (ModelName emo) on loopback ports until the test ends.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cfg.ModelName = "emo"
	cfg.Session = tfgraph.Options{Device: "cpu"}
	if cfg.Log == nil {
		cfg.Log = log.New(testWriter{t}, "", 0)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, httpLn, grpcLn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		// A later test's listener may get this port: no kept-alive connection to this server
		// may be waiting in the shared client's pool for it.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	root := "http://" + httpLn.Addr().String()
	return &testServer{srv: srv, root: root, url: root + "/v1/models/emo", grpc: grpcLn.Addr().String()}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// call does one request (as send does: see there why) and decodes the JSON answer into out
// (if not nil).
func call(t *testing.T, method, url, contentType string, body []byte, out any) (int, string) {
	t.Helper()
	code, raw, err := send(method, url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && code == http.StatusOK {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			t.Fatalf("%s %s: %v in %.300s", method, url, err, raw)
		}
	}
	return code, raw
}

// nested reshapes n flat images to [n][S][S][3] lists, as a client's tolist() gives.
func nested(x []float32, n, side int) [][][][]float32 {
	out := make([][][][]float32, n)
	i := 0
	for a := range out {
		out[a] = make([][][]float32, side)
		for b := range out[a] {
			out[a][b] = make([][]float32, side)
			for c := range out[a][b] {
				out[a][b][c] = x[i : i+3]
				i += 3
			}
		}
	}
	return out
}

func flatten(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func exportTo(t *testing.T, model, base string, version int64) {
	t.Helper()
	if _, err := Export(model, base, version); err != nil {
		t.Fatal(err)
	}
}

func wantError(t *testing.T, what string, status int, body string, wantStatus int, wantIn string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("%s: body %q is not TF Serving's {\"error\": ...}", what, body)
	}
	if status != wantStatus || !strings.Contains(e.Error, wantIn) {
		t.Errorf("%s: %d %q, want %d and an error mentioning %q", what, status, e.Error, wantStatus, wantIn)
	}
}

func TestRESTPredictStatusMetadataErrors(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	cfg.MaxRequestBytes = 4 << 20
	ts := startServer(t, cfg)

	var status struct {
		ModelVersionStatus []struct {
			Version string
			State   string
			Status  struct {
				ErrorCode    string `json:"error_code"`
				ErrorMessage string `json:"error_message"`
			}
		} `json:"model_version_status"`
	}
	if code, body := call(t, "GET", ts.url, "", nil, &status); code != 200 || len(status.ModelVersionStatus) != 1 ||
		status.ModelVersionStatus[0].Version != "1" || status.ModelVersionStatus[0].State != "AVAILABLE" ||
		status.ModelVersionStatus[0].Status.ErrorCode != "OK" {
		t.Fatalf("status: %d %s", code, body)
	}
	if code, body := call(t, "GET", ts.url+"/versions/1", "", nil, nil); code != 200 || !strings.Contains(body, `"AVAILABLE"`) {
		t.Fatalf("version status: %d %s", code, body)
	}

	var meta struct {
		ModelSpec struct{ Name, Version string } `json:"model_spec"`
		Metadata  struct {
			SignatureDef struct {
				SignatureDef map[string]struct {
					Inputs map[string]struct {
						Dtype       string
						TensorShape struct{ Dim []struct{ Size string } } `json:"tensor_shape"`
					}
					Outputs    map[string]json.RawMessage
					MethodName string `json:"method_name"`
				} `json:"signature_def"`
			} `json:"signature_def"`
			Emotions struct{ Classes []string }
		}
	}
	if code, body := call(t, "GET", ts.url+"/metadata", "", nil, &meta); code != 200 {
		t.Fatalf("metadata: %d %s", code, body)
	}
	sd, ok := meta.Metadata.SignatureDef.SignatureDef[DefaultSignature]
	if !ok || meta.ModelSpec.Name != "emo" || meta.ModelSpec.Version != "1" || sd.Inputs["images"].Dtype != "DT_FLOAT" ||
		len(sd.Inputs["images"].TensorShape.Dim) != 4 || sd.Outputs["probabilities"] == nil || sd.MethodName != "tensorflow/serving/predict" {
		t.Fatalf("metadata: %+v", meta)
	}
	if _, train := meta.Metadata.SignatureDef.SignatureDef["train_step"]; train || len(meta.Metadata.Emotions.Classes) != 4 {
		t.Fatalf("metadata signatures %v, classes %v", meta.Metadata.SignatureDef.SignatureDef, meta.Metadata.Emotions.Classes)
	}

	x, n := randomImages(80*80*3, 3, 5)
	want := directPredict(t, model, x, n)
	rowBody, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	var rows struct{ Predictions [][]float32 }
	if code, body := call(t, "POST", ts.url+":predict", "application/json", rowBody, &rows); code != 200 || !closeEnough(flatten(rows.Predictions), want, 1e-5) {
		t.Fatalf("row predict: %d %.300s; want %v", code, body, want)
	}
	colBody, _ := json.Marshal(map[string]any{"inputs": map[string]any{"images": nested(x, n, 80)}, "signature_name": "serving_default"})
	var cols struct{ Outputs [][]float32 }
	if code, body := call(t, "POST", ts.url+"/versions/1:predict", "application/json", colBody, &cols); code != 200 || !closeEnough(flatten(cols.Outputs), want, 1e-5) {
		t.Fatalf("columnar predict: %d %.300s", code, body)
	}
	named, _ := json.Marshal(map[string]any{"instances": []any{map[string]any{"images": nested(x, 1, 80)[0]}}})
	if code, body := call(t, "POST", ts.url+":predict", "", named, &rows); code != 200 || !closeEnough(rows.Predictions[0], want[:4], 1e-5) {
		t.Fatalf("row predict with named inputs: %d %.300s", code, body)
	}

	code, body := call(t, "POST", ts.url+":predict", "application/json", []byte("{not json"), nil)
	wantError(t, "malformed JSON", code, body, 400, "malformed JSON")
	code, body = call(t, "POST", ts.url+":predict", "application/json", []byte(`{"instances": [[1, 2, 3]]}`), nil)
	wantError(t, "wrong shape", code, body, 400, "shape [1,3], want [-1,80,80,3]")
	code, body = call(t, "POST", ts.url+":predict", "application/json", []byte(`{"instances": [[1, 2], [3]]}`), nil)
	wantError(t, "ragged", code, body, 400, "instance 1 has shape")
	code, body = call(t, "POST", ts.url+":predict", "application/json", []byte(`{"signature_name": "train_step", "instances": [1]}`), nil)
	wantError(t, "training signature", code, body, 400, "train_step")
	code, body = call(t, "POST", ts.root+"/v1/models/nope:predict", "application/json", rowBody, nil)
	wantError(t, "unknown model", code, body, 404, `"nope" not found`)
	code, body = call(t, "POST", ts.url+"/versions/99:predict", "application/json", rowBody, nil)
	wantError(t, "unknown version", code, body, 404, "version 99 is not loaded")
	code, body = call(t, "GET", ts.url+"/versions/99", "", nil, nil)
	wantError(t, "unknown version status", code, body, 404, "version 99")
	code, body = call(t, "POST", ts.url+"/labels/stable:predict", "application/json", rowBody, nil)
	wantError(t, "unknown label", code, body, 404, `label "stable"`)
	code, body = call(t, "POST", ts.url+":predict", "application/json", bytes.Repeat([]byte(" "), 5<<20), nil)
	wantError(t, "oversize body", code, body, 413, "--max-request-bytes")
	code, body = call(t, "GET", ts.url+":predict", "", nil, nil)
	wantError(t, "GET predict", code, body, 405, "POST")

	if code, body := call(t, "GET", ts.root+"/healthz", "", nil, nil); code != 200 {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, metrics := call(t, "GET", ts.root+"/metrics", "", nil, nil)
	for _, want := range []string{`emotions_serve_requests_total{code="200",endpoint="predict"}`, `emotions_serve_requests_total{code="404",endpoint="predict"}`,
		"emotions_serve_batch_size_bucket", "emotions_serve_request_duration_seconds_bucket", `emotions_serve_request_errors_total{endpoint="predict",error_code="InvalidArgument"}`} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestVersionsLabelsAndHotReload(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	untrained, trained := testutil.TinyModel(t), trainedModel(t)
	exportTo(t, untrained, base, 1)
	exportTo(t, trained, base, 2)
	x, n := randomImages(80*80*3, 1, 9)
	wantUntrained, wantTrained := directPredict(t, untrained, x, n), directPredict(t, trained, x, n)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	predict := func(ts *testServer, path string) ([]float32, int, string) {
		var out struct{ Predictions [][]float32 }
		code, raw := call(t, "POST", ts.url+path+":predict", "application/json", body, &out)
		return flatten(out.Predictions), code, raw
	}

	cfg := DefaultConfig()
	cfg.ModelBase = base
	cfg.NumVersions = 2
	cfg.VersionLabels = map[string]int64{"stable": 1, "canary": 2}
	cfg.Poll = 0
	ts := startServer(t, cfg)
	for path, want := range map[string][]float32{"": wantTrained, "/versions/2": wantTrained, "/versions/1": wantUntrained,
		"/labels/stable": wantUntrained, "/labels/canary": wantTrained} {
		if got, code, raw := predict(ts, path); code != 200 || !closeEnough(got, want, 1e-5) {
			t.Errorf("%s:predict: %d %.200s, want %v", path, code, raw, want)
		}
	}

	// Latest policy with one version: only 2 is served; then 3 appears and replaces it.
	cfg = DefaultConfig()
	cfg.ModelBase = base
	cfg.Poll = 50 * time.Millisecond
	ts = startServer(t, cfg)
	if _, code, raw := predict(ts, "/versions/1"); code != 404 {
		t.Errorf("version 1 under the latest policy: %d %s, want 404", code, raw)
	}
	exportTo(t, untrained, base, 3)
	// The poller picks version 3 up within a Poll or two; the bound only catches a hang.
	deadline := time.Now().Add(slowBound)
	for {
		got, code, _ := predict(ts, "")
		if code == 200 && closeEnough(got, wantUntrained, 1e-5) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("version 3 was not picked up: last answer %d %v", code, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, code, _ := predict(ts, "/versions/3"); code != 200 {
		t.Errorf("version 3: %d", code)
	}
	for deadline := time.Now().Add(slowBound); ; time.Sleep(20 * time.Millisecond) {
		if _, code, _ := predict(ts, "/versions/2"); code == 404 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("version 2 still served after 3 appeared: %d", code)
		}
	}
}

func TestConcurrentRequestsAreBatched(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	const clients = 24
	// A batch closes when it is full or when its timeout passes: with room for exactly every
	// client's rows and a timeout that only catches a hang, all requests meet in one run
	// however slowly a busy machine delivers them.
	cfg.Batch.MaxBatchSize = clients/2*1 + clients/2*2
	cfg.Batch.Timeout = slowBound
	cfg.RequestTimeout = slowBound
	cfg.Batch.Threads = 1
	ts := startServer(t, cfg)

	x, _ := randomImages(80*80*3, clients*2, 3)
	want := directPredict(t, model, x, clients*2)
	per := 80 * 80 * 3
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rows := 1 + i%2 // requests of different sizes are merged and split back
			start := (i * 2) * per
			body, _ := json.Marshal(map[string]any{"instances": nested(x[start:start+rows*per], rows, 80)})
			resp, err := http.Post(ts.url+":predict", "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var out struct{ Predictions [][]float32 }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Errorf("client %d: %d %v", i, resp.StatusCode, err)
				return
			}
			if w := want[i*2*4 : (i*2+rows)*4]; !closeEnough(flatten(out.Predictions), w, 1e-5) {
				errs <- fmt.Errorf("client %d got %v, want %v: rows mixed up between requests", i, out.Predictions, w)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sv, release, aerr := ts.srv.models.acquire(ModelSpec{Name: "emo"})
	if aerr != nil {
		t.Fatal(aerr)
	}
	runs, tasks := sv.batch.stats()
	release()
	runs, tasks = runs-1, tasks-1 // the version's warm-up request, run alone before it served
	t.Logf("%d requests in %d session runs", tasks, runs)
	if tasks != clients || runs != 1 {
		t.Errorf("%d requests took %d session runs: concurrent requests were not batched", tasks, runs)
	}
}

func TestClassifyImage(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	exportTo(t, testutil.TinyModel(t), base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	ts := startServer(t, cfg)

	photo := facePhoto(t)
	img, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	var preds []classify.Prediction
	code, body := call(t, "POST", ts.url+":classify_image?file=happy.jpg", "image/jpeg", img, &preds)
	if code != 200 || len(preds) != 1 || preds[0].Error != nil || preds[0].Label == nil || len(preds[0].Probabilities) != 4 || preds[0].File != "happy.jpg" {
		t.Fatalf("classify_image of %s: %d %s", photo, code, body)
	}
	for _, key := range []string{`"file"`, `"label"`, `"probabilities"`, `"face"`, `"error"`} {
		if !strings.Contains(body, key) {
			t.Errorf("classify_image answer lacks %s: %s", key, body)
		}
	}

	req, _ := json.Marshal(map[string]any{"instances": []any{
		map[string]string{"b64": base64.StdEncoding.EncodeToString(img), "file": "a.jpg"},
		map[string]string{"b64": base64.StdEncoding.EncodeToString([]byte("not an image at all")), "file": "garbage.jpg"},
	}})
	preds = nil
	code, body = call(t, "POST", ts.url+"/versions/1:classify_image", "application/json", req, &preds)
	if code != 200 || len(preds) != 2 {
		t.Fatalf("classify_image b64: %d %s", code, body)
	}
	if preds[0].Error != nil || preds[0].Label == nil || preds[0].File != "a.jpg" {
		t.Errorf("b64 photo: %s", body)
	}
	if preds[1].Error == nil || preds[1].Probabilities != nil || !strings.Contains(*preds[1].Error, "garbage.jpg") {
		t.Errorf("garbage bytes: want a per-file error naming it, got %s", body)
	}
	code, body = call(t, "POST", ts.url+":classify_image", "application/octet-stream", []byte("garbage"), &preds)
	if code != 200 || len(preds) != 1 || preds[0].Error == nil {
		t.Errorf("raw garbage: %d %s", code, body)
	}
}

func facePhoto(t *testing.T) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "data", "faces4", "test", "happy", "*.jpg"))
	if len(m) == 0 {
		t.Fatal("no face photo: data/faces4/test/happy is empty")
	}
	return m[0]
}

func TestGRPCWithOfficialClient(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	ts := startServer(t, cfg)
	x, n := randomImages(80*80*3, 2, 11)
	want := directPredict(t, model, x, n)
	raw := filepath.Join(t.TempDir(), "x.f32")
	if err := os.WriteFile(raw, float32Bytes(x), 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.RunPython(t, filepath.Join("testdata", "grpc_client.py"), ts.grpc, "emo", raw)
	var report struct {
		Probabilities []float32 `json:"probabilities"`
		Shape         []int     `json:"shape"`
		Version       int64     `json:"version"`
		Inputs        []string  `json:"inputs"`
		Status        []string  `json:"status"`
		Errors        map[string]string
	}
	if err := json.Unmarshal([]byte(lastLine(out)), &report); err != nil {
		t.Fatalf("grpc_client.py: %v\n%s", err, out)
	}
	if !closeEnough(report.Probabilities, want, 1e-5) || len(report.Shape) != 2 || report.Shape[1] != 4 || report.Version != 1 {
		t.Errorf("gRPC Predict: %+v, want %v", report, want)
	}
	if len(report.Inputs) != 1 || report.Inputs[0] != "images" || len(report.Status) != 1 || report.Status[0] != "1:AVAILABLE" {
		t.Errorf("gRPC metadata/status: %+v", report)
	}
	for call, code := range map[string]string{"unknown_model": "NOT_FOUND", "unknown_version": "NOT_FOUND", "wrong_shape": "INVALID_ARGUMENT", "status_unknown_model": "NOT_FOUND"} {
		if report.Errors[call] != code {
			t.Errorf("gRPC %s: %s, want %s", call, report.Errors[call], code)
		}
	}
}

func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	exportTo(t, testutil.TinyModel(t), base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase, cfg.ModelName, cfg.Session = base, "emo", tfgraph.Options{Device: "cpu"}
	cfg.Batch.Timeout = 300 * time.Millisecond // released as shutdown begins, it still waits for its batch
	shuttingDown := make(chan struct{})
	var once sync.Once
	cfg.Log = log.New(hookWriter{testWriter{t}, func(line string) {
		if strings.Contains(line, "shutting down") {
			once.Do(func() { close(shuttingDown) })
		}
	}}, "", 0)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	entered, proceed := make(chan struct{}), make(chan struct{})
	hook := func() {
		close(entered)
		<-proceed
	}
	srv.testHook.Store(&hook)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln, nil) }()
	x, n := randomImages(80*80*3, 1, 2)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/models/emo:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-entered // the request is being answered: shut down under it
	cancel()
	<-shuttingDown
	close(proceed)
	if code := <-answered; code != 200 {
		t.Errorf("request in flight at shutdown: %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// hookWriter passes each log line to w and to saw.
type hookWriter struct {
	w   io.Writer
	saw func(line string)
}

func (h hookWriter) Write(p []byte) (int, error) {
	h.saw(string(p))
	return h.w.Write(p)
}
