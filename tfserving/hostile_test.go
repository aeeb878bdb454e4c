package tfserving

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Hostile clients against a running server. The server runs in its own process (this test
// binary, re-executed: see TestMain) so that its peak memory can be read from /proc.

// serverProcessEnv carries a JSON Config to the re-executed test binary.
const serverProcessEnv = "EMOTIONS_TEST_SERVER_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(serverProcessEnv); cfg != "" {
		os.Exit(serveForParent(cfg))
	}
	os.Exit(testutil.Main(m))
}

// serveForParent serves the Config in cfgJSON on loopback ports, prints "READY http grpc"
// on stdout and serves until SIGTERM.
func serveForParent(cfgJSON string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "server config:", err)
		return 2
	}
	cfg.Log = log.New(os.Stderr, "server: ", log.Lmicroseconds)
	srv, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("READY %s %s\n", httpLn.Addr(), grpcLn.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, httpLn, grpcLn); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type serverProcess struct {
	cmd      *exec.Cmd
	http     string // 127.0.0.1:port
	grpc     string
	url      string // http://127.0.0.1:port/v1/models/emo
	logs     *lockedBuffer
	exited   chan struct{}
	exitErr  error
	exitOnce sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startServerProcess(t *testing.T, cfg Config) *serverProcess {
	t.Helper()
	cfg.ModelName = "emo"
	cfg.Session = tfgraph.Options{Device: "cpu"}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{logs: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), serverProcessEnv+"="+string(raw))
	p.cmd.Stderr = p.logs
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", p.logs.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "READY" {
			t.Fatalf("server process said %q\n%s", line, p.logs.String())
		}
		p.http, p.grpc = f[1], f[2]
	case <-time.After(10 * time.Minute): // only a hang: loading is seconds, more on a busy machine
		t.Fatalf("server process not ready after 10 minutes\n%s", p.logs.String())
	}
	p.url = "http://" + p.http + "/v1/models/emo"
	return p
}

func (p *serverProcess) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// peakRSS is the process's resident-set high-water mark (VmHWM), in bytes.
func (p *serverProcess) peakRSS(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

// send does one REST request; err is a transport error (no answer at all). Its timeouts only
// catch a hang. Each request has a connection of its own: the server closes idle ones after
// --idle-timeout (2 s here), and a kept-alive connection taken from a pool as the server
// closes it fails a POST (which net/http does not retry) with "broken pipe". Keep-alive itself
// is tested on raw connections (idleConnections). Not DisableKeepAlives: net/http's server
// resets a "Connection: close" connection whose body the handler left unread (a 413 or 429
// answered from the headers), and the answer is lost with it. A body waits for the server's
// "100 Continue" for the same reason: an answer given from the headers alone (413, 429) then
// comes before any of the body is sent, and no reset can overtake it.
func send(method, url, contentType string, body io.Reader) (int, string, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if req.Body != nil && req.Body != http.NoBody {
		req.Header.Set("Expect", "100-continue")
	}
	transport := &http.Transport{ExpectContinueTimeout: slowBound}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Timeout: 5 * time.Minute, Transport: transport}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), err
}

// expectREST checks one request's answer: its status, and for errors TF Serving's
// {"error": ...} mentioning wantIn.
func expectREST(t *testing.T, what string, method, url, contentType string, body []byte, wantStatus int, wantIn string) string {
	t.Helper()
	code, answer, err := send(method, url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: no answer: %v", what, err)
		return ""
	}
	if code != wantStatus {
		t.Errorf("%s: %d %.300s, want %d", what, code, answer, wantStatus)
		return answer
	}
	if wantStatus != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal([]byte(answer), &e) != nil || !strings.Contains(e.Error, wantIn) {
			t.Errorf("%s: %d %.300s, want an error mentioning %q", what, code, answer, wantIn)
		}
	}
	return answer
}

const predictMethod = "/tensorflow.serving.PredictionService/Predict"

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func grpcPredict(conn *grpc.ClientConn, req *pb.PredictRequest) (*pb.PredictResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // only a hang
	defer cancel()
	out := new(pb.PredictResponse)
	return out, conn.Invoke(ctx, predictMethod, req, out)
}

func predictRequest(model string, inputs map[string]*tensorpb.TensorProto) *pb.PredictRequest {
	return &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: model}, Inputs: inputs}
}

func imagesProto(x []float32, n int) *tensorpb.TensorProto {
	return rawTensor{dtype: tf.Float, shape: []int64{int64(n), 80, 80, 3}, data: float32Bytes(x)}.proto()
}

func expectCode(t *testing.T, what string, err error, want codes.Code, wantIn string) {
	t.Helper()
	if st := status.Convert(err); st.Code() != want || !strings.Contains(st.Message(), wantIn) {
		t.Errorf("%s: %v %q, want %v mentioning %q", what, st.Code(), st.Message(), want, wantIn)
	}
}

