package tfserving

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/tap"
)

// The limits that keep one request, or many, from taking the server down. Each is checked
// before memory is spent on what it bounds: a request's claimed sizes against
// --max-request-bytes before its tensors are allocated, the number of requests in progress
// against --max-in-flight before a body or message is read.

// elementCount is the number of elements of shape, or ok=false if a dimension is negative
// or the count exceeds limit (>= 0). Each product is compared with limit before it is
// formed, so no shape overflows int64 into a small or negative count.
func elementCount(shape []int64, limit int64) (n int64, ok bool) {
	n = 1
	over, empty := false, false
	for _, d := range shape {
		switch {
		case d < 0:
			return 0, false
		case d == 0:
			empty = true
		case over || n > limit/d:
			over = true
		default:
			n *= d
		}
	}
	switch {
	case empty: // however large the other dimensions claim to be
		return 0, true
	case over || n > limit:
		return 0, false
	}
	return n, true
}

// tensorBudget is how many bytes of tensor data one request may still decode to: the sum
// over its inputs is bounded by --max-request-bytes, whether the bytes came as
// tensor_content, as JSON numbers, or as one value filling a claimed shape.
type tensorBudget struct {
	max, left int64
}

func newTensorBudget(maxBytes int64) *tensorBudget {
	return &tensorBudget{max: maxBytes, left: maxBytes}
}

// elements is how many elements of size bytes the request may still add.
func (b *tensorBudget) elements(size int) int64 { return b.left / int64(size) }

// take spends n elements of size bytes; the caller has checked n <= b.elements(size).
func (b *tensorBudget) take(n int64, size int) { b.left -= n * int64(size) }

func (b *tensorBudget) exceeded(input string, what string) *Error {
	return errorf(codes.InvalidArgument, "input %s: %s: a request's tensors may hold at most %d bytes (--max-request-bytes)", input, what, b.max)
}

// admission bounds the requests being read, decoded, queued or run at once (--max-in-flight):
// memory then stays within about max-in-flight x a few times --max-request-bytes. It never
// waits: a request beyond the bound is refused at once, as a full batch queue is.
type admission struct {
	slots       chan struct{}
	refusedHook func() // counts refusals (metrics)
}

func newAdmission(n int) *admission {
	return &admission{slots: make(chan struct{}, max(n, 1))}
}

// enter takes a slot, or returns nil when all are taken; release gives it back.
func (a *admission) enter() (release func()) {
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }
	default:
		return nil
	}
}

func (a *admission) busy() *Error {
	if a.refusedHook != nil {
		a.refusedHook()
	}
	return errorf(codes.ResourceExhausted, "server busy: %d requests in progress (--max-in-flight); retry later", cap(a.slots))
}

// inFlight is how many requests hold a slot now.
func (a *admission) inFlight() int { return len(a.slots) }

// memoryBudget bounds the bytes of the requests in progress (--max-request-memory), as
// admission bounds their number: a request reserves its size before its body or tensors are
// read or decoded, and gives it back when answered. A request that does not fit waits in
// FIFO order for at most wait, then is refused: a burst of large requests is served at the
// rate the budget allows, the rest told at once to retry, instead of all of them being
// decoded together on a few cores and all timing out. FIFO also means a large request is
// never passed over forever by small ones that would fit before it.
type memoryBudget struct {
	max  int64
	wait time.Duration
	// drained runs (on its own goroutine) when the reservations fall back to zero after at
	// least drainAfter bytes were reserved since it last ran: the end of a burst, when the
	// memory its requests took can be handed back to the system.
	drained    func()
	drainAfter int64

	mu          sync.Mutex
	used        int64
	queue       []*budgetWaiter
	sinceDrain  int64
	refusedHook func() // counts refusals (metrics)
}

type budgetWaiter struct {
	n       int64
	granted chan struct{} // closed when the bytes are the waiter's
	ok      bool          // under memoryBudget.mu: granted
}

// reservation is bytes a request holds; release gives them back (once, whatever the path).
type reservation struct {
	b *memoryBudget
	n int64
}

func newMemoryBudget(max int64, wait time.Duration) *memoryBudget {
	return &memoryBudget{max: max, wait: wait}
}

// reserve takes n bytes (at most the budget: a larger n is charged the whole budget),
// waiting up to b.wait behind the requests queued before it. It fails with
// RESOURCE_EXHAUSTED when the wait runs out, or with ctx's error when ctx ends first.
func (b *memoryBudget) reserve(ctx context.Context, n int64) (*reservation, *Error) {
	w := b.enqueue(n)
	return b.await(ctx, w)
}

// enqueue grants n bytes at once if no one waits before it and they fit, or queues it.
func (b *memoryBudget) enqueue(n int64) *budgetWaiter {
	w := &budgetWaiter{n: min(max(n, 0), b.max), granted: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, w)
	b.grantLocked()
	return w
}

