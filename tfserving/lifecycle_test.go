package tfserving

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

// The version lifecycle tests run the registry on a clock they move by hand, with no poller:
// every step is an explicit sync, so what each one sees is fixed, whatever the machine's load.

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	testSettle = time.Second
	testRetry  = 10 * time.Second
)

type lifecycleServer struct {
	*testServer
	clock *fakeClock
	log   *lockedBuffer
}

// startLifecycleServer serves base (with MaxLoadRetries 2) on a hand-driven clock.
func startLifecycleServer(t *testing.T, base string) *lifecycleServer {
	t.Helper()
	ls := &lifecycleServer{clock: &fakeClock{now: time.Unix(1_700_000_000, 0)}, log: &lockedBuffer{}}
	cfg := DefaultConfig()
	cfg.ModelBase, cfg.Poll, cfg.clock = base, 0, ls.clock
	cfg.VersionSettle, cfg.LoadRetryInterval, cfg.MaxLoadRetries = testSettle, testRetry, 2
	cfg.Log = log.New(io.MultiWriter(ls.log, testWriter{t}), "", 0)
	ls.testServer = startServer(t, cfg)
	return ls
}

// step moves the clock on by d and syncs with the disk once.
func (ls *lifecycleServer) step(t *testing.T, d time.Duration) {
	t.Helper()
	ls.clock.Sleep(d)
	if err := ls.srv.models.sync(); err != nil {
		t.Fatal(err)
	}
}

type versionStatus struct {
	State  string
	Status struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	}
}

// statuses is GET /v1/models/emo, by version.
func (ls *lifecycleServer) statuses(t *testing.T) map[string]versionStatus {
	t.Helper()
	var resp struct {
		ModelVersionStatus []struct {
			Version string
			versionStatus
		} `json:"model_version_status"`
	}
	if code, body := call(t, "GET", ls.url, "", nil, &resp); code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	out := map[string]versionStatus{}
	for _, v := range resp.ModelVersionStatus {
		out[v.Version] = v.versionStatus
	}
	return out
}

// wantStates checks GET /v1/models/emo lists exactly want (version -> state) and that
// /versions/N agrees for each.
func (ls *lifecycleServer) wantStates(t *testing.T, when string, want map[string]string) map[string]versionStatus {
	t.Helper()
	got := ls.statuses(t)
	ok := len(got) == len(want)
	for v, state := range want {
		ok = ok && got[v].State == state
		var one struct {
			ModelVersionStatus []versionStatus `json:"model_version_status"`
		}
		code, body := call(t, "GET", ls.url+"/versions/"+v, "", nil, &one)
		if code != 200 || len(one.ModelVersionStatus) != 1 || one.ModelVersionStatus[0] != got[v] {
			t.Errorf("%s: /versions/%s: %d %s, want what the model's status says: %+v", when, v, code, body, got[v])
		}
	}
	if !ok {
		t.Fatalf("%s: versions %+v, want states %v", when, got, want)
	}
	return got
}