// grpcProbabilities checks a Predict answer against want.
func grpcProbabilities(resp *pb.PredictResponse, want []float32) error {
	p := resp.GetOutputs()["probabilities"]
	if p == nil {
		return fmt.Errorf("no probabilities in %v", resp.GetOutputs())
	}
	vals, err := rawTensor{dtype: tf.DataType(p.GetDtype()), shape: []int64{int64(len(p.GetTensorContent()) / 4)}, data: p.GetTensorContent()}.values()
	if err != nil {
		return err
	}
	got := make([]float32, len(vals))
	for i, v := range vals {
		got[i] = float32(v)
	}
	if !closeEnough(got, want, 1e-5) {
		return fmt.Errorf("probabilities %v, want %v", got, want)
	}
	return nil
}

// restProbabilities checks a row-format :predict answer against want.
func restProbabilities(answer string, want []float32) error {
	var out struct{ Predictions [][]float32 }
	if err := json.Unmarshal([]byte(answer), &out); err != nil {
		return fmt.Errorf("%v in %.200s", err, answer)
	}
	if got := flatten(out.Predictions); !closeEnough(got, want, 1e-5) {
		return fmt.Errorf("predictions %v, want %v", got, want)
	}
	return nil
}

// rawConn opens a TCP connection that the test drives byte by byte.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// slowBound is how long a test waits for the server to cut a slow or idle client off: the
// server's own timeouts are seconds, this only tells a server that never does from a busy
// machine.
const slowBound = 2 * time.Minute

// closedByServer reports whether the server closed c by deadline (reads until EOF or reset).
func closedByServer(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// rawCodec sends bytes as they are, for messages no protobuf library would write.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { return nil }
func (rawCodec) Name() string                       { return "proto" }

// TestHostileClients runs every kind of hostile request against a server process with
// small limits, then a flood of maximum-size requests from 64 clients, and checks that each
// request got its documented error or a correct answer, that the server still answers
// correctly afterwards, and that its peak memory stayed within what its limits allow.
func TestHostileClients(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	cfg.Poll = 0
	cfg.MaxRequestBytes = 4 << 20
	cfg.MaxInFlight = 8
	cfg.ReadHeaderTimeout = time.Second
	cfg.ReadTimeout = 2 * time.Second
	cfg.IdleTimeout = 2 * time.Second
	cfg.RequestTimeout = 5 * time.Second
	srv := startServerProcess(t, cfg)
	conn := dialGRPC(t, srv.grpc)

	x, n := randomImages(80*80*3, 2, 21)
	want := directPredict(t, model, x, n)
	normalBody, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	normalGRPC := predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(x, n)})
	stillServes := func(when string) {
		t.Helper()
		if !srv.alive() {
			t.Fatalf("%s: the server process exited: %v", when, srv.exitErr)
		}
		code, answer, err := send("POST", srv.url+":predict", "application/json", bytes.NewReader(normalBody))
		if err != nil || code != 200 {
			t.Fatalf("%s: a normal REST request got %d %.200s %v", when, code, answer, err)
		}
		if err := restProbabilities(answer, want); err != nil {
			t.Fatalf("%s: REST: %v", when, err)
		}
		resp, err := grpcPredict(conn, normalGRPC)
		if err != nil {
			t.Fatalf("%s: a normal gRPC request got %v", when, err)
		}
		if err := grpcProbabilities(resp, want); err != nil {
			t.Fatalf("%s: gRPC: %v", when, err)
		}
	}
	stillServes("at start")
	// The model's own memory includes what TensorFlow keeps after running a full batch.
	full := int(cfg.MaxRequestBytes-1024) / (80 * 80 * 3 * 4)
	xf, _ := randomImages(80*80*3, full, 22)
	if _, err := grpcPredict(conn, predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(xf, full)})); err != nil {
		t.Fatalf("a maximum-size request: %v", err)
	}
	warm := srv.peakRSS(t)

	t.Run("bodies", func(t *testing.T) { hostileBodies(t, srv, cfg) })
	stillServes("after hostile bodies")
	t.Run("json", func(t *testing.T) { hostileJSON(t, srv) })
	stillServes("after hostile JSON")
	t.Run("grpc", func(t *testing.T) { hostileGRPC(t, srv, conn, cfg, normalGRPC) })
	stillServes("after hostile gRPC")
	t.Run("routes", func(t *testing.T) { hostileRoutes(t, srv, normalBody) })
	stillServes("after hostile routes")
	t.Run("classify_image", func(t *testing.T) { hostileClassify(t, srv, cfg) })
	stillServes("after hostile :classify_image")
	t.Run("slow_clients", func(t *testing.T) { slowClients(t, srv, cfg) })
	stillServes("after slow clients")
	t.Run("idle_connections", func(t *testing.T) { idleConnections(t, srv, cfg, normalBody) })
	stillServes("after idle connections")
	t.Run("stalled_grpc_streams", func(t *testing.T) { stalledStreams(t, srv, cfg, normalGRPC, normalBody) })
	stillServes("after stalled gRPC streams")
	t.Run("flood", func(t *testing.T) { flood(t, srv, conn, model, cfg) })
	stillServes("after the flood")

	// Model and runtime as measured after a maximum-size answer, plus what the limits let requests
	// hold: --max-in-flight requests of up to ~4x --max-request-bytes each (body, decoded
	// tensor, batch copy, TensorFlow's copy), twice over for the garbage Go's collector lets
	// accumulate (GOGC=100), plus a margin for goroutines, connections and TF's allocator.
	peak := srv.peakRSS(t)
	allowance := 2*int64(cfg.MaxInFlight)*4*cfg.MaxRequestBytes + 64<<20
	t.Logf("server peak RSS: %d MiB after a maximum-size answer, %d MiB after the suite (bound %d MiB: +%d MiB for %d in flight x 4 x %d MiB x 2 + 64 MiB)",
		warm>>20, peak>>20, (warm+allowance)>>20, allowance>>20, cfg.MaxInFlight, cfg.MaxRequestBytes>>20)
	if peak > warm+allowance {
		t.Errorf("server peak RSS %d MiB exceeds its bound %d MiB", peak>>20, (warm+allowance)>>20)
	}
}

