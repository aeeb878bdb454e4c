package tfserving

import (
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emotions-dev/emotions/internal/malloc"
)

// memoryReturner hands freed memory back to the system once a version is unloaded or a burst
// of large requests has drained. Neither allocator does it soon enough on its own: Go's heap
// shrinks only after its next collection, which an idle server may not run for two minutes,
// and glibc's malloc (TensorFlow's tensors and a model's weights) keeps what is freed in its
// arenas. A burst leaves mostly Go heap, an unload mostly glibc arenas, so a run returns both
// (measured, with what an arena limit adds: experiments/RESULTS.md, "bench-serve"). Runs are
// debounced: one, delay after the last request for one.
type memoryReturner struct {
	delay time.Duration
	// mode is $EMOTIONS_SERVE_MEMORY_RETURN, for measuring what each part brings back
	// (bench-serve): "off" does nothing, "go" only Go's heap; unset, both.
	mode string
	// afterRun, when set, is told of each run (tests wait on it).
	afterRun func()

	mu    sync.Mutex
	timer *time.Timer

	requested, runs atomic.Int64
}

func newMemoryReturner(delay time.Duration) *memoryReturner {
	return &memoryReturner{delay: delay, mode: os.Getenv("EMOTIONS_SERVE_MEMORY_RETURN")}
}

// schedule asks for a run delay from now, replacing one not yet started.
func (m *memoryReturner) schedule() {
	m.requested.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer == nil {
		m.timer = time.AfterFunc(m.delay, m.run)
	} else {
		m.timer.Reset(m.delay)
	}
}

// run returns Go's free heap (a collection, then every free span) and the C allocator's.
func (m *memoryReturner) run() {
	if m.mode != "off" {
		debug.FreeOSMemory()
	}
	if m.mode == "" {
		malloc.Trim()
	}
	m.runs.Add(1)
	if m.afterRun != nil {
		m.afterRun()
	}
}

// stop cancels a run not yet started (the server is shutting down).
func (m *memoryReturner) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil {
		m.timer.Stop()
	}
}

// batchQueued is the requests (or row chunks of one) waiting for a batch, all versions together.
func (r *registry) batchQueued() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, s := range r.loaded {
		n += len(s.batch.queue)
	}
	return n
}
