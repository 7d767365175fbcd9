package proxyerr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestKindOf(t *testing.T) {
	t.Parallel()
	timeoutErr := &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"typed", New(Connect, errors.New("refused")), Connect},
		{"wrapped typed", fmt.Errorf("forward: %w", New(NoEndpoints, nil)), NoEndpoints},
		{"context deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Timeout},
		{"net timeout", timeoutErr, Timeout},
		{"canceled", context.Canceled, Canceled},
		{"plain", errors.New("boom"), Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Fatalf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   Kind
		label  string
		status int
		code   codes.Code
	}{
		{Connect, "connect_failed", 502, codes.Unavailable},
		{Timeout, "timeout", 504, codes.DeadlineExceeded},
		{NoEndpoints, "no_endpoints", 503, codes.Unavailable},
		{HeaderTooLarge, "header_too_large", 431, codes.Internal},
		{Unauthenticated, "unauthenticated", 403, codes.PermissionDenied},
		{Kind(200), "unknown", 502, codes.Unknown},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.label {
			t.Errorf("%d.String() = %q, want %q", tt.kind, got, tt.label)
		}
		if got := tt.kind.HTTPStatus(); got != tt.status {
			t.Errorf("%v.HTTPStatus() = %d, want %d", tt.kind, got, tt.status)
		}
		if got := tt.kind.GRPCCode(); got != tt.code {
			t.Errorf("%v.GRPCCode() = %v, want %v", tt.kind, got, tt.code)
		}
	}
	if got := (&Error{Kind: Timeout, Err: errors.New("after 1s")}).Error(); got != "timeout: after 1s" {
		t.Errorf("Error() = %q", got)
	}
}