func hostileBodies(t *testing.T, srv *serverProcess, cfg Config) {
	limit := int(cfg.MaxRequestBytes)
	over := bytes.Repeat([]byte(" "), limit+1)
	expectREST(t, "body one byte over the limit", "POST", srv.url+":predict", "application/json", over, 413, "--max-request-bytes")

	// Chunked: no Content-Length to refuse it by, so it is cut off while read.
	code, answer, err := send("POST", srv.url+":predict", "application/json", io.MultiReader(bytes.NewReader(over), strings.NewReader(" ")))
	if err != nil || code != 413 || !strings.Contains(answer, "--max-request-bytes") {
		t.Errorf("chunked body over the limit: %d %.200s %v, want 413", code, answer, err)
	}

	// A Content-Length of 2^50 and one byte: refused from the header, before any read.
	c := rawConn(t, srv.http)
	fmt.Fprintf(c, "POST /v1/models/emo:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", int64(1)<<50)
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 413 {
		t.Errorf("Content-Length 2^50: %v %v, want 413", resp, err)
	} else {
		t.Logf("Content-Length 2^50 refused in %s", time.Since(start).Round(time.Microsecond))
	}

	// Truncated: the client declares 1000 bytes, sends 20 and stops sending.
	c = rawConn(t, srv.http)
	fmt.Fprintf(c, "POST /v1/models/emo:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"instances\": [[1, 2")
	c.(*net.TCPConn).CloseWrite()
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("truncated body: %v %v, want 400", resp, err)
	}

	expectREST(t, "empty body", "POST", srv.url+":predict", "application/json", nil, 400, "malformed JSON")
	expectREST(t, "binary garbage", "POST", srv.url+":predict", "application/json", []byte{0, 0xff, 0xfe, '{', 0x80}, 400, "malformed JSON")
	expectREST(t, "a JPEG sent to :predict", "POST", srv.url+":predict", "image/jpeg", []byte("\xff\xd8\xff\xe0 not really"), 400, "malformed JSON")
	x, n := randomImages(80*80*3, 1, 5)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	// :predict reads its body as JSON whatever the Content-Type says, as TF Serving does.
	expectREST(t, "JSON labelled text/plain", "POST", srv.url+":predict", "text/plain", body, 200, "")
	expectREST(t, "JSON labelled multipart", "POST", srv.url+":predict", "multipart/form-data; boundary=x", body, 200, "")

	// Headers beyond 1 MiB: 431 from net/http.
	c = rawConn(t, srv.http)
	fmt.Fprintf(c, "GET /v1/models/emo HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 2<<20))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 431 {
		t.Errorf("2 MiB of headers: %v %v, want 431", resp, err)
	}
}

