package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestHealthDrain(t *testing.T) {
	var h Health
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- HTTPListener(ctx, ln, &h, time.Second) }()
	url := "http://" + ln.Addr().String() + "/healthz"
	status := func() int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusOK {
		t.Errorf("ready status = %d, want 200", got)
	}
	h.Drain()
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("draining status = %d, want 503", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("HTTPListener after cancel: %v", err)
	}
}
