package tfserving

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
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
	slots chan struct{}
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
	return errorf(codes.ResourceExhausted, "server busy: %d requests in progress (--max-in-flight); retry later", cap(a.slots))
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