func hostileJSON(t *testing.T, srv *serverProcess) {
	u := srv.url + ":predict"
	deep := func(open, close string, n int) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	for _, c := range []struct {
		what, body, wantIn string
	}{
		{"100,000 nested lists", `{"instances": ` + deep("[", "]", 100000) + `}`, "nested more than 64"},
		{"instances nested 65 deep", `{"instances": ` + strings.Repeat("[", 66) + "1" + strings.Repeat("]", 66) + `}`, "nested more than 64"},
		{"100,000 nested objects", `{"instances": [` + strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000) + `]}`, `no input "a"`},
		{"deep signature_name", `{"signature_name": ` + deep("[", "]", 100000) + `, "instances": [1]}`, "signature_name"},
		{"deep objects as an input", `{"inputs": {"images": ` + strings.Repeat(`{"b":`, 10000) + "1" + strings.Repeat("}", 10000) + `}}`, "only for string inputs"},
		{"unclosed lists", `{"instances": [[[[`, "malformed JSON"},
		{"ragged rows", `{"instances": [[1, 2], [3]]}`, "instance 1 has shape"},
		{"ragged nesting", `{"instances": [[[1, 2], 3]]}`, "ragged"},
		{"strings", `{"instances": [["a", "b"]]}`, "expected a number"},
		{"b64 for a float input", `{"instances": [{"images": {"b64": "AAAA"}}]}`, "only for string inputs"},
		{"wrong rank", `{"instances": [[1, 2, 3]]}`, "got shape [1,3], want [-1,80,80,3]"},
		{"scalar instances", `{"instances": [1, 2, 3]}`, "got shape [3], want [-1,80,80,3]"},
		{"no instances", `{"instances": []}`, `"instances" is empty`},
		{"instances and inputs", `{"instances": [1], "inputs": [1]}`, "send one"},
		{"neither", `{"signature": "x"}`, `needs "instances"`},
		{"unknown input", `{"inputs": {"pixels": [1]}}`, `no input "pixels"`},
		{"input named twice", `{"instances": [{"images": 1, "images": 2}]}`, "twice"},
		{"bad numbers", `{"instances": [[01, .5, +1, 0x10]]}`, "bad number"},
		{"trailing garbage", `{"instances": [1]} {}`, "after the value"},
		{"two million zeros: 8 MB of float32 from a 4 MB body", `{"instances": [` + strings.Repeat("0,", 2<<20-100) + `0]}`, "--max-request-bytes"},
		{"a million digits", `{"instances": [` + strings.Repeat("9", 1<<20) + `]}`, "got shape [1]"},
	} {
		expectREST(t, c.what, "POST", u, "application/json", []byte(c.body), 400, c.wantIn)
	}

	// NaN and Infinity are numbers to TF Serving: the model answers whatever it makes of them.
	for _, tok := range []string{"NaN", "Infinity", "-Infinity", "1e400"} {
		img := strings.TrimSuffix(strings.Repeat(tok+",", 80*80*3), ",")
		body := `{"inputs": ` + reshapeJSON(img) + `}`
		answer := expectREST(t, tok+" pixels", "POST", u, "application/json", []byte(body), 200, "")
		var outputs []byte
		objectFields([]byte(answer), func(k string, v []byte) error {
			if k == "outputs" {
				outputs = v
			}
			return nil
		})
		if shape, _, err := parseNested(outputs); err != nil || !equalShape(shape, []int64{1, 4}) {
			t.Errorf("%s pixels: outputs %.100s (shape %v, %v), want 1x4", tok, outputs, shape, err)
		}
	}
}

// reshapeJSON wraps 80*80*3 comma-separated numbers as one [1][80][80][3] image.
func reshapeJSON(flat string) string {
	vals := strings.Split(flat, ",")
	var b strings.Builder
	b.WriteString("[[")
	for y := 0; y < 80; y++ {
		if y > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for x := 0; x < 80; x++ {
			if x > 0 {
				b.WriteByte(',')
			}
			i := (y*80 + x) * 3
			fmt.Fprintf(&b, "[%s,%s,%s]", vals[i], vals[i+1], vals[i+2])
		}
		b.WriteByte(']')
	}
	b.WriteString("]]")
	return b.String()
}

