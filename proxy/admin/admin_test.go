package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestAdmin(t *testing.T) {
	var draining atomic.Bool
	var shut atomic.Int32
	h := Handler(Config{
		Metrics:     strings.NewReader("request_total 1\n"),
		ContentType: "text/plain; version=0.0.4",
		Draining:    draining.Load,
		Shutdown:    func() { shut.Add(1) },
	})
	off := Handler(Config{})
	tests := []struct {
		h          http.Handler
		method     string
		path       string
		remote     string
		draining   bool
		wantStatus int
		wantBody   string
	}{
		{h, "GET", "/metrics", "127.0.0.1:1", false, 200, "request_total 1"},
		{h, "GET", "/ready", "127.0.0.1:1", false, 200, "ready"},
		{h, "GET", "/ready", "127.0.0.1:1", true, 503, "draining"},
		{h, "GET", "/live", "127.0.0.1:1", true, 200, "live"},
		{h, "GET", "/shutdown", "127.0.0.1:1", false, 405, "POST"},
		{h, "POST", "/shutdown", "10.0.0.1:1", false, 403, "loopback"},
		{h, "POST", "/shutdown", "[::1]:1", false, 202, "shutting down"},
		{off, "POST", "/shutdown", "127.0.0.1:1", false, 404, "disabled"},
	}
	for _, tt := range tests {
		draining.Store(tt.draining)
		r := httptest.NewRequest(tt.method, tt.path, nil)
		r.RemoteAddr = tt.remote
		w := httptest.NewRecorder()
		tt.h.ServeHTTP(w, r)
		if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
			t.Errorf("%s %s from %s: %d %q, want %d %q", tt.method, tt.path, tt.remote, w.Code, w.Body.String(), tt.wantStatus, tt.wantBody)
		}
	}
	if shut.Load() != 1 {
		t.Fatalf("shutdown called %d times", shut.Load())
	}
}
