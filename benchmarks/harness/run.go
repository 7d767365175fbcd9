package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/weftmesh/weft/internal/testnet"
	"github.com/weftmesh/weft/proxy/iptables"
)

// Pool is the benchmark's address range (docs/development.md).
var Pool = netip.MustParsePrefix("198.18.128.0/20")

// Point is one load against one peer.
type Point struct {
	Kind Kind
	RPS  int
}

// DefaultPoints are the loads of one run.
var DefaultPoints = []Point{{KindHTTP, 1000}, {KindHTTP, 5000}, {KindGRPC, 1000}, {KindTCP, 1000}}

// Config is one benchmark run.
type Config struct {
	Self     string        // weft-bench binary (backend, load generator, Go proxy)
	WeftBin  string        // bin/weft-proxy
	Peers    []Peer        // zero: all of Peers
	Points   []Point       // zero: DefaultPoints
	Duration time.Duration // measured window per point; zero: 10 s
	Warmup   time.Duration // zero: 2 s
	// Repeat runs every point this many times, peers interleaved round by round, and keeps the
	// trial with the lowest p99 (the machine is shared: stalls of other processes show in the
	// tail first, so that is the least disturbed trial).
	// Zero means 1.
	Repeat int
	Log    *slog.Logger
}

// Result is one measured point.
type Result struct {
	Peer   string     `json:"peer"`
	Point  Point      `json:"point"`
	Load   LoadResult `json:"load"`
	NotRun string     `json:"not_run,omitempty"` // why the point could not run
	// CPUMicrosPerReq is both proxies' CPU (user+system) per completed request.
	CPUMicrosPerReq float64 `json:"cpu_us_per_req"`
	// CPUMicrosPerReqSide splits CPUMicrosPerReq into the client-side and server-side proxy.
	CPUMicrosPerReqSide [2]float64 `json:"cpu_us_per_req_side"`
	// PeakRSSKiB is the larger VmHWM of the two proxies.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	// Trials holds every trial's p50/p99 in µs when Repeat > 1.
	Trials [][2]float64 `json:"trials,omitempty"`
	// Handshakes counts mTLS handshakes between the proxies (mesh peers only; nil otherwise).
	Handshakes *HandshakeResult `json:"handshakes,omitempty"`
}

// MeasureMarker is the line `weft-bench load` writes to stderr when the measured window starts
// (the harness reads the proxies' handshake counters then).
const MeasureMarker = "weft-bench load: measured window starts"

// Run measures every peer at every point; a peer that fails a point gets NotRun with the reason.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Peers == nil {
		cfg.Peers = Peers
	}
	if cfg.Points == nil {
		cfg.Points = DefaultPoints
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	nw, err := testnet.Create(Pool)
	if err != nil {
		return nil, err
	}
	defer nw.Close()
	var id *identityService
	for _, p := range cfg.Peers {
		if p.Mesh && id == nil {
			if id, err = startMeshIdentity(ctx, nw, cfg.Log); err != nil {
				return nil, err
			}
			defer id.Close()
		}
	}
	if cfg.Repeat < 1 {
		cfg.Repeat = 1
	}
	var out []Result
	for _, pt := range cfg.Points {
		best := make([]Result, len(cfg.Peers))
		for round := range cfg.Repeat {
			for i, peer := range cfg.Peers {
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				if round > 0 && best[i].NotRun != "" {
					continue
				}
				cfg.Log.Info("benchmark point", "peer", peer.Name, "load", pt.Kind, "rps", pt.RPS, "trial", round+1)
				r, err := runPoint(ctx, cfg, nw, id, peer, pt)
				if err != nil {
					cfg.Log.Warn("point not run", "peer", peer.Name, "load", pt.Kind, "err", err)
					r = Result{Peer: peer.Name, Point: pt, NotRun: err.Error()}
				}
				cfg.Log.Info("result", "peer", peer.Name, "load", pt.Kind, "rps", pt.RPS, "ok", r.Load.OK, "errors", r.Load.Errors,
					"p50_us", r.Load.P50, "p99_us", r.Load.P99, "cpu_us_per_req", r.CPUMicrosPerReq)
				trials := append(best[i].Trials, [2]float64{r.Load.P50, r.Load.P99})
				if round == 0 || (r.NotRun == "" && r.Load.P99 < best[i].Load.P99) {
					best[i] = r
				}
				if cfg.Repeat > 1 {
					best[i].Trials = trials
				}
			}
		}
		out = append(out, best...)
	}
	return out, nil
}