func hostileGRPC(t *testing.T, srv *serverProcess, conn *grpc.ClientConn, cfg Config, normalRequest *pb.PredictRequest) {
	images := func(dims []int64, fill func(*tensorpb.TensorProto)) *pb.PredictRequest {
		return predictRequest("emo", map[string]*tensorpb.TensorProto{"images": tensorProto(tf.Float, dims, fill)})
	}
	// The probe: 2^50 elements claimed, one value sent. It must be refused from the
	// shape; the deadline only keeps a failing server from hanging the test.
	tooMany := cfg.MaxRequestBytes/(80*80*3*4) + 1
	start := time.Now()
	_, err := grpcPredict(conn, images([]int64{1 << 20, 1 << 20, 1 << 10}, oneFloat))
	expectCode(t, "2^50 elements", err, codes.InvalidArgument, "want [-1,80,80,3]")
	t.Logf("2^50-element claim refused in %s", time.Since(start).Round(time.Microsecond))
	for _, c := range []struct {
		what   string
		req    *pb.PredictRequest
		code   codes.Code
		wantIn string
	}{
		{"2^40 images, one value", images([]int64{1 << 40, 80, 80, 3}, oneFloat), codes.InvalidArgument, "--max-request-bytes"},
		{"2^60 images (overflows int64)", images([]int64{1 << 60, 80, 80, 3}, oneFloat), codes.InvalidArgument, "--max-request-bytes"},
		{"negative dimension", images([]int64{-1, 80, 80, 3}, oneFloat), codes.InvalidArgument, "negative dimension"},
		{"zero images", images([]int64{0, 80, 80, 3}, nil), codes.InvalidArgument, "empty batch"},
		{"wrong rank", images([]int64{1, 80, 80}, oneFloat), codes.InvalidArgument, "got shape [1,80,80]"},
		{"wrong dtype", predictRequest("emo", map[string]*tensorpb.TensorProto{"images": tensorProto(tf.Int64, []int64{1, 80, 80, 3}, func(p *tensorpb.TensorProto) { p.Int64Val = []int64{1} })}), codes.InvalidArgument, "got dtype int64"},
		{"string tensor", predictRequest("emo", map[string]*tensorpb.TensorProto{"images": tensorProto(tf.String, []int64{1}, func(p *tensorpb.TensorProto) { p.StringVal = [][]byte{[]byte("x")} })}), codes.InvalidArgument, "got dtype string, want float"},
		{"content too short", images([]int64{1, 80, 80, 3}, func(p *tensorpb.TensorProto) { p.TensorContent = make([]byte, 7) }), codes.InvalidArgument, "tensor_content has 7 bytes"},
		{"unknown input", predictRequest("emo", map[string]*tensorpb.TensorProto{"pixels": tensorProto(tf.Float, []int64{1}, oneFloat)}), codes.InvalidArgument, `no input "pixels"`},
		{"no inputs", predictRequest("emo", nil), codes.InvalidArgument, "missing input"},
		{"unknown model", predictRequest("nope", nil), codes.NotFound, `"nope" not found`},
		{"no model name", predictRequest("", nil), codes.NotFound, "not found"},
		{"unknown version", &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "emo", VersionChoice: &pb.ModelSpec_Version{Version: wrapperspb.Int64(7)}}}, codes.NotFound, "version 7"},
		{"unknown label", &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "emo", VersionChoice: &pb.ModelSpec_VersionLabel{VersionLabel: "canary"}}}, codes.NotFound, `label "canary"`},
		{"unknown signature", &pb.PredictRequest{ModelSpec: &pb.ModelSpec{Name: "emo", SignatureName: "train_step"}}, codes.InvalidArgument, "train_step"},
		{"message over the limit", images([]int64{tooMany, 80, 80, 3}, func(p *tensorpb.TensorProto) { p.TensorContent = make([]byte, tooMany*80*80*3*4) }), codes.ResourceExhausted, "larger than max"},
	} {
		_, err := grpcPredict(conn, c.req)
		expectCode(t, c.what, err, c.code, c.wantIn)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// grpc-go answers a message it cannot parse itself, with INTERNAL (as C++ gRPC does),
	// before any handler or interceptor of ours sees it.
	for _, garbage := range [][]byte{{0xff, 0xff, 0xff, 0xff}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, bytes.Repeat([]byte{0x12, 0x80}, 1000)} {
		err := conn.Invoke(ctx, predictMethod, garbage, new(pb.PredictResponse), grpc.ForceCodec(rawCodec{}))
		expectCode(t, fmt.Sprintf("garbage protobuf %x", garbage[:min(len(garbage), 6)]), err, codes.Internal, "unmarshal")
	}
	// The server announces its 1 MiB metadata limit in HTTP/2 SETTINGS: grpc-go's client
	// refuses to send more, as INTERNAL.
	big := metadata.AppendToOutgoingContext(ctx, "x-big", strings.Repeat("a", 2<<20))
	err = conn.Invoke(big, predictMethod, normalRequest, new(pb.PredictResponse))
	expectCode(t, "2 MiB of metadata", err, codes.Internal, "header list size")
	err = conn.Invoke(ctx, "/tensorflow.serving.PredictionService/Classify", &pb.PredictRequest{}, new(pb.PredictResponse))
	expectCode(t, "unimplemented method", err, codes.Unimplemented, "")
	huge, _ := proto.Marshal(&pb.GetModelStatusRequest{ModelSpec: &pb.ModelSpec{Name: strings.Repeat("x", int(cfg.MaxRequestBytes))}})
	err = conn.Invoke(ctx, "/tensorflow.serving.ModelService/GetModelStatus", huge, new(pb.GetModelStatusResponse), grpc.ForceCodec(rawCodec{}))
	expectCode(t, "status request over the limit", err, codes.ResourceExhausted, "larger than max")
}

func hostileRoutes(t *testing.T, srv *serverProcess, body []byte) {
	root := "http://" + srv.http
	for _, c := range []struct {
		what, method, path string
		status             int
		wantIn             string
	}{
		{"unknown model", "POST", "/v1/models/nope:predict", 404, `"nope" not found`},
		{"unknown version", "POST", "/v1/models/emo/versions/9:predict", 404, "version 9"},
		{"huge version", "POST", "/v1/models/emo/versions/99999999999999999999:predict", 400, "malformed version"},
		{"negative version", "POST", "/v1/models/emo/versions/-1:predict", 400, "malformed version"},
		{"unknown label", "POST", "/v1/models/emo/labels/canary:predict", 404, `label "canary"`},
		{"unknown verb", "POST", "/v1/models/emo:explode", 400, "unsupported verb"},
		{"path too deep", "GET", "/v1/models/emo/a/b/c/d", 404, "malformed request path"},
		{"GET :predict", "GET", "/v1/models/emo:predict", 405, "POST"},
		{"PUT :predict", "PUT", "/v1/models/emo:predict", 405, "POST"},
		{"DELETE status", "DELETE", "/v1/models/emo", 405, "GET"},
		{"unknown signature", "POST", "/v1/models/emo:predict", 400, "train_step"},
	} {
		b := body
		if c.what == "unknown signature" {
			b = []byte(`{"signature_name": "train_step", "instances": [1]}`)
		}
		expectREST(t, c.what, c.method, root+c.path, "application/json", b, c.status, c.wantIn)
	}
	if code, _, err := send("GET", root+"/elsewhere", "", nil); err != nil || code != 404 {
		t.Errorf("a path outside the API: %d %v, want 404", code, err)
	}
}

