package testapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/weftmesh/weft/e2e/demo/serve"
)

// BackendHeader names the replica that answered, on every HTTP response and
// in the gRPC response headers of the backend subcommand.
const BackendHeader = "weft-backend"

// BackendConfig configures ServeBackend.
type BackendConfig struct {
	// Addr is the HTTP listen address; empty means ":8080".
	Addr string
	// GRPCAddr is the gRPC (health service) listen address; empty means no gRPC.
	GRPCAddr string
	// Delay is added to every HTTP request except /healthz and /counts, and to
	// every gRPC call; zero means none.
	Delay time.Duration
	// ShutdownDelay is how long the server keeps serving after SIGTERM with
	// /healthz answering 503 (a preStop sleep), before it stops accepting;
	// zero means it stops at once.
	ShutdownDelay time.Duration
	// Name is reported in BackendHeader; empty means the hostname.
	Name string
}

// Backend is the backend subcommand's HTTP handler: every path except
// /healthz and /counts answers 200 with the replica's name after
// BackendConfig.Delay, then
//   - ?sleep=<duration> sleeps (at most MaxSleep), logging "cancelled <method> <path>" to its log
//     writer if the client goes away first;
//   - ?fail=<p> answers 500 with probability p (0..1).
//
// GET /counts answers a JSON object of request counts by "<METHOD> <path>".
type Backend struct {
	cfg    BackendConfig
	health serve.Health
	log    io.Writer

	mu     sync.Mutex
	counts map[string]int
}

// NewBackend returns the handler of cfg, logging cancellations to log.
func NewBackend(cfg BackendConfig, log io.Writer) *Backend {
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	return &Backend{cfg: cfg, log: log, counts: map[string]int{}}
}

// ServeHTTP implements http.Handler.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(BackendHeader, b.cfg.Name)
	switch r.URL.Path {
	case "/healthz":
		b.health.ServeHTTP(w, r)
		return
	case "/counts":
		b.mu.Lock()
		out, err := json.Marshal(b.counts)
		b.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
		return
	}
	b.mu.Lock()
	b.counts[r.Method+" "+r.URL.Path]++
	b.mu.Unlock()
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))

	q := r.URL.Query()
	var fail float64
	if s := q.Get("fail"); s != "" {
		p, err := strconv.ParseFloat(s, 64)
		if err != nil || p < 0 || p > 1 {
			http.Error(w, fmt.Sprintf("fail=%q: want a probability 0..1", s), http.StatusBadRequest)
			return
		}
		fail = p
	}
	sleep := b.cfg.Delay
	if s := q.Get("sleep"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxSleep {
			http.Error(w, fmt.Sprintf("sleep=%q: want a duration between 0 and %v", s, MaxSleep), http.StatusBadRequest)
			return
		}
		sleep += d
	}
	if sleep > 0 {
		t := time.NewTimer(sleep)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			fmt.Fprintf(b.log, "cancelled %s %s\n", r.Method, r.URL.Path)
			return
		}
	}
	if fail > 0 && rand.Float64() < fail {
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, b.cfg.Name)
}

// drain makes /healthz answer 503.
func (b *Backend) drain() { b.health.Drain() }

// ServeBackend serves NewBackend(cfg) over HTTP (and the gRPC health service
// on cfg.GRPCAddr) until ctx is done, then drains for cfg.ShutdownDelay.
func ServeBackend(ctx context.Context, cfg BackendConfig, log io.Writer) error {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	b := NewBackend(cfg, log)
	// The servers outlive ctx by the shutdown delay.
	srvCtx, stop := context.WithCancel(context.Background())
	defer stop()
	errc := make(chan error, 2)
	servers := 1
	go func() { errc <- serve.HTTP(srvCtx, cfg.Addr, b, 5*time.Second) }()
	if cfg.GRPCAddr != "" {
		ln, err := net.Listen("tcp", cfg.GRPCAddr)
		if err != nil {
			stop()
			<-errc
			return fmt.Errorf("listen %s: %w", cfg.GRPCAddr, err)
		}
		servers++
		go func() { errc <- serve.GRPC(srvCtx, ln, newBackendGRPC(b.cfg.Name, cfg.Delay), 5*time.Second) }()
	}
	var first error
	select {
	case first = <-errc: // a server failed: stop the other
		servers--
	case <-ctx.Done():
		b.drain()
		slog.Info("draining", "for", cfg.ShutdownDelay)
		select {
		case <-time.After(cfg.ShutdownDelay):
		case first = <-errc:
			servers--
		}
	}
	stop()
	for ; servers > 0; servers-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// newBackendGRPC is a gRPC server with the health service (always SERVING)
// that answers after delay and names the replica in the BackendHeader
// response header of every call.
func newBackendGRPC(name string, delay time.Duration) *grpc.Server {
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs(BackendHeader, name))
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}