// steadyClient predicts with the default version until stop, which reports how many answers
// were 200 and the first that was not.
func steadyClient(t *testing.T, url string) (stop func() (ok int, failure string)) {
	x, n := randomImages(80*80*3, 1, 4)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	done := make(chan struct{})
	var wg sync.WaitGroup
	var okCount int
	var first string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			resp, err := http.Post(url+":predict", "application/json", bytes.NewReader(body))
			if err != nil {
				first = err.Error()
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				first = resp.Status + " " + string(raw)
				return
			}
			okCount++
		}
	}()
	return func() (int, string) {
		close(done)
		wg.Wait()
		return okCount, first
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the files of src under dst, except the top-level entries named in skip.
func copyTree(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+string(filepath.Separator)) {
				return nil
			}
		}
		copyFile(t, path, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exportOf exports model as version 1 of a fresh base and returns the version's directory.
func exportOf(t *testing.T, model string) string {
	t.Helper()
	dir, err := Export(model, filepath.Join(t.TempDir(), "staging"), 1)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func readMetaGraphOf(t *testing.T, dir string) *corepb.MetaGraphDef {
	t.Helper()
	mg, err := tfgraph.ReadMetaGraph(dir)
	if err != nil {
		t.Fatal(err)
	}
	return mg
}

func metricsAt(t *testing.T, url string) string {
	t.Helper()
	code, body := call(t, "GET", url, "", nil, nil)
	if code != 200 {
		t.Fatalf("%s: %d", url, code)
	}
	return body
}

// TestVersionUploadedFileByFile: a version copied file by file (saved_model.pb first, the
// rest later) is not loaded until its files have settled; the old one serves meanwhile, no
// request fails, and the new one takes over once whole. The lifecycle metrics are at both
// metrics paths.
func TestVersionUploadedFileByFile(t *testing.T) {
	model := testutil.TinyModel(t)
	base := filepath.Join(t.TempDir(), "base")
	exportTo(t, model, base, 1)
	src, dst := exportOf(t, model), filepath.Join(base, "2")
	ls := startLifecycleServer(t, base)
	ls.wantStates(t, "at start", map[string]string{"1": "AVAILABLE"})
	stop := steadyClient(t, ls.url)

	copyFile(t, filepath.Join(src, "saved_model.pb"), filepath.Join(dst, "saved_model.pb"))
	ls.step(t, 0)
	ls.wantStates(t, "saved_model.pb alone", map[string]string{"2": "START", "1": "AVAILABLE"})
	ls.step(t, testSettle/2)
	copyTree(t, src, dst, "saved_model.pb", "variables")
	ls.step(t, testSettle/2)
	copyFile(t, filepath.Join(src, "variables", "variables.index"), filepath.Join(dst, "variables", "variables.index"))
	ls.step(t, testSettle/2)
	copyTree(t, filepath.Join(src, "variables"), filepath.Join(dst, "variables"), "variables.index")
	ls.step(t, testSettle/2)
	ls.wantStates(t, "while files keep arriving", map[string]string{"2": "START", "1": "AVAILABLE"})
	if code, body := call(t, "GET", ls.url+"/versions/2/metadata", "", nil, nil); code != 404 {
		t.Errorf("version 2 served before its files settled: %d %s", code, body)
	}

	ls.step(t, testSettle)
	ls.wantStates(t, "settled", map[string]string{"2": "AVAILABLE"})
	if code, body := call(t, "GET", ls.url+"/versions/2/metadata", "", nil, nil); code != 200 {
		t.Errorf("version 2 not served once whole: %d %s", code, body)
	}
	ok, failure := stop()
	if failure != "" || ok == 0 {
		t.Errorf("steady client: %d answers, then %s; want every request answered", ok, failure)
	}
	if strings.Contains(ls.log.String(), "END") {
		t.Errorf("a failed attempt while the files were arriving:\n%s", ls.log)
	}

	for _, path := range []string{"/metrics", "/monitoring/prometheus/metrics"} {
		m := metricsAt(t, ls.root+path)
		for _, want := range []string{
			`emotions_serve_model_version_state{model="emo",state="AVAILABLE",version="2"} 1`,
			`emotions_serve_load_attempts_total{model="emo"} 2`,
			`emotions_serve_requests_total{code="200",endpoint="predict"}`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
		if strings.Contains(m, `version="1"`) || strings.Contains(m, "emotions_serve_load_failures_total{") {
			t.Errorf("%s: version 1's state after its unload, or a failure:\n%s", path, m)
		}
	}
}

// TestIncompleteVersionIsNeverServed: a copy without variables/ (TensorFlow would load it and
// fail every request) and then one whose shard is short are shown as END with what is missing,
// retried a bounded number of times, and never replace version 1; once whole it serves.
func TestIncompleteVersionIsNeverServed(t *testing.T) {
	model := testutil.TinyModel(t)
	base := filepath.Join(t.TempDir(), "base")
	exportTo(t, model, base, 1)
	src, dst := exportOf(t, model), filepath.Join(base, "2")
	ls := startLifecycleServer(t, base)
	stop := steadyClient(t, ls.url)

	copyTree(t, src, dst, "variables")
	ls.step(t, 0)
	ls.step(t, testSettle)
	st := ls.wantStates(t, "without variables/", map[string]string{"2": "END", "1": "AVAILABLE"})
	if e := st["2"].Status; e.ErrorCode != "FAILED_PRECONDITION" || !strings.Contains(e.ErrorMessage, "variables.index is missing") {
		t.Errorf("status of version 2: %+v, want FAILED_PRECONDITION naming variables.index", e)
	}
	// Retried after 10 s and 20 s (MaxLoadRetries 2), then left alone until its files change.
	for _, d := range []time.Duration{testRetry / 2, testRetry / 2, 2 * testRetry, 4 * testRetry, 8 * testRetry, time.Hour} {
		ls.step(t, d)
	}
	m := metricsAt(t, ls.root+"/metrics")
	if !strings.Contains(m, `emotions_serve_load_failures_total{model="emo",stage="incomplete"} 3`) ||
		!strings.Contains(m, `emotions_serve_model_version_state{model="emo",state="END",version="2"} 1`) {
		t.Errorf("want 3 failed attempts and version 2 END in the metrics:\n%s", m)
	}
	if n := strings.Count(ls.log.String(), "version 2: END"); n != 3 {
		t.Errorf("%d log lines of version 2 failing, want one per attempt (3):\n%s", n, ls.log)
	}

	// The checkpoint arrives, its shard short of what the index places in it.
	copyFile(t, filepath.Join(src, "variables", "variables.index"), filepath.Join(dst, "variables", "variables.index"))
	shard := shardName(filepath.Join(src, "variables", "variables"), 0, 1)
	data, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, shardName(filepath.Join(dst, "variables", "variables"), 0, 1), data[:len(data)-100])
	ls.step(t, 0)
	ls.wantStates(t, "files changed", map[string]string{"2": "START", "1": "AVAILABLE"})
	ls.step(t, maxRetryWait)
	st = ls.wantStates(t, "short shard", map[string]string{"2": "END", "1": "AVAILABLE"})
	if e := st["2"].Status.ErrorMessage; !strings.Contains(e, "variables.data-00000-of-00001 holds") {
		t.Errorf("short shard: %q, want the shard and its size named", e)
	}

	writeFile(t, shardName(filepath.Join(dst, "variables", "variables"), 0, 1), data)
	ls.step(t, 0)
	ls.step(t, maxRetryWait)
	ls.wantStates(t, "whole", map[string]string{"2": "AVAILABLE"})
	if ok, failure := stop(); failure != "" || ok == 0 {
		t.Errorf("steady client: %d answers, then %s", ok, failure)
	}
}

// TestHalfWrittenGraphIsRetried: a saved_model.pb still being written when the version
// settles fails its first attempt (END with the error, counted), is not retried before its
// backoff while unchanged, and is retried and served once the file is complete.
func TestHalfWrittenGraphIsRetried(t *testing.T) {
	model := testutil.TinyModel(t)
	base := filepath.Join(t.TempDir(), "base")
	exportTo(t, model, base, 1)
	src, dst := exportOf(t, model), filepath.Join(base, "2")
	ls := startLifecycleServer(t, base)

	graph, err := os.ReadFile(filepath.Join(src, "saved_model.pb"))
	if err != nil {
		t.Fatal(err)
	}
	copyTree(t, src, dst, "saved_model.pb")
	writeFile(t, filepath.Join(dst, "saved_model.pb"), graph[:len(graph)/2])
	ls.step(t, 0)
	ls.step(t, testSettle)
	st := ls.wantStates(t, "half-written", map[string]string{"2": "END", "1": "AVAILABLE"})
	if e := st["2"].Status; e.ErrorCode == "OK" || !strings.Contains(e.ErrorMessage, "saved_model.pb") {
		t.Errorf("status of version 2: %+v, want an error naming saved_model.pb", e)
	}
	ls.step(t, testRetry/2)
	if m := metricsAt(t, ls.root+"/monitoring/prometheus/metrics"); !strings.Contains(m, `emotions_serve_load_attempts_total{model="emo"} 2`) ||
		!strings.Contains(m, `emotions_serve_load_failures_total{model="emo",stage="incomplete"} 1`) {
		t.Errorf("want 2 attempts (version 1's, version 2's) and 1 failure before the backoff ends:\n%s", m)
	}

	writeFile(t, filepath.Join(dst, "saved_model.pb"), graph)
	ls.step(t, 0)
	ls.wantStates(t, "completed", map[string]string{"2": "START", "1": "AVAILABLE"})
	ls.step(t, testRetry)
	ls.wantStates(t, "retried", map[string]string{"2": "AVAILABLE"})

	// Rolling back by deleting version 2: it serves until version 1 is ready again.
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	ls.step(t, 0)
	ls.wantStates(t, "version 2 deleted", map[string]string{"2": "AVAILABLE", "1": "START"})
	ls.step(t, testSettle)
	ls.wantStates(t, "rolled back", map[string]string{"1": "AVAILABLE"})
}

// warmupFile is a TFRecord file of PredictionLogs, one per input tensor.
func warmupFile(t *testing.T, inputs ...*tensorpb.TensorProto) []byte {
	t.Helper()
	var file []byte
	for _, in := range inputs {
		rec, err := proto.Marshal(&pb.PredictionLog{LogType: &pb.PredictionLog_PredictLog{PredictLog: &pb.PredictLog{
			Request: &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "emo"}, Inputs: map[string]*tensorpb.TensorProto{"images": in}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		file = appendTFRecord(file, rec)
	}
	return file
}

// TestWarmupRequests: a version's assets.extra/tf_serving_warmup_requests are run before it
// serves (without the file, one request of zeros is); one that fails keeps it out of service.
func TestWarmupRequests(t *testing.T) {
	model := testutil.TinyModel(t)
	base := filepath.Join(t.TempDir(), "base")
	exportTo(t, model, base, 1)
	src := exportOf(t, model)
	ls := startLifecycleServer(t, base)
	runsOf := func(version int64) int64 {
		sv, release, err := ls.srv.models.acquire(ModelSpec{Name: "emo", Version: version})
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		_, tasks := sv.batch.stats()
		return tasks
	}
	if n := runsOf(1); n != 1 {
		t.Errorf("version 1 without a warm-up file ran %d requests before serving, want 1 (zeros)", n)
	}

	x, n := randomImages(80*80*3, 2, 8)
	good := imagesProto(x, n)
	wrongShape := imagesProto(x[:80*80*3], 1)
	wrongShape.TensorShape.Dim[1].Size = 40
	wrongShape.TensorShape.Dim[2].Size = 160
	warmup := filepath.Join("assets.extra", WarmupFile)

	copyTree(t, src, filepath.Join(base, "2"))
	writeFile(t, filepath.Join(base, "2", warmup), warmupFile(t, good, wrongShape))
	ls.step(t, 0)
	ls.step(t, testSettle)
	st := ls.wantStates(t, "failing warm-up", map[string]string{"2": "END", "1": "AVAILABLE"})
	if e := st["2"].Status; e.ErrorCode != "INVALID_ARGUMENT" || !strings.Contains(e.ErrorMessage, "warm-up") || !strings.Contains(e.ErrorMessage, "record 1") {
		t.Errorf("status of version 2: %+v, want the warm-up's record 1 and its error", e)
	}
	if m := metricsAt(t, ls.root+"/metrics"); !strings.Contains(m, `emotions_serve_load_failures_total{model="emo",stage="warmup"} 1`) {
		t.Errorf("no warm-up failure counted:\n%s", m)
	}

	copyTree(t, src, filepath.Join(base, "3"))
	writeFile(t, filepath.Join(base, "3", warmup), warmupFile(t, good, good, good))
	ls.step(t, 0)
	ls.step(t, testSettle)
	ls.wantStates(t, "warm-up passed", map[string]string{"3": "AVAILABLE"})
	if n := runsOf(3); n != 3 {
		t.Errorf("version 3 ran %d requests before serving, want its 3 warm-up records", n)
	}
}

// TestRunErrorLogIsRateLimited: a version failing every request logs a line at most every
// runErrorEvery, saying how many it left out.
func TestRunErrorLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	logger := log.New(&buf, "", 0)
	var l runErrorLog
	start := time.Unix(0, 0)
	for i := range 50 {
		l.log(logger, start.Add(time.Duration(i)*runErrorEvery/20), "version 2", io.ErrUnexpectedEOF)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || strings.Contains(lines[0], "more") || !strings.Contains(lines[1], "and 19 more failed runs") {
		t.Errorf("50 failures over 2.5 periods logged as:\n%s", buf.String())
	}
}