func hostileClassify(t *testing.T, srv *serverProcess, cfg Config) {
	u := srv.url + ":classify_image"
	bomb, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "preprocess", "testdata", "bomb-30000x30000.png"))
	if err != nil {
		t.Fatal(err)
	}
	perFileError := func(what, contentType string, body []byte, wantIn string) {
		t.Helper()
		answer := expectREST(t, what, "POST", u, contentType, body, 200, "")
		var preds []classify.Prediction
		if err := json.Unmarshal([]byte(answer), &preds); err != nil || len(preds) != 1 || preds[0].Error == nil || !strings.Contains(*preds[0].Error, wantIn) {
			t.Errorf("%s: %.300s, want one prediction whose error mentions %q", what, answer, wantIn)
		}
	}
	perFileError("a 30000x30000 PNG bomb", "image/png", bomb, "decompression bomb")
	perFileError("text labelled image/jpeg", "image/jpeg", []byte("hello, world"), "not an image")
	perFileError("a truncated PNG", "image/png", bomb[:40], "image")
	expectREST(t, "empty image", "POST", u, "image/jpeg", nil, 400, "empty body")
	expectREST(t, "an image labelled JSON", "POST", u, "application/json", bomb, 400, "malformed JSON")
	expectREST(t, "bad base64", "POST", u, "application/json", []byte(`{"instances": [{"b64": "!!!"}]}`), 400, "not base64")
	expectREST(t, "instance without b64", "POST", u, "application/json", []byte(`{"instances": [{"file": "x"}]}`), 400, `no "b64"`)
	expectREST(t, "no instances", "POST", u, "application/json", []byte(`{"instances": []}`), 400, "instances")
	maxImages := int(cfg.MaxRequestBytes / (80 * 80 * 3 * 4))
	many := `{"instances": [` + strings.TrimSuffix(strings.Repeat(`{"b64": "`+base64.StdEncoding.EncodeToString([]byte("x"))+`"},`, maxImages+1), ",") + `]}`
	expectREST(t, fmt.Sprintf("%d images", maxImages+1), "POST", u, "application/json", []byte(many), 400, "--max-request-bytes")
}

