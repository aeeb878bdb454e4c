package tfserving

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error carries the canonical code TF Serving would answer with; REST maps it to an HTTP
// status the way TF Serving does (ToHTTPStatusCode), gRPC sends it as is.
type Error struct {
	Code codes.Code
	Msg  string
	HTTP int // REST status when TF Serving's mapping has none (405, 413); 0 = from Code
}

func (e *Error) Error() string { return e.Msg }

// GRPCStatus lets grpc send the code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Msg) }

func errorf(code codes.Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// codeOf is err's canonical code: Internal for errors that are not ours.
func codeOf(err error) codes.Code {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Internal
}

// contextError turns a finished request context into TF Serving's error.
func contextError(ctx context.Context) *Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errorf(codes.DeadlineExceeded, "request timed out (--request-timeout) before the model answered")
	}
	return errorf(codes.Canceled, "request cancelled by the client")
}

// restStatus is the HTTP status REST answers err with.
func restStatus(err error) int {
	var e *Error
	if errors.As(err, &e) && e.HTTP != 0 {
		return e.HTTP
	}
	return httpStatus(codeOf(err))
}

// httpStatus follows TF Serving's http_rest_api_util ToHTTPStatusCode.
func httpStatus(code codes.Code) int {
	switch code {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499 // client closed request
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}
