package tfserving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/emotions-dev/emotions/internal/malloc"
	"github.com/emotions-dev/emotions/internal/testutil"
)

func (b *memoryBudget) isGranted(w *budgetWaiter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return w.ok
}

// Requests are admitted in the order they came: one that would fit does not pass one queued
// before it that does not, and giving bytes back admits the next ones in order.
func TestMemoryBudgetIsFIFO(t *testing.T) {
	b := newMemoryBudget(10, time.Hour)
	ctx := context.Background()
	holder := b.enqueue(10)
	a, big, small := b.enqueue(6), b.enqueue(6), b.enqueue(1)
	if !b.isGranted(holder) || b.isGranted(a) || b.isGranted(big) || b.isGranted(small) {
		t.Fatalf("full budget: granted holder %v, a %v, big %v, small %v; want only the holder",
			b.isGranted(holder), b.isGranted(a), b.isGranted(big), b.isGranted(small))
	}
	held, err := b.await(ctx, holder)
	if err != nil {
		t.Fatal(err)
	}
	held.release()
	if !b.isGranted(a) || b.isGranted(big) || b.isGranted(small) {
		t.Errorf("after the holder left: a %v, big %v, small %v; want a only (small waits behind big)", b.isGranted(a), b.isGranted(big), b.isGranted(small))
	}
	ra, _ := b.await(ctx, a)
	ra.release()
	ra.release() // a second release (deferred beside the first) gives nothing back twice
	if !b.isGranted(big) || !b.isGranted(small) || b.reserved() != 7 || b.waiting() != 0 {
		t.Errorf("after a left: big %v, small %v, %d reserved, %d waiting; want both in, 7, 0", b.isGranted(big), b.isGranted(small), b.reserved(), b.waiting())
	}
	rb, _ := b.await(ctx, big)
	rs, _ := b.await(ctx, small)
	rb.shrink(2) // a chunked body turned out smaller than it reserved
	if b.reserved() != 3 {
		t.Errorf("after shrinking 6 to 2: %d reserved, want 3", b.reserved())
	}
	rb.release()
	rs.release()
	if b.reserved() != 0 || b.waiting() != 0 {
		t.Errorf("all released: %d reserved, %d waiting", b.reserved(), b.waiting())
	}
}

// A request that gives up while queued (its client left, or its wait ran out) leaves the
// queue, and those it held back go in.
func TestMemoryBudgetWaitersLeave(t *testing.T) {
	b := newMemoryBudget(10, 0) // no waiting: refused at once
	drained := make(chan struct{}, 1)
	b.drained, b.drainAfter = func() { drained <- struct{}{} }, 10
	holder, err := b.reserve(context.Background(), 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.reserve(context.Background(), 4); err == nil || err.Code != codes.ResourceExhausted || !strings.Contains(err.Msg, "--max-request-memory") {
		t.Errorf("over the budget with no wait: %v, want RESOURCE_EXHAUSTED naming --max-request-memory", err)
	}

	b.wait = time.Hour
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	big, small := b.enqueue(4), b.enqueue(2)
	if _, err := b.await(gone, big); err == nil || err.Code != codes.Canceled {
		t.Errorf("client gone while queued: %v, want CANCELLED", err)
	}
	if !b.isGranted(small) || b.waiting() != 0 {
		t.Errorf("after the big one left the queue: small granted %v, %d waiting", b.isGranted(small), b.waiting())
	}
	rs, _ := b.await(context.Background(), small)
	rs.release()
	holder.release()
	if b.reserved() != 0 {
		t.Errorf("%d bytes still reserved", b.reserved())
	}
	<-drained // 10 bytes were reserved since the start: the end of a burst
}

// budgetServer serves the tiny model with a memory budget of 3 requests of the size the
// test sends.
func budgetServer(t *testing.T, requestBytes int64) (*testServer, string) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 0)
	cfg := DefaultConfig()
	cfg.ModelBase = base
	cfg.Poll = 0
	cfg.MaxRequestBytes = requestBytes
	cfg.MaxRequestMemory = 3 * requestBytes
	cfg.AdmissionWait = 20 * time.Millisecond
	return startServer(t, cfg), model
}

