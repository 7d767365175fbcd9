package metricsapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

// TestServeReadyAfterSync: /ready turns 200 once the informers synced, and
// the query API answers on its own listener.
func TestServeReadyAfterSync(t *testing.T) {
	t.Parallel()
	c := &counting{}
	s, err := New(Config{Client: fake.NewClientset(pod("web-1", "web-abc", "abc")), Interval: time.Hour, Scrape: c.scrape})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis, admin) }()
	get := func(addr net.Addr, path string) int {
		resp, err := http.Get(fmt.Sprintf("http://%s%s", addr, path))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Poll for the state, not for a time: the test fails only if it
	// never comes.
	for get(admin.Addr(), "/ready") != http.StatusOK {
		select {
		case err := <-done:
			t.Fatalf("Serve ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if code := get(lis.Addr(), StatPath+"?resource=deploy"); code != http.StatusOK {
		t.Errorf("stat answered %d", code)
	}
	if code := get(admin.Addr(), "/live"); code != http.StatusOK {
		t.Errorf("/live answered %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}
