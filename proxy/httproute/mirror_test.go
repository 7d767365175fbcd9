package httproute

import (
	"context"
	"sync/atomic"
	"testing"
)

// TestMirrorIsolation: with a mirror that never answers, Offer still returns
// at once; copies beyond workers+queue are dropped and counted.
func TestMirrorIsolation(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	m, err := NewMirror(MirrorConfig{Queue: 4, Workers: 2, Send: func(ctx context.Context, r *MirrorRequest) error {
		started.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	const offers = 100
	accepted := 0
	for i := range offers {
		if m.Offer(&MirrorRequest{Method: "GET", Path: "/", Body: []byte{byte(i)}}) {
			accepted++
		}
	}
	// At most 2 in flight + 4 queued were accepted; the rest were dropped.
	if accepted > 6 || accepted < 4 {
		t.Fatalf("accepted %d copies, want 4..6 (2 workers + queue 4)", accepted)
	}
	if s := m.Stats(); s.Dropped != uint64(offers-accepted) {
		t.Fatalf("dropped %d, want %d", s.Dropped, offers-accepted)
	}
	close(release)
	m.Close()
	s := m.Stats()
	if s.Sent+s.Failed+s.Dropped != offers {
		t.Fatalf("stats %+v do not account for %d offers", s, offers)
	}
}

func TestMirrorSends(t *testing.T) {
	got := make(chan string, 10)
	m, err := NewMirror(MirrorConfig{Send: func(_ context.Context, r *MirrorRequest) error { got <- r.Target.Backend.Name; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for range 3 {
		if !m.Offer(&MirrorRequest{Target: MirrorTarget{Backend: Backend{Name: "shadow"}}}) {
			t.Fatal("offer dropped with an idle mirror")
		}
	}
	for range 3 {
		if n := <-got; n != "shadow" {
			t.Fatalf("sent to %q", n)
		}
	}
	if _, err := NewMirror(MirrorConfig{}); err == nil {
		t.Fatal("NewMirror without Send did not fail")
	}
}
