package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSmallTopology runs the real orchestration (namespaces, iptables, peers as uid 2102) with
// tiny loads: direct, the Go reverse proxy, haproxy, and weft with a missing binary ("not run").
func TestRunSmallTopology(t *testing.T) {
	dir, err := os.MkdirTemp("", "weft-bench-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the proxies run as uid 2102
		t.Fatal(err)
	}
	self := filepath.Join(dir, "weft-bench")
	if out, err := exec.Command("go", "build", "-o", self, "../cmd/weft-bench").CombinedOutput(); err != nil {
		t.Fatalf("build weft-bench: %v\n%s", err, out)
	}
	var peers []Peer
	for _, p := range Peers {
		if p.Name == "direct" || p.Name == "weft" || p.Name == "go-reverseproxy" || p.Name == "haproxy" {
			peers = append(peers, p)
		}
	}
	rs, err := Run(context.Background(), Config{
		Self: self, WeftBin: filepath.Join(dir, "no-weft-proxy"), Peers: peers,
		Points:   []Point{{KindHTTP, 200}, {KindTCP, 200}},
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 8 {
		t.Fatalf("got %d results, want 8", len(rs))
	}
	for _, r := range rs {
		switch r.Peer {
		case "weft":
			if !strings.Contains(r.NotRun, "weft-proxy binary") {
				t.Errorf("weft with no binary: %+v", r)
			}
		default:
			if r.NotRun != "" || r.Load.OK != 100 || r.Load.Errors != 0 {
				t.Errorf("%s %s: %+v", r.Peer, pointName(r.Point), r)
			}
			if r.Peer != "direct" && (r.CPUMicrosPerReq < 0 || r.PeakRSSKiB <= 0) {
				t.Errorf("%s %s: no proxy figures: %+v", r.Peer, pointName(r.Point), r)
			}
		}
	}
}

// TestRunMeshTopology runs the weft-mtls peer end to end in network namespaces with tiny loads:
// the real weft-proxy on both sides, SVIDs from the in-process identity service, mTLS between the
// proxies (handshakes counted on both).
func TestRunMeshTopology(t *testing.T) {
	dir, err := os.MkdirTemp("", "weft-bench-mesh-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, weft := filepath.Join(dir, "weft-bench"), filepath.Join(dir, "weft-proxy")
	for bin, pkg := range map[string]string{self: "../cmd/weft-bench", weft: "../../proxy/cmd/weft-proxy"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	var peers []Peer
	for _, p := range Peers {
		if p.Name == "weft-mtls" {
			peers = append(peers, p)
		}
	}
	rs, err := Run(context.Background(), Config{
		Self: self, WeftBin: weft, Peers: peers,
		Points:   []Point{{KindHTTP, 200}, {KindGRPC, 200}, {KindTCP, 200}},
		Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("got %d results, want 3", len(rs))
	}
	for _, r := range rs {
		name := r.Peer + " " + pointName(r.Point)
		if r.NotRun != "" || r.Load.OK != 100 || r.Load.Errors != 0 {
			t.Errorf("%s: %+v", name, r)
			continue
		}
		h := r.Handshakes
		if h == nil {
			t.Errorf("%s: no handshake counts", name)
			continue
		}
		// Every connection between the proxies is a handshake: at least one (made in warm-up or
		// in the window) on each side, never more than the requests, and the client never
		// accepts nor the server dials.
		out := h.Warmup.Outbound() + h.Client.Outbound()
		if out < 1 || out > float64(r.Load.Done) || h.Requests != 100 ||
			h.Client.Inbound() != 0 || h.Server.Outbound() != 0 {
			t.Errorf("%s: handshakes %+v", name, h)
		}
		if r.Point.Kind == KindGRPC && out != 1 { // one multiplexed connection
			t.Errorf("%s: %v outbound handshakes, want 1 (one h2 connection)", name, out)
		}
	}
}
