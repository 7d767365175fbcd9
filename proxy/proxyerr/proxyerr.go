// Package proxyerr holds the proxy's typed errors and maps them, in this one
// place, to what a client sees: an HTTP status, a gRPC status, the value of the
// weft-proxy-error response header, and the metric label that counts them.
package proxyerr

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Header is the response header that names the proxy's own failures, so a
// client (or a person reading a trace) can tell a proxy error from an
// application error with the same status code.
const Header = "weft-proxy-error"

// Kind classifies a proxy failure. The zero value is Unknown.
type Kind uint8

// The kinds of failure the proxy reports.
const (
	Unknown         Kind = iota // unclassified; reported as 502
	Connect                     // the endpoint refused or could not be reached
	Timeout                     // no response within the configured timeout
	NoEndpoints                 // discovery knows the target but it has no endpoints
	Protocol                    // the upstream broke the protocol (bad response, reset)
	BadRequest                  // the client sent a malformed request
	HeaderTooLarge              // the client's request headers exceed the limit
	Unauthenticated             // the inbound policy requires an authenticated (mTLS) client
	Canceled                    // the client went away; nothing is sent
	Overloaded                  // the proxy shed load (limits reached)
	numKinds
)

var kindInfo = [numKinds]struct {
	label string
	http  int
	grpc  codes.Code
}{
	Unknown:         {"unknown", http.StatusBadGateway, codes.Unknown},
	Connect:         {"connect_failed", http.StatusBadGateway, codes.Unavailable},
	Timeout:         {"timeout", http.StatusGatewayTimeout, codes.DeadlineExceeded},
	NoEndpoints:     {"no_endpoints", http.StatusServiceUnavailable, codes.Unavailable},
	Protocol:        {"protocol_error", http.StatusBadGateway, codes.Internal},
	BadRequest:      {"bad_request", http.StatusBadRequest, codes.Internal},
	HeaderTooLarge:  {"header_too_large", http.StatusRequestHeaderFieldsTooLarge, codes.Internal},
	Unauthenticated: {"unauthenticated", http.StatusForbidden, codes.PermissionDenied},
	Canceled:        {"canceled", 499, codes.Canceled},
	Overloaded:      {"overloaded", http.StatusServiceUnavailable, codes.Unavailable},
}

// String is the label used in the weft-proxy-error header and in metrics.
func (k Kind) String() string { return k.info().label }

// HTTPStatus is the status code the proxy answers with for this kind of failure.
// Canceled maps to 499 (nginx's "client closed request"); it is only ever counted.
func (k Kind) HTTPStatus() int { return k.info().http }

// GRPCCode is the grpc-status the proxy answers a gRPC request with.
func (k Kind) GRPCCode() codes.Code { return k.info().grpc }

func (k Kind) info() struct {
	label string
	http  int
	grpc  codes.Code
} {
	if k >= numKinds {
		return kindInfo[Unknown]
	}
	return kindInfo[k]
}

// Error is a failure of a given Kind wrapping its cause.
type Error struct {
	Kind Kind
	Err  error // the cause; may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Kind.String() + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error of kind k wrapping err.
func New(k Kind, err error) error { return &Error{Kind: k, Err: err} }

// KindOf classifies err: the Kind of the first *Error in its chain, Timeout for
// context.DeadlineExceeded or a net timeout, Canceled for context.Canceled,
// Unknown otherwise. A nil error has kind Unknown; callers check err first.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return Timeout
	}
	return Unknown
}
