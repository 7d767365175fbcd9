package destclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/proxy/balance"
	"github.com/weftmesh/weft/proxy/discovery"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

var booksOrig = ap(booksVIP + ":80")

func TestEndpointsFollowTheService(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	c := newClient(t, cp, nil)

	ep, err := c.Resolve(booksName, booksOrig)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Addr != ap("198.18.0.5:7000") || ep.Identity != "spiffe://example.org/ns/demo/sa/books" || ep.Load == nil {
		t.Fatalf("first endpoint %+v", ep)
	}
	if ep.Peer.Authority != booksName || ep.Peer.TargetAddr != "198.18.0.5:7000" || ep.Peer.ServerID != ep.Identity {
		t.Fatalf("peer %+v", ep.Peer)
	}
	hasLabel := func(name, value string) bool {
		for _, l := range ep.Peer.Labels {
			if l.Name == name && l.Value == value {
				return true
			}
		}
		return false
	}
	if !hasLabel("dst_service", "books") || !hasLabel("dst_pod", "books-1") {
		t.Fatalf("labels %v", ep.Peer.Labels)
	}
	// The same subscription serves the authority spelt differently.
	for _, a := range []string{"BOOKS.demo.svc.cluster.local.:80", "books.demo.svc.cluster.local"} {
		if ep, err := c.Resolve(a, booksOrig); err != nil || ep.Addr != ap("198.18.0.5:7000") {
			t.Fatalf("%s: %v %v", a, ep.Addr, err)
		}
	}
	if n := c.Subscriptions(); n != 1 {
		t.Fatalf("%d subscriptions, want one shared", n)
	}

	// Scale up: the new endpoint gets traffic.
	cp.setEndpoints(t, "books", "198.18.0.5", "198.18.0.6", "198.18.0.7")
	eventually(t, "three endpoints picked", func() bool { return len(picked(t, c, booksName, booksOrig, 60)) == 3 })

	// Scale down: removed endpoints get no new requests.
	cp.setEndpoints(t, "books", "198.18.0.7")
	eventually(t, "one endpoint left", func() bool { return len(picked(t, c, booksName, booksOrig, 20)) == 1 })
	if got := picked(t, c, booksName, booksOrig, 200); got["198.18.0.7:7000"] != 200 {
		t.Fatalf("after removal picks went to %v", got)
	}

	// All gone: NoEndpoints{exists} → 503 after the fail-fast timeout.
	cp.setEndpoints(t, "books")
	eventually(t, "NoEndpoints", func() bool {
		_, err := c.Resolve(booksName, booksOrig)
		return proxyerr.KindOf(err) == proxyerr.NoEndpoints
	})
	start := time.Now()
	_, err = c.Resolve(booksName, booksOrig)
	if proxyerr.KindOf(err) != proxyerr.NoEndpoints || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("no endpoints: %v after %v (want NoEndpoints after the 500ms fail-fast)", err, time.Since(start))
	}

	// A request waiting for endpoints gets one as soon as it appears.
	c2 := newClient(t, cp, func(cfg *Config) { cfg.FailFastTimeout = 30 * time.Second })
	s2 := c2.lookup(booksName, booksOrig)
	eventually(t, "second client learns there are no endpoints", func() bool { return s2.state.Load() == stateKnown })
	res := make(chan error, 1)
	go func() {
		ep, err := c2.Resolve(booksName, booksOrig)
		if err == nil && ep.Addr != ap("198.18.0.9:7000") {
			err = errors.New("wrong endpoint " + ep.Addr.String())
		}
		res <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cp.setEndpoints(t, "books", "198.18.0.9")
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("waiting request did not get the new endpoint")
	}
}