func slowClients(t *testing.T, srv *serverProcess, cfg Config) {
	var wg sync.WaitGroup
	// Headers trickled a byte at a time: cut off after --read-header-timeout, silently.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := rawConn(t, srv.http)
		io.WriteString(c, "POST /v1/models/emo:predict HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		go func() {
			for i := 0; i < 200; i++ {
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		if !closedByServer(c, time.Now().Add(slowBound)) {
			t.Errorf("trickled headers: connection still open after %s (--read-header-timeout %s)", slowBound, cfg.ReadHeaderTimeout)
		} else {
			t.Logf("trickled headers cut off after %s", time.Since(start).Round(time.Millisecond))
		}
	}()
	// A body trickled a byte at a time: 408 after --read-timeout.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := rawConn(t, srv.http)
		io.WriteString(c, "POST /v1/models/emo:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
		start := time.Now()
		go func() {
			for i := 0; i < 200; i++ {
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		c.SetReadDeadline(time.Now().Add(slowBound))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("trickled body: %v %v, want 408 within %s (--read-timeout %s)", resp, err, slowBound, cfg.ReadTimeout)
		} else {
			t.Logf("trickled body answered 408 after %s", time.Since(start).Round(time.Millisecond))
		}
	}()
	// A gRPC connection that never says anything: closed after --read-header-timeout.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := rawConn(t, srv.grpc)
		if !closedByServer(c, time.Now().Add(slowBound)) {
			t.Errorf("silent gRPC connection still open after %s", slowBound)
		}
	}()
	wg.Wait()
}

func idleConnections(t *testing.T, srv *serverProcess, cfg Config, body []byte) {
	const silent, keptAlive, grpcSilent = 300, 50, 50
	var conns []net.Conn
	for i := 0; i < silent; i++ {
		conns = append(conns, rawConn(t, srv.http))
	}
	for i := 0; i < grpcSilent; i++ {
		conns = append(conns, rawConn(t, srv.grpc))
	}
	for i := 0; i < keptAlive; i++ {
		c := rawConn(t, srv.http)
		io.WriteString(c, "GET /v1/models/emo HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("keep-alive connection %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		conns = append(conns, c)
	}
	// While they sit there, the server answers others.
	code, _, err := send("POST", srv.url+":predict", "application/json", bytes.NewReader(body))
	if err != nil || code != 200 {
		t.Errorf("predict beside %d idle connections: %d %v", len(conns), code, err)
	}
	open := 0
	deadline := time.Now().Add(cfg.IdleTimeout + cfg.ReadHeaderTimeout + slowBound)
	for _, c := range conns {
		if !closedByServer(c, deadline) {
			open++
		}
	}
	if open > 0 {
		t.Errorf("%d of %d idle connections still open after their timeouts", open, len(conns))
	}
}

// Streams whose message never comes hold their --max-in-flight slots only until
// --read-timeout + --request-timeout: the server is busy (429) meanwhile, then ends them.
func stalledStreams(t *testing.T, srv *serverProcess, cfg Config, normalGRPC *pb.PredictRequest, body []byte) {
	// A connection of their own: the request that checks the slots are taken must follow the
	// stalled streams on the same connection (see below).
	conn := dialGRPC(t, srv.grpc)
	// No client deadline, so a DEADLINE_EXCEEDED can only be the server's; if the server never
	// ends the streams, the watchdog cancels them (CANCELED: a failure, not a hang).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchdog := time.AfterFunc(slowBound, cancel)
	defer watchdog.Stop()
	desc := &grpc.StreamDesc{StreamName: "Predict", ClientStreams: true, ServerStreams: true}
	errs := make(chan error, cfg.MaxInFlight)
	for i := 0; i < cfg.MaxInFlight; i++ {
		s, err := conn.NewStream(ctx, desc, predictMethod)
		if err != nil {
			t.Fatal(err)
		}
		go func() { errs <- s.RecvMsg(new(pb.PredictResponse)) }()
	}
	// The server admits a connection's streams in the order their headers arrive, on its
	// reader goroutine, and the client sends them in the order they were opened: one more
	// stream on this connection is seen after the stalled ones, which hold every slot. Once
	// it is refused, so is a REST request (on any connection).
	_, err := grpcPredict(conn, normalGRPC)
	expectCode(t, "gRPC predict beside the stalled streams", err, codes.ResourceExhausted, "--max-in-flight")
	expectREST(t, "REST predict beside the stalled streams", "POST", srv.url+":predict", "application/json", body, 429, "--max-in-flight")
	for i := 0; i < cfg.MaxInFlight; i++ {
		err := <-errs
		expectCode(t, "stalled stream", err, codes.DeadlineExceeded, "")
	}
}

// flood: 64 clients send maximum-size requests at once, REST and gRPC, valid ones and ones
// over the tensor budget. Each gets a correct answer, or its documented refusal: 429 /
// RESOURCE_EXHAUSTED when --max-in-flight are already in progress, 400 for the budget.
func flood(t *testing.T, srv *serverProcess, conn *grpc.ClientConn, model string, cfg Config) {
	const clients, rounds = 64, 4
	limit := int(cfg.MaxRequestBytes)

	// The largest JSON body under the limit, and the largest gRPC message.
	perImage := 80 * 80 * 3
	one, _ := randomImages(80*80*3, 1, 99)
	oneJSON, _ := json.Marshal(nested(one, 1, 80)[0])
	restN := (limit - 20) / (len(oneJSON) + 1)
	xr, _ := randomImages(80*80*3, restN, 100)
	restBody, _ := json.Marshal(map[string]any{"instances": nested(xr, restN, 80)})
	for len(restBody) > limit {
		restN--
		restBody, _ = json.Marshal(map[string]any{"instances": nested(xr[:restN*perImage], restN, 80)})
	}
	grpcN := (limit - 1024) / (perImage * 4)
	xg, _ := randomImages(80*80*3, grpcN, 101)
	grpcReq := predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(xg, grpcN)})
	overBudget := []byte(`{"instances": [` + strings.Repeat("0,", limit/2-20) + `0]}`)
	wantR, wantG := directPredict(t, model, xr[:restN*perImage], restN), directPredict(t, model, xg, grpcN)
	t.Logf("flood: %d clients x %d rounds of a %d-byte JSON body (%d images), a %d-byte gRPC message (%d images) and a %d-byte body over the tensor budget",
		clients, rounds, len(restBody), restN, proto.Size(grpcReq), grpcN, len(overBudget))

	var restOK, restBusy, grpcOK, grpcBusy, budget400 atomic.Int64
	var mu sync.Mutex
	var wrong []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		wrong = append(wrong, fmt.Sprintf(format, args...))
	}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				switch (c + r) % 3 {
				case 0:
					code, answer, err := send("POST", srv.url+":predict", "application/json", bytes.NewReader(restBody))
					switch {
					case err != nil:
						fail("REST: no answer: %v", err)
					case code == 200:
						if err := restProbabilities(answer, wantR); err != nil {
							fail("REST 200 but wrong: %v", err)
						}
						restOK.Add(1)
					case code == 429 && strings.Contains(answer, "--max-in-flight"):
						restBusy.Add(1)
					default:
						fail("REST: %d %.200s", code, answer)
					}
				case 1:
					resp, err := grpcPredict(conn, grpcReq)
					switch st := status.Convert(err); {
					case err == nil:
						if err := grpcProbabilities(resp, wantG); err != nil {
							fail("gRPC OK but wrong: %v", err)
						}
						grpcOK.Add(1)
					case st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "--max-in-flight"):
						grpcBusy.Add(1)
					default:
						fail("gRPC: %v", err)
					}
				case 2:
					code, answer, err := send("POST", srv.url+":predict", "application/json", bytes.NewReader(overBudget))
					switch {
					case err != nil:
						fail("over-budget REST: no answer: %v", err)
					case code == 400 && strings.Contains(answer, "--max-request-bytes"):
						budget400.Add(1)
					case code == 429 && strings.Contains(answer, "--max-in-flight"):
						restBusy.Add(1)
					default:
						fail("over-budget REST: %d %.200s", code, answer)
					}
				}
			}
		}(c)
	}
	wg.Wait()
	t.Logf("flood answers: REST %d correct, gRPC %d correct, %d over-budget refused (400), busy: REST %d (429), gRPC %d (RESOURCE_EXHAUSTED)",
		restOK.Load(), grpcOK.Load(), budget400.Load(), restBusy.Load(), grpcBusy.Load())
	for _, w := range wrong {
		t.Error(w)
	}
	// Which requests find --max-in-flight others in progress is the scheduler's choice: a kind
	// the flood only refused is sent again after it, alone, and must be answered.
	if restOK.Load() == 0 {
		code, answer, err := send("POST", srv.url+":predict", "application/json", bytes.NewReader(restBody))
		if err != nil || code != 200 || restProbabilities(answer, wantR) != nil {
			t.Errorf("a maximum-size REST request after the flood: %d %.200s %v", code, answer, err)
		}
	}
	if grpcOK.Load() == 0 {
		if resp, err := grpcPredict(conn, grpcReq); err != nil || grpcProbabilities(resp, wantG) != nil {
			t.Errorf("a maximum-size gRPC request after the flood: %v", err)
		}
	}
	if budget400.Load() == 0 {
		expectREST(t, "an over-budget request after the flood", "POST", srv.url+":predict", "application/json", overBudget, 400, "--max-request-bytes")
	}
}

