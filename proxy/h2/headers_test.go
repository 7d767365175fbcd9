package h2

import (
	"net/http"
	"reflect"
	"testing"
)

func TestStripHopByHop(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"nothing to strip", http.Header{"A": {"1"}, "Te": {"trailers"}}, http.Header{"A": {"1"}, "Te": {"trailers"}}},
		{"fixed list", http.Header{"A": {"1"}, "Connection": {"keep-alive"}, "Keep-Alive": {"5"}, "Proxy-Connection": {"x"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"websocket"}}, http.Header{"A": {"1"}}},
		{"named by Connection", http.Header{"Connection": {"x-foo, X-Bar", "x-baz"}, "X-Foo": {"1"}, "X-Bar": {"2"}, "X-Baz": {"3"}, "X-Keep": {"4"}}, http.Header{"X-Keep": {"4"}}},
		{"te other than trailers", http.Header{"Te": {"trailers, deflate"}}, http.Header{}},
		{"te twice", http.Header{"Te": {"trailers", "trailers"}}, http.Header{}},
		{"te case", http.Header{"Te": {"Trailers"}}, http.Header{"Te": {"Trailers"}}},
	}
	for _, tt := range tests {
		stripHopByHop(tt.in)
		if !reflect.DeepEqual(tt.in, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.in, tt.want)
		}
	}
}

func TestCopyResponseHeader(t *testing.T) {
	dst := http.Header{}
	copyResponseHeader(dst, http.Header{"Content-Type": {"a/b"}, "Connection": {"close"}, "X": {"1"}})
	want := http.Header{"Content-Type": {"a/b"}, "X": {"1"}, "Date": nil}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("got %v, want %v", dst, want)
	}
}

func TestGRPCHelpers(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "Application/GRPC;x=1": true,
		"application/grpc-web": false, "application/json": false, "": false,
	} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		if got := isGRPC(h); got != want {
			t.Errorf("isGRPC(%q) = %v", ct, got)
		}
	}
	for v, want := range map[string]int{"0": 0, "14": 14, "": -1, "x": -1, "1234": -1, "-1": -1} {
		h := http.Header{}
		if v != "" {
			h.Set("Grpc-Status", v)
		}
		if got := grpcStatus(h); got != want {
			t.Errorf("grpcStatus(%q) = %d, want %d", v, got, want)
		}
	}
	for in, want := range map[string]string{"plain text": "plain text", "50%": "50%25", "ü\n": "%C3%BC%0A"} {
		if got := grpcEncodeMessage(in); got != want {
			t.Errorf("grpcEncodeMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