func TestControlPlaneOutageKeepsEndpoints(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	c := newClient(t, cp, nil)
	cp.setEndpoints(t, "books", "198.18.0.5", "198.18.0.6")
	eventually(t, "two endpoints", func() bool { return len(picked(t, c, booksName, booksOrig, 40)) == 2 })
	if p := c.Profile(context.Background(), booksName, booksOrig); p == nil {
		t.Fatal("no profile before the outage")
	}

	if f, e := c.health.failing.Load(), c.health.errors.Load(); f != 0 || e != 0 {
		t.Fatalf("before the outage: %d failing streams, %d errors; want none", f, e)
	}
	cp.stop(t)
	s := c.lookup(booksName, booksOrig)
	connects := s.connects.Load()
	eventually(t, "both streams failing", func() bool { return c.health.failing.Load() == 2 })
	time.Sleep(300 * time.Millisecond) // several reconnection attempts fail
	got := picked(t, c, booksName, booksOrig, 200)
	if len(got) != 2 || got["198.18.0.5:7000"]+got["198.18.0.6:7000"] != 200 {
		t.Fatalf("during the outage picks went to %v, want the last known two", got)
	}
	if p := c.Profile(context.Background(), booksName, booksOrig); p == nil {
		t.Fatal("profile lost during the outage")
	}
	// A change made while the control plane is down is seen after it returns.
	cp.setEndpoints(t, "books", "198.18.0.6", "198.18.0.8")
	cp.start(t)
	eventually(t, "updates after the restart", func() bool {
		got := picked(t, c, booksName, booksOrig, 40)
		return len(got) == 2 && got["198.18.0.8:7000"] > 0 && got["198.18.0.5:7000"] == 0
	})
	if s.connects.Load() <= connects {
		t.Fatal("the stream did not reconnect")
	}
	eventually(t, "no stream failing after the restart", func() bool { return c.health.failing.Load() == 0 })
	if e := c.health.errors.Load(); e < 2 {
		t.Errorf("stream errors = %d, want at least one per stream", e)
	}
	var out strings.Builder
	for _, f := range c.Families() {
		fmt.Fprintf(&out, "%s %v\n", f.Name, f.Samples[0].Value)
	}
	if !strings.Contains(out.String(), "weft_discovery_streams_failing 0\n") || !strings.Contains(out.String(), "weft_discovery_stream_errors_total") {
		t.Errorf("families:\n%s", out.String())
	}
	cp.setEndpoints(t, "books", "198.18.0.8")
	eventually(t, "deltas after the restart", func() bool { return len(picked(t, c, booksName, booksOrig, 20)) == 1 })
}

func TestProfileLifecycle(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	c := newClient(t, cp, nil)
	ctx := context.Background()
	p := c.Profile(ctx, booksName, booksOrig)
	if p == nil || len(p.Routes) != 0 || p.Budget == nil || p.Budget.Available() != 100 {
		t.Fatalf("default profile: %+v", p)
	}
	res := cp.dyn.Resource(sp.GroupVersionResource).Namespace("demo")
	obj := serviceProfile(map[string]any{"routes": []any{map[string]any{
		"name": "GET /books", "condition": map[string]any{"method": "GET", "pathRegex": "/books/\\d+"},
		"isRetryable": true, "timeout": "100ms"}}})
	if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route created", func() bool {
		r := c.Profile(ctx, booksName, booksOrig).Match("GET", "/books/1")
		return r != nil && r.Name == "GET /books" && r.Retryable && r.Timeout == 100*time.Millisecond
	})
	obj = serviceProfile(map[string]any{"routes": []any{map[string]any{
		"name": "any /books", "condition": map[string]any{"pathRegex": "/books/.*"}}},
		"retryBudget": map[string]any{"retryRatio": 0.5, "minRetriesPerSecond": int64(1), "ttl": "2s"}})
	if _, err := res.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route edited", func() bool {
		p := c.Profile(ctx, booksName, booksOrig)
		return p.Match("POST", "/books/x").RouteName() == "any /books" && p.Budget.Available() == 2
	})
	if err := res.Delete(ctx, "books.demo.svc.cluster.local", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "profile deleted", func() bool { return len(c.Profile(ctx, booksName, booksOrig).Routes) == 0 })
}

func TestTrafficSplit(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	c := newClient(t, cp, nil)
	ctx := context.Background()
	obj := serviceProfile(map[string]any{"dstOverrides": []any{
		map[string]any{"authority": "books.demo.svc.cluster.local:80", "weight": "3"},
		map[string]any{"authority": "books-v2.demo.svc.cluster.local:80", "weight": "1"},
	}})
	if _, err := cp.dyn.Resource(sp.GroupVersionResource).Namespace("demo").Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "split", func() bool { p := c.Profile(ctx, booksName, booksOrig); return p != nil && p.Split != nil })
	picked(t, c, booksName, booksOrig, 50) // subscribe the override
	eventually(t, "both targets", func() bool { return len(picked(t, c, booksName, booksOrig, 50)) == 2 })
	got := picked(t, c, booksName, booksOrig, 10000)
	if v2 := float64(got["198.18.0.20:7000"]) / 10000; v2 < 0.20 || v2 > 0.30 {
		t.Fatalf("books-v2 share %.3f, want 0.25 ± 0.05 (%v)", v2, got)
	}
}