// A panic while answering becomes INTERNAL / 500 and a log line, and the server goes on
// answering. The panic is injected through Server.testHook, which predict runs first.
func TestPanicIsAnsweredAndServerLivesOn(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	logs := &lockedBuffer{}
	cfg.Log = log.New(io.MultiWriter(logs, testWriter{t}), "", 0)
	ts := startServer(t, cfg)
	conn := dialGRPC(t, ts.grpc)
	x, n := randomImages(80*80*3, 1, 4)
	want := directPredict(t, model, x, n)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})
	req := predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(x, n)})

	hook := func() { panic("injected by the test") }
	ts.srv.testHook.Store(&hook)
	expectREST(t, "REST predict that panics", "POST", ts.url+":predict", "application/json", body, 500, "internal error")
	_, err := grpcPredict(conn, req)
	expectCode(t, "gRPC predict that panics", err, codes.Internal, "internal error")
	if got := strings.Count(logs.String(), "panic while answering"); got != 2 || !strings.Contains(logs.String(), "injected by the test") {
		t.Errorf("log has %d panic lines, want 2 naming the panic:\n%s", got, logs.String())
	}

	ts.srv.testHook.Store(nil)
	code, answer, err := send("POST", ts.url+":predict", "application/json", bytes.NewReader(body))
	if err != nil || code != 200 || restProbabilities(answer, want) != nil {
		t.Errorf("REST after the panic: %d %.200s %v", code, answer, err)
	}
	resp, err := grpcPredict(conn, req)
	if err != nil || grpcProbabilities(resp, want) != nil {
		t.Errorf("gRPC after the panic: %v", err)
	}
	if _, metrics, _ := send("GET", ts.root+"/metrics", "", nil); !strings.Contains(metrics, `emotions_serve_requests_total{code="Internal",endpoint="grpc.PredictionService/Predict"} 1`) ||
		!strings.Contains(metrics, `emotions_serve_requests_total{code="500",endpoint="panic"} 1`) {
		t.Errorf("/metrics does not count the two panics")
	}
}

// Beyond --max-in-flight requests in progress, REST and gRPC alike are refused at once
// (429 / RESOURCE_EXHAUSTED) before their body is read; status and metadata still answer.
func TestMaxInFlight(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	cfg.MaxInFlight = 1
	ts := startServer(t, cfg)
	conn := dialGRPC(t, ts.grpc)
	x, n := randomImages(80*80*3, 1, 8)
	want := directPredict(t, model, x, n)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})

	entered, proceed := make(chan struct{}), make(chan struct{})
	hook := func() {
		entered <- struct{}{}
		<-proceed
	}
	ts.srv.testHook.Store(&hook)
	held := make(chan string, 1)
	go func() {
		code, answer, err := send("POST", ts.url+":predict", "application/json", bytes.NewReader(body))
		held <- fmt.Sprint(code, " ", err, " ", answer)
	}()
	<-entered
	expectREST(t, "REST beyond --max-in-flight", "POST", ts.url+":predict", "application/json", body, 429, "--max-in-flight")
	_, err := grpcPredict(conn, predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(x, n)}))
	expectCode(t, "gRPC beyond --max-in-flight", err, codes.ResourceExhausted, "--max-in-flight")
	expectREST(t, "status while busy", "GET", ts.url, "", nil, 200, "")
	ts.srv.testHook.Store(nil)
	close(proceed)
	if got := <-held; !strings.HasPrefix(got, "200 <nil>") || restProbabilities(strings.SplitN(got, " ", 3)[2], want) != nil {
		t.Errorf("the request in progress: %.200s", got)
	}
	expectREST(t, "REST once the slot is free", "POST", ts.url+":predict", "application/json", body, 200, "")
}
