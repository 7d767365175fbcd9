package identity

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// InvalidTokenError means the ServiceAccount token did not authenticate.
type InvalidTokenError struct{ Reason string }

func (e *InvalidTokenError) Error() string { return "invalid token: " + e.Reason }

// InvalidRequestError means the requested identity or the CSR is malformed or
// asks for something the issuer never signs.
type InvalidRequestError struct{ Reason string }

func (e *InvalidRequestError) Error() string { return "invalid request: " + e.Reason }

// MismatchError means the token, the requested identity and the CSR do not
// all name the same workload.
type MismatchError struct {
	What     string // "requested identity" or "CSR"
	Got      string
	Expected string // the identity the token proves
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s %q does not match the token's identity %q", e.What, e.Got, e.Expected)
}

// ErrNotReady means no valid issuer is loaded yet.
var ErrNotReady = errors.New("issuer not loaded")

// ErrOverloaded means the service is at its concurrency limit.
var ErrOverloaded = errors.New("too many certificate requests in flight")

// grpcError maps err to a gRPC status: the one place where identity errors
// become codes.
func grpcError(err error) error {
	var (
		tok *InvalidTokenError
		req *InvalidRequestError
		mis *MismatchError
	)
	switch {
	case errors.As(err, &tok):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.As(err, &req):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &mis):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrNotReady):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrOverloaded):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// refusalReason is the metric label for a refused request.
func refusalReason(err error) string {
	var (
		tok *InvalidTokenError
		req *InvalidRequestError
		mis *MismatchError
	)
	switch {
	case errors.As(err, &tok):
		return "invalid_token"
	case errors.As(err, &req):
		return "invalid_request"
	case errors.As(err, &mis):
		return "identity_mismatch"
	case errors.Is(err, ErrNotReady):
		return "not_ready"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	}
	return "internal"
}