func TestUnknownTargetsFallBack(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	static, err := discovery.ParseStatic([]byte("destinations:\n- authority: static.example:80\n  endpoints: [{addr: 198.18.64.9:80}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, cp, func(cfg *Config) { cfg.Fallback = static })
	tests := []struct {
		name, authority string
		orig            string
		want            string
	}{
		{"unknown service name passes through", "missing.demo.svc.cluster.local:80", "198.18.9.9:80", "198.18.9.9:80"},
		{"unknown address passes through", "", "198.18.9.9:5432", "198.18.9.9:5432"},
		{"name outside the suffixes resolves by address", "books:80", booksVIP + ":80", "198.18.0.5:7000"},
		{"IP authority resolves by address", booksVIP + ":80", booksVIP + ":80", "198.18.0.5:7000"},
		{"fallback resolver consulted", "static.example:80", "198.18.9.9:80", "198.18.64.9:80"},
		{"invalid name passes through", "a.b.c.d.svc.cluster.local:80", "198.18.9.8:80", "198.18.9.8:80"},
	}
	for _, tt := range tests {
		var orig = ap(tt.orig)
		ep, err := c.Resolve(tt.authority, orig)
		if err != nil || ep.Addr.String() != tt.want {
			t.Errorf("%s: got %v %v, want %s", tt.name, ep.Addr, err, tt.want)
		}
	}
	if _, err := c.Resolve("x.svc.cluster.local:80", ap("0.0.0.0:0")); err != nil {
		// invalid name with no original destination: fallback pass-through, no error
		t.Errorf("no original destination: %v", err)
	}
}

func TestControlPlaneDownAtStartFallsBackAfterFailFast(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there
	c, err := New(Config{Addr: addr, FailFastTimeout: 200 * time.Millisecond, BackoffMin: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	ep, err := c.Resolve(booksName, booksOrig)
	if err != nil || ep.Addr != booksOrig || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("got %v %v after %v, want pass-through after the fail-fast timeout", ep.Addr, err, time.Since(start))
	}
	// The target's fail-fast window has passed: no more waiting.
	start = time.Now()
	if p := c.Profile(context.Background(), booksName, booksOrig); p != nil {
		t.Fatal("no profile expected")
	}
	if ep, err := c.Resolve(booksName, booksOrig); err != nil || ep.Addr != booksOrig || time.Since(start) > 150*time.Millisecond {
		t.Fatalf("second request: %v %v after %v, want pass-through at once", ep.Addr, err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ResolveContext(ctx, "other.demo.svc.cluster.local:80", booksOrig); proxyerr.KindOf(err) != proxyerr.Canceled {
		t.Fatalf("canceled request: %v", err)
	}
}

func TestIdleSubscriptionsAreReaped(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	c := newClient(t, cp, func(cfg *Config) { cfg.IdleTimeout = time.Second })
	if _, err := c.Resolve(booksName, booksOrig); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve("", booksOrig); err != nil {
		t.Fatal(err)
	}
	if c.Subscriptions() != 2 {
		t.Fatalf("%d subscriptions", c.Subscriptions())
	}
	eventually(t, "reaped", func() bool { return c.Subscriptions() == 0 })
	if ep, err := c.Resolve(booksName, booksOrig); err != nil || ep.Addr != ap("198.18.0.5:7000") {
		t.Fatalf("resubscribe: %v %v", ep.Addr, err)
	}
	if c.Subscriptions() != 1 {
		t.Fatalf("%d subscriptions after reuse", c.Subscriptions())
	}
}

func TestResolveDoesNotAllocate(t *testing.T) {
	cp := newControlPlane(t)
	c := newClient(t, cp, nil)
	ctx := context.Background()
	for _, a := range []string{booksName, "BOOKS.demo.svc.cluster.local:80", ""} {
		if _, err := c.Resolve(a, booksOrig); err != nil {
			t.Fatal(err)
		}
		c.Profile(ctx, a, booksOrig)
		n := testing.AllocsPerRun(200, func() {
			ep, _ := c.Resolve(a, booksOrig)
			ep.Load.End(ep.Load.Begin(), false)
			c.Profile(ctx, a, booksOrig).Match("GET", "/books/1")
		})
		if n != 0 {
			t.Errorf("authority %q: %v allocs per Resolve+Profile", a, n)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Fatal("missing Addr accepted")
	}
}

func TestFailureAccrualThroughResolve(t *testing.T) {
	t.Parallel()
	cp := newControlPlane(t)
	c := newClient(t, cp, func(cfg *Config) { cfg.Balance = balance.Config{FailureThreshold: 3} })
	cp.setEndpoints(t, "books", "198.18.0.5", "198.18.0.6")
	eventually(t, "two endpoints", func() bool { return len(picked(t, c, booksName, booksOrig, 40)) == 2 })
	bad := ap("198.18.0.6:7000")
	// The balancer's load handle for the bad endpoint, as a request to it
	// would hold it.
	var l target.Load
	for l == nil {
		if ep, _ := c.Resolve(booksName, booksOrig); ep.Addr == bad {
			l = ep.Load
		} else {
			ep.Load.End(ep.Load.Begin(), false)
		}
	}
	for i := 0; i < 3; i++ {
		l.End(l.Begin(), true)
	}
	if got := picked(t, c, booksName, booksOrig, 200); got[bad.String()] != 0 {
		t.Fatalf("failing endpoint still picked: %v", got)
	}
}
