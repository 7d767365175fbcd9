package testapp

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadAgainstBackend(t *testing.T) {
	var log syncBuffer
	b := NewBackend(BackendConfig{Name: "b1"}, &log)
	s := httptest.NewServer(b)
	defer s.Close()
	ctx := t.Context()

	res, err := RunLoad(ctx, LoadSpec{URL: s.URL + "/flaky?fail=0.5", Count: 200, Rate: 200, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || res.OK+res.Failed != 200 || res.Backends["b1"] != 200 || res.Status["500"] != res.Failed {
		t.Fatalf("result %+v", res)
	}
	if res.Failed < 50 || res.Failed > 150 {
		t.Errorf("fail=0.5: %d of 200 failed", res.Failed)
	}

	res, err = RunLoad(ctx, LoadSpec{URL: s.URL + "/post", Method: "POST", Body: "x", Count: 5, Rate: 100})
	if err != nil || res.OK != 5 {
		t.Fatalf("POST: %+v %v", res, err)
	}
	res, err = RunLoad(ctx, LoadSpec{URL: s.URL + "/slow?sleep=5s", Count: 1, Rate: 1, Timeout: 50 * time.Millisecond})
	if err != nil || res.Failed != 1 || res.Status["error"] != 1 {
		t.Fatalf("slow: %+v %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "cancelled GET /slow") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "cancelled GET /slow") {
		t.Errorf("backend log lacks the cancellation: %q", log.String())
	}
	counts, err := RunLoad(ctx, LoadSpec{URL: s.URL + "/counts", Count: 1, Rate: 1})
	if err != nil || counts.OK != 1 {
		t.Fatalf("counts: %+v %v", counts, err)
	}
	b.mu.Lock()
	got := b.counts["GET /flaky"] + b.counts["POST /post"]
	b.mu.Unlock()
	if got != 205 {
		t.Errorf("backend counted %d requests, want 205", got)
	}

	if _, err := RunLoad(ctx, LoadSpec{URL: s.URL, Count: 0, Rate: 1}); err == nil || !strings.Contains(err.Error(), "count 0") {
		t.Errorf("count 0: err %v", err)
	}
}

func TestLoadGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newBackendGRPC("g1", time.Millisecond)
	go func() { _ = s.Serve(ln) }()
	defer s.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := RunLoad(ctx, LoadSpec{URL: ln.Addr().String(), GRPC: true, Count: 20, Rate: 200, Concurrency: 2})
	if err != nil || res.OK != 20 || res.Backends["g1"] != 20 || res.Status["OK"] != 20 {
		t.Fatalf("grpc: %+v %v", res, err)
	}
}
