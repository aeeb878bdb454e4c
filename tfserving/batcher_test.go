package tfserving

import (
	"context"
	"strings"
	"testing"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	"google.golang.org/grpc/codes"

	"github.com/emotions-dev/emotions/tfgraph"
)

func oneRow(v float32) map[string]rawTensor {
	return map[string]rawTensor{"x": {dtype: tf.Float, shape: []int64{1, 1}, data: float32Bytes([]float32{v})}}
}

// identity echoes x as y, after waiting for release.
func blockingRun(release <-chan struct{}) runFunc {
	return func(_ string, in map[string]*tf.Tensor) (map[string]*tf.Tensor, error) {
		<-release
		vals, err := tfgraph.Float32s(in["x"])
		if err != nil {
			return nil, err
		}
		t, err := tfgraph.Float32Tensor(vals, in["x"].Shape()...)
		return map[string]*tf.Tensor{"y": t}, err
	}
}

func TestBatcherQueueBound(t *testing.T) {
	release, running := make(chan struct{}), make(chan struct{}, 4) // one per run: never blocks the worker
	run := blockingRun(release)
	b := newBatcher(func(sig string, in map[string]*tf.Tensor) (map[string]*tf.Tensor, error) {
		running <- struct{}{}
		return run(sig, in)
	}, BatchOptions{MaxBatchSize: 1, Timeout: time.Millisecond, Threads: 1, MaxQueued: 2}, nil)

	// One request is being run (blocked), one sits in the collector, two fill the queue:
	// the next is refused at once instead of waiting without bound. The first four are
	// queued one by one, each once the state before it is reached.
	enqueue := func(v float32) *task {
		t.Helper()
		tk := &task{ctx: context.Background(), signature: "s", key: "s|x", inputs: oneRow(v), rows: 1, result: make(chan taskResult, 1)}
		if err := b.enqueue(tk); err != nil {
			t.Fatalf("request %v: %v", v, err)
		}
		return tk
	}
	queued := []*task{enqueue(0)}
	<-running
	queued = append(queued, enqueue(1))
	waitFor(t, "the collector to take request 1", func() bool { return len(b.queue) == 0 })
	queued = append(queued, enqueue(2), enqueue(3))
	_, err := b.submit(context.Background(), "s", oneRow(9))
	if codeOf(err) != codes.ResourceExhausted || restStatus(err) != 429 {
		t.Errorf("full queue: %v (code %v, HTTP %d), want RESOURCE_EXHAUSTED / 429", err, codeOf(err), restStatus(err))
	}
	close(release)
	for i, tk := range queued {
		if r := <-tk.result; r.err != nil {
			t.Errorf("queued request %d: %v", i, r.err)
		}
	}
	b.close()
}

// waitFor polls cond until it holds: it waits for a state another goroutine reaches, not
// for a time that state takes; the bound only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(slowBound); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", slowBound, what)
		}
	}
}

func TestBatcherDeadline(t *testing.T) {
	release := make(chan struct{})
	b := newBatcher(blockingRun(release), BatchOptions{MaxBatchSize: 4, Timeout: time.Millisecond, Threads: 1, MaxQueued: 8}, nil)
	defer b.close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := b.submit(ctx, "s", oneRow(1))
	if codeOf(err) != codes.DeadlineExceeded || restStatus(err) != 504 {
		t.Fatalf("a run that outlasts the deadline: %v (HTTP %d), want DEADLINE_EXCEEDED / 504", err, restStatus(err))
	}
}

func TestBatcherSplitsRowsBack(t *testing.T) {
	release := make(chan struct{})
	close(release)
	// The batch is full with the 4th request; the timeout only catches a hang.
	b := newBatcher(blockingRun(release), BatchOptions{MaxBatchSize: 4, Timeout: slowBound, Threads: 1, MaxQueued: 8}, nil)
	defer b.close()
	type answer struct {
		want float32
		got  []float64
		err  error
	}
	answers := make(chan answer, 4)
	for i := 0; i < 4; i++ {
		go func(v float32) {
			out, err := b.submit(context.Background(), "s", oneRow(v))
			if err != nil {
				answers <- answer{want: v, err: err}
				return
			}
			got, err := out["y"].values()
			answers <- answer{want: v, got: got, err: err}
		}(float32(i + 1))
	}
	for i := 0; i < 4; i++ {
		a := <-answers
		if a.err != nil || len(a.got) != 1 || float32(a.got[0]) != a.want {
			t.Errorf("request %v got %v, %v", a.want, a.got, a.err)
		}
	}
	if runs, tasks := b.stats(); tasks != 4 || runs != 1 {
		t.Errorf("4 concurrent requests took %d runs", runs)
	}
}

// A request of more rows than a batch runs in batch-sized chunks, its outputs put back in
// order: no request chooses how many rows one session run holds.
func TestBatcherSplitsLargeRequests(t *testing.T) {
	release := make(chan struct{})
	close(release)
	var rowsPerRun []int
	b := newBatcher(blockingRun(release), BatchOptions{MaxBatchSize: 4, Timeout: time.Millisecond, Threads: 1, MaxQueued: 8},
		func(rows, _ int) { rowsPerRun = append(rowsPerRun, rows) })
	vals := make([]float32, 10)
	for i := range vals {
		vals[i] = float32(i)
	}
	in := map[string]rawTensor{"x": {dtype: tf.Float, shape: []int64{10, 1}, data: float32Bytes(vals)}}
	out, err := b.submit(context.Background(), "s", in)
	b.close() // the observe callback runs on the worker: read rowsPerRun after it stopped
	if err != nil {
		t.Fatal(err)
	}
	got, err := out["y"].values()
	if err != nil || len(got) != 10 || !equalShape(out["y"].shape, []int64{10, 1}) {
		t.Fatalf("outputs %v (shape %v), %v", got, out["y"].shape, err)
	}
	for i, v := range got {
		if v != float64(i) {
			t.Fatalf("row %d came back as %v: chunks out of order", i, v)
		}
	}
	if len(rowsPerRun) != 3 || rowsPerRun[0] != 4 || rowsPerRun[1] != 4 || rowsPerRun[2] != 2 {
		t.Errorf("rows per session run %v, want [4 4 2]", rowsPerRun)
	}
}

// A panic while running a batch answers its requests with INTERNAL; the worker lives on.
func TestBatcherSurvivesPanic(t *testing.T) {
	calls := 0
	run := func(_ string, in map[string]*tf.Tensor) (map[string]*tf.Tensor, error) {
		calls++
		if calls == 1 {
			panic("injected")
		}
		return map[string]*tf.Tensor{"y": in["x"]}, nil
	}
	b := newBatcher(run, BatchOptions{MaxBatchSize: 1, Timeout: time.Millisecond, Threads: 1, MaxQueued: 2}, nil)
	defer b.close()
	if _, err := b.submit(context.Background(), "s", oneRow(1)); codeOf(err) != codes.Internal || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("panicking run: %v, want INTERNAL", err)
	}
	out, err := b.submit(context.Background(), "s", oneRow(2))
	if got, _ := out["y"].values(); err != nil || len(got) != 1 || got[0] != 2 {
		t.Fatalf("next request after the panic: %v, %v", got, err)
	}
}