func (b *memoryBudget) await(ctx context.Context, w *budgetWaiter) (*reservation, *Error) {
	select {
	case <-w.granted:
		return &reservation{b: b, n: w.n}, nil
	default:
	}
	var expired <-chan time.Time
	if b.wait > 0 {
		timer := time.NewTimer(b.wait)
		defer timer.Stop()
		expired = timer.C
	} else {
		closed := make(chan time.Time)
		close(closed)
		expired = closed
	}
	select {
	case <-w.granted:
		return &reservation{b: b, n: w.n}, nil
	case <-expired:
	case <-ctx.Done():
	}
	b.mu.Lock()
	if w.ok { // granted while the wait ended: give the bytes back
		b.mu.Unlock()
		(&reservation{b: b, n: w.n}).release()
	} else {
		b.queue = slices.DeleteFunc(b.queue, func(q *budgetWaiter) bool { return q == w })
		b.grantLocked() // it may have held back smaller ones queued after it
		b.mu.Unlock()
	}
	if ctx.Err() != nil {
		return nil, contextError(ctx)
	}
	if b.refusedHook != nil {
		b.refusedHook()
	}
	return nil, errorf(codes.ResourceExhausted, "server busy: requests in progress hold the %d bytes of --max-request-memory and this one (%d bytes) waited %s for its turn; retry later",
		b.max, w.n, b.wait)
}

// grantLocked admits queued waiters in order while the first one fits.
func (b *memoryBudget) grantLocked() {
	for len(b.queue) > 0 && b.used+b.queue[0].n <= b.max {
		w := b.queue[0]
		b.queue = b.queue[1:]
		b.used += w.n
		b.sinceDrain += w.n
		w.ok = true
		close(w.granted)
	}
}

// shrink gives back what the request turned out not to need (a chunked body reserves
// --max-request-bytes until its size is known).
func (r *reservation) shrink(to int64) {
	if r == nil || to >= r.n {
		return
	}
	r.b.give(r.n - max(to, 0))
	r.n = max(to, 0)
}

// release gives the bytes back; it may be called again (deferred beside an earlier call).
func (r *reservation) release() {
	if r == nil || r.n == 0 {
		return
	}
	r.b.give(r.n)
	r.n = 0
}

func (b *memoryBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	drained := b.used == 0 && b.drained != nil && b.sinceDrain >= b.drainAfter
	if drained {
		b.sinceDrain = 0
	}
	b.mu.Unlock()
	if drained {
		go b.drained()
	}
}

// reserved is the bytes held now; waiting the requests queued for them.
func (b *memoryBudget) reserved() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *memoryBudget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// grpcTap admits a gRPC stream before its message is read (grpc-go reads the whole
// message before any interceptor runs) and bounds the stream's whole life: a client that
// trickles its message holds a slot for --read-timeout + --request-timeout at most. It runs
// on the connection's reader goroutine, so it must not block: hence admission.enter.
func (s *Server) grpcTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	release := s.admit.enter()
	if release == nil {
		return nil, s.admit.busy()
	}
	done := release
	if limit := s.streamLifetime(); limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		done = func() { cancel(); release() }
	}
	context.AfterFunc(ctx, done) // the stream's context ends with the stream, or at the deadline
	return ctx, nil
}

func (s *Server) streamLifetime() time.Duration {
	if s.cfg.ReadTimeout <= 0 || s.cfg.RequestTimeout <= 0 {
		return 0
	}
	return s.cfg.ReadTimeout + s.cfg.RequestTimeout
}

// writeTimeout bounds a REST exchange from its headers to the end of its answer: the body's
// arrival, the model and a client slow to read the answer all fit in it.
func (s *Server) writeTimeout() time.Duration {
	if s.cfg.ReadTimeout <= 0 || s.cfg.RequestTimeout <= 0 {
		return 0
	}
	return s.cfg.ReadTimeout + s.cfg.RequestTimeout + 10*time.Second
}

// A panic while answering one request must not take the others down: grpc-go does not
// recover handler panics at all (the process dies), net/http recovers them but answers
// nothing. These turn a panic into INTERNAL / 500 and a log line with the stack.

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, s.recovered(info.FullMethod, r)
		}
	}()
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.recovered(info.FullMethod, r)
		}
	}()
	return handler(srv, ss)
}

func (s *Server) recoverHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler { // net/http's own way to abort a response
				panic(rec)
			}
			// If the handler had already started its answer, this one is appended to it and
			// the client sees a broken response: still better than a dead server.
			s.writeError(w, "panic", s.recovered(r.Method+" "+r.URL.Path, rec), start)
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recovered(what string, r any) *Error {
	s.log.Printf("panic while answering %s: %v\n%s", what, r, debug.Stack())
	return &Error{Code: codes.Internal, Msg: fmt.Sprintf("internal error while answering %s (logged by the server)", what)}
}