// A burst beyond --max-request-memory: the requests that fit are answered, the others
// refused with 429 / RESOURCE_EXHAUSTED (not left to time out), REST and gRPC alike. The
// admitted ones are held in predict until every other has its answer, so the outcome does
// not depend on scheduling.
func TestBurstBeyondMemoryBudget(t *testing.T) {
	x, _ := randomImages(80*80*3, 4, 31)
	body, _ := json.Marshal(map[string]any{"instances": nested(x[:80*80*3], 1, 80)})
	// A gRPC message of the same size as the REST body (padded with JSON whitespace).
	var req *pb.PredictRequest
	for n := 1; ; n++ {
		req = predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(x[:n*80*80*3], n)})
		if proto.Size(req) >= len(body) {
			break
		}
	}
	size := proto.Size(req)
	body = append(body, bytes.Repeat([]byte(" "), size-len(body))...)
	ts, _ := budgetServer(t, int64(size))
	conn := dialGRPC(t, ts.grpc)

	const admitted, clients = 3, 8
	entered, proceed := make(chan struct{}, clients), make(chan struct{})
	hook := func() {
		entered <- struct{}{}
		<-proceed
	}
	ts.srv.testHook.Store(&hook)
	type answer struct {
		grpc bool
		code int // HTTP status, or the gRPC code
		msg  string
	}
	answers := make(chan answer, clients)
	for i := 0; i < clients; i++ {
		if i%2 == 0 {
			go func() {
				code, raw, err := send("POST", ts.url+":predict", "application/json", bytes.NewReader(body))
				answers <- answer{false, code, fmt.Sprint(raw, err)}
			}()
		} else {
			go func() {
				_, err := grpcPredict(conn, req)
				st := status.Convert(err)
				answers <- answer{true, int(st.Code()), st.Message()}
			}()
		}
	}
	var got []answer
	for seen := 0; seen < admitted || len(got) < clients-admitted; {
		select {
		case <-entered:
			seen++
		case a := <-answers:
			got = append(got, a)
		}
	}
	ts.srv.testHook.Store(nil)
	close(proceed)
	for _, a := range got {
		if (!a.grpc && a.code != http.StatusTooManyRequests) || (a.grpc && codes.Code(a.code) != codes.ResourceExhausted) || !strings.Contains(a.msg, "--max-request-memory") {
			t.Errorf("beyond the budget: grpc=%v %d %.200s, want 429 / RESOURCE_EXHAUSTED naming --max-request-memory", a.grpc, a.code, a.msg)
		}
	}
	for i := 0; i < admitted; i++ {
		if a := <-answers; (!a.grpc && a.code != 200) || (a.grpc && codes.Code(a.code) != codes.OK) {
			t.Errorf("admitted: grpc=%v %d %.200s, want an answer", a.grpc, a.code, a.msg)
		}
	}
	if r, w := ts.srv.budget.reserved(), ts.srv.budget.waiting(); r != 0 || w != 0 {
		t.Errorf("after the burst: %d bytes reserved, %d waiting; want 0, 0", r, w)
	}
	_, metrics, _ := send("GET", ts.root+"/metrics", "", nil)
	for _, want := range []string{
		fmt.Sprintf(`emotions_serve_admission_refused_total{limit="memory"} %d`, clients-admitted),
		`emotions_serve_reserved_bytes 0`,
		`emotions_serve_queue_depth{stage="admission"} 0`,
		`emotions_serve_queue_depth{stage="batch"} 0`,
		fmt.Sprintf(`emotions_serve_request_bytes_count %d`, clients), // sizes are observed before admission
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The reservation is given back on every path: an error, a chunked body, a panic, a client
// that has gone, gRPC errors.
func TestReservationReleasedOnEveryPath(t *testing.T) {
	ts, _ := budgetServer(t, 1<<20)
	conn := dialGRPC(t, ts.grpc)
	zero := func(what string) {
		t.Helper()
		if r, w := ts.srv.budget.reserved(), ts.srv.budget.waiting(); r != 0 || w != 0 {
			t.Errorf("after %s: %d bytes reserved, %d waiting; want 0, 0", what, r, w)
		}
	}
	x, n := randomImages(80*80*3, 1, 32)
	body, _ := json.Marshal(map[string]any{"instances": nested(x, n, 80)})

	expectREST(t, "malformed body", "POST", ts.url+":predict", "application/json", []byte("{"), 400, "malformed JSON")
	zero("a malformed body")
	expectREST(t, "unknown version", "POST", ts.url+"/versions/7:predict", "application/json", body, 404, "version 7")
	zero("an unknown version")
	code, _, err := send("POST", ts.url+":predict", "application/json", struct{ *bytes.Reader }{bytes.NewReader(body)}) // no length: chunked
	if err != nil || code != 200 {
		t.Errorf("chunked body: %d %v", code, err)
	}
	zero("a chunked body")
	expectREST(t, "image", "POST", ts.url+":classify_image", "image/jpeg", []byte("not an image"), 200, "")
	zero(":classify_image")
	_, err = grpcPredict(conn, predictRequest("nope", map[string]*tensorpb.TensorProto{"images": imagesProto(x, n)}))
	expectCode(t, "gRPC unknown model", err, codes.NotFound, "nope")
	zero("a gRPC error")

	hook := func() { panic("injected by the test") }
	ts.srv.testHook.Store(&hook)
	expectREST(t, "REST predict that panics", "POST", ts.url+":predict", "application/json", body, 500, "internal error")
	zero("a REST panic")
	_, err = grpcPredict(conn, predictRequest("emo", map[string]*tensorpb.TensorProto{"images": imagesProto(x, n)}))
	expectCode(t, "gRPC predict that panics", err, codes.Internal, "internal error")
	zero("a gRPC panic")
	ts.srv.testHook.Store(nil)

	// A client gone before its answer: served in this goroutine, so the handler has
	// returned when ServeHTTP does.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/v1/models/emo:predict", bytes.NewReader(body)).WithContext(ctx)
	rec := httptest.NewRecorder()
	ts.srv.Handler().ServeHTTP(rec, r)
	if rec.Code == 200 {
		t.Errorf("a request whose client has gone was answered 200")
	}
	zero("a client gone")
}

// Unloading a version hands its memory back: the C allocator's too (malloc_trim on glibc).
func TestMemoryReturnedOnUnload(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	model := testutil.TinyModel(t)
	exportTo(t, model, base, 1)
	cfg := DefaultConfig()
	cfg.ModelName = "emo"
	cfg.ModelBase = base
	cfg.Poll = 0
	cfg.VersionSettle = 0 // version 2 is complete when sync sees it: load it at once
	cfg.Log = log.New(testWriter{t}, "", 0)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.models.closeAll()
	ran := make(chan struct{}, 1)
	srv.memory.delay = 0
	srv.memory.afterRun = func() {
		select {
		case ran <- struct{}{}:
		default:
		}
	}
	if srv.memory.requested.Load() != 0 {
		t.Fatalf("memory return requested before anything was unloaded")
	}
	exportTo(t, model, base, 2)
	if err := srv.models.sync(); err != nil {
		t.Fatal(err)
	}
	srv.models.unloads.Wait()
	if got := srv.models.versions(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("versions %v after version 2 appeared, want [2]", got)
	}
	if srv.memory.requested.Load() != 1 {
		t.Errorf("unloading version 1 requested %d memory returns, want 1", srv.memory.requested.Load())
	}
	<-ran
	t.Logf("memory returned after the unload; malloc_trim available: %v", malloc.Supported())
}