func backendPort(k Kind) int {
	switch k {
	case KindGRPC:
		return BackendGRPCPort
	case KindTCP:
		return BackendTCPPort
	}
	return BackendHTTPPort
}

// startMeshIdentity runs the identity service on the bridge's gateway address (the root
// namespace; the proxies reach it as uid 2102, which the rules exempt), files in a directory the
// proxies can read.
func startMeshIdentity(ctx context.Context, nw *testnet.Network, log *slog.Logger) (*identityService, error) {
	dir, err := os.MkdirTemp("", "weft-bench-identity-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	id, err := startIdentity(ctx, nw.Gateway(), dir, log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	id.dir = dir // removed by Close
	return id, nil
}

func runPoint(ctx context.Context, cfg Config, nw *testnet.Network, id *identityService, peer Peer, pt Point) (Result, error) {
	res := Result{Peer: peer.Name, Point: pt}
	client, err := nw.NewHost("client")
	if err != nil {
		return res, err
	}
	defer client.Close()
	server, err := nw.NewHost("server")
	if err != nil {
		return res, err
	}
	defer server.Close()

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			waitOrKill(p, 3*time.Second)
		}
	}()
	start := func(h *testnet.Host, args, env []string, logPath string) (*exec.Cmd, error) {
		cmd := h.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		if f, err := os.Create(logPath); err == nil {
			cmd.Stdout, cmd.Stderr = f, f
			defer f.Close()
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", args[0], err)
		}
		procs = append(procs, cmd)
		return cmd, nil
	}
	scratch, err := os.MkdirTemp("", "weft-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(scratch)
	if _, err := start(server, []string{cfg.Self, "backend"}, nil, filepath.Join(scratch, "backend.log")); err != nil {
		return res, err
	}
	port := backendPort(pt.Kind)
	if err := waitListening(server, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		return res, fmt.Errorf("backend: %w", err)
	}

	var proxies []*exec.Cmd
	if peer.Command != nil {
		for _, h := range []*testnet.Host{client, server} {
			if err := installRules(ctx, cfg.WeftBin, h.NetnsPath()); err != nil {
				return res, err
			}
		}
		sides := []struct {
			h    *testnet.Host
			spec ProxySpec
			addr string
		}{
			{client, ProxySpec{Side: ClientSide, Listen: fmt.Sprintf("127.0.0.1:%d", OutboundPort), Upstream: netip.AddrPortFrom(server.IP(), uint16(port)).String()}, fmt.Sprintf("127.0.0.1:%d", OutboundPort)},
			{server, ProxySpec{Side: ServerSide, Listen: fmt.Sprintf("0.0.0.0:%d", InboundPort), Upstream: fmt.Sprintf("127.0.0.1:%d", port)}, fmt.Sprintf("127.0.0.1:%d", InboundPort)},
		}
		for _, s := range sides {
			dir := filepath.Join(scratch, string(s.spec.Side))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return res, err
			}
			if err := os.Chown(dir, ProxyUID, ProxyUID); err != nil {
				return res, err
			}
			_ = os.Chmod(scratch, 0o755)
			s.spec.Kind, s.spec.Dir, s.spec.Self, s.spec.WeftBin = pt.Kind, dir, cfg.Self, cfg.WeftBin
			if peer.Mesh {
				if id == nil {
					return res, fmt.Errorf("%s: no identity service", peer.Name)
				}
				s.spec.Mesh = &MeshSpec{IdentityAddr: id.Addr, AnchorsFile: id.AnchorsFile, ServerIdentity: MeshID(ServerSide)}
			}
			args, env, err := peer.Command(s.spec)
			if err != nil {
				return res, err
			}
			logPath := filepath.Join(scratch, string(s.spec.Side)+".log")
			p, err := start(s.h, asProxyUID(args), env, logPath)
			if err != nil {
				return res, err
			}
			if err := waitListening(s.h, s.addr); err != nil {
				log, _ := os.ReadFile(logPath)
				return res, fmt.Errorf("%s %s proxy: %w: %s", peer.Name, s.spec.Side, err, tail(log))
			}
			if peer.Mesh {
				if err := waitProxyReady(ctx, s.h); err != nil {
					log, _ := os.ReadFile(logPath)
					return res, fmt.Errorf("%s %s proxy: %w: %s", peer.Name, s.spec.Side, err, tail(log))
				}
			}
			proxies = append(proxies, p)
		}
	}

	cpu0 := make([]int64, len(proxies))
	for i, p := range proxies {
		cpu0[i], _, _ = procCPU(p.Process.Pid)
	}
	var hs *handshakeReadings
	if peer.Mesh {
		if hs, err = readHandshakesBefore(ctx, client); err != nil {
			return res, err
		}
	}
	target := netip.AddrPortFrom(server.IP(), uint16(port)).String()
	lc := client.Command(cfg.Self, "load", "-kind", string(pt.Kind), "-target", target, "-rps", strconv.Itoa(pt.RPS),
		"-duration", cfg.Duration.String(), "-warmup", cfg.Warmup.String())
	lc.Stderr = os.Stderr
	if hs != nil {
		lc.Args = append(lc.Args, "-announce-window")
		lc.Stderr = &markerWriter{out: os.Stderr, marker: MeasureMarker, fn: func() { hs.atWindow(ctx, client, server) }}
	}
	out, err := lc.Output()
	if err != nil {
		return res, fmt.Errorf("load generator: %w", err)
	}
	if err := json.Unmarshal(out, &res.Load); err != nil {
		return res, fmt.Errorf("load generator output %q: %w", out, err)
	}
	if hs != nil {
		h, err := hs.after(ctx, client, server, res.Load.Sent)
		if err != nil {
			return res, err
		}
		res.Handshakes = &h
	}
	for i, p := range proxies {
		t, hwm, err := procCPU(p.Process.Pid)
		if err != nil {
			return res, fmt.Errorf("%s exited during the run: %w", peer.Name, err)
		}
		res.PeakRSSKiB = max(res.PeakRSSKiB, hwm)
		if done := res.Load.Done; done > 0 {
			res.CPUMicrosPerReqSide[i] = float64(t-cpu0[i]) * 1e6 / clockTick / float64(done)
			res.CPUMicrosPerReq += res.CPUMicrosPerReqSide[i]
		}
	}
	if res.Load.OK == 0 {
		return res, fmt.Errorf("no request succeeded (%d errors, first: %s)", res.Load.Errors, res.Load.FirstError)
	}
	return res, nil
}

// waitListening dials addr from inside h until it answers (at most 10 s).
func waitListening(h *testnet.Host, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := h.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after 10s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitOrKill(cmd *exec.Cmd, d time.Duration) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
	}
}

func tail(b []byte) string {
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return string(b)
}

// installRules runs `weft-proxy init --netns path` with the defaults; when the binary is missing
// it applies the same rules through the proxy/iptables package that backs it.
func installRules(ctx context.Context, weftBin, netnsPath string) error {
	if _, err := os.Stat(weftBin); err == nil {
		out, err := exec.CommandContext(ctx, weftBin, "init", "--netns", netnsPath, "--log-level", "warn").CombinedOutput()
		if err != nil {
			return fmt.Errorf("weft-proxy init: %w: %s", err, out)
		}
		return nil
	}
	ic := iptables.Defaults()
	ic.NetnsPath = netnsPath
	if err := iptables.Apply(ctx, ic); err != nil {
		return fmt.Errorf("weft-proxy init (library): %w", err)
	}
	return nil
}
