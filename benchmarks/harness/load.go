package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// Kind is a load type.
type Kind string

// Load kinds.
const (
	KindHTTP Kind = "http1"
	KindGRPC Kind = "grpc"
	KindTCP  Kind = "tcp"
)

// LoadConfig is one open-loop run.
type LoadConfig struct {
	Kind Kind
	// Target is host:port of the backend as the application sees it (iptables may redirect it).
	Target string
	// RPS is the constant request rate.
	RPS int
	// Duration is the measured window; Warmup requests before it are sent but not recorded.
	Duration, Warmup time.Duration
	// Conns is the number of connections (workers); zero means 64.
	Conns int
	// OnMeasure, when set, is called once as the first request of the measured window is
	// released (right after the warm-up); it must not block.
	OnMeasure func()
}

// LoadResult is what a run measured. Latencies are from each request's *intended* start time, so
// queueing behind a slow response counts (no coordinated omission).
type LoadResult struct {
	Kind   Kind `json:"kind"`
	RPS    int  `json:"rps"`
	Sent   int  `json:"sent"`
	OK     int  `json:"ok"`
	Errors int  `json:"errors"`
	// Done counts every completed request including warm-up (for CPU per request).
	Done        int     `json:"done"`
	FirstError  string  `json:"first_error,omitempty"`
	AchievedRPS float64 `json:"achieved_rps"`
	// Percentiles in microseconds: p50, p90, p99, p99.9, max.
	P50, P90, P99, P999, Max float64
}

// requester performs one request on worker w.
type requester interface {
	do(ctx context.Context, w int) error
	close()
}

// RunLoad sends cfg.RPS requests per second for Warmup+Duration and reports latency percentiles of
// the measured window. Every loop is bounded: the run ends at most 10 s after the schedule.
func RunLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.Conns == 0 {
		cfg.Conns = 64
	}
	if cfg.RPS <= 0 || cfg.Duration <= 0 {
		return LoadResult{}, fmt.Errorf("load: rps and duration must be positive")
	}
	req, err := newRequester(cfg)
	if err != nil {
		return LoadResult{}, err
	}
	defer req.close()

	interval := time.Second / time.Duration(cfg.RPS)
	warm := int(cfg.Warmup / interval)
	total := warm + int(cfg.Duration/interval)
	lat := make([]time.Duration, total)
	errs := make([]bool, total)
	var firstErr atomic.Value
	jobs := make(chan int, total)
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+10*time.Second)
	defer cancel()
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range cfg.Conns {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					errs[i] = true
					continue
				}
				intended := start.Add(time.Duration(i) * interval)
				if err := req.do(ctx, w); err != nil {
					errs[i] = true
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = time.Since(intended)
			}
		})
	}
	// Scheduler: release every request whose intended time has come, then sleep to the next.
	next := 0
	for next < total && ctx.Err() == nil {
		now := time.Now()
		for next < total && !start.Add(time.Duration(next)*interval).After(now) {
			if next == warm && cfg.OnMeasure != nil {
				cfg.OnMeasure()
			}
			jobs <- next
			next++
		}
		if next < total {
			time.Sleep(time.Until(start.Add(time.Duration(next) * interval)))
		}
	}
	close(jobs)
	wg.Wait()
	end := time.Now()

	res := LoadResult{Kind: cfg.Kind, RPS: cfg.RPS, Sent: total - warm}
	for i := 0; i < next; i++ {
		if !errs[i] {
			res.Done++
		}
	}
	var ok []time.Duration
	for i := warm; i < total; i++ {
		if errs[i] || i >= next {
			res.Errors++
			continue
		}
		ok = append(ok, lat[i])
	}
	res.OK = len(ok)
	if v := firstErr.Load(); v != nil {
		res.FirstError = v.(string)
	}
	res.AchievedRPS = float64(res.OK) / end.Sub(start.Add(cfg.Warmup)).Seconds()
	if len(ok) > 0 {
		slices.Sort(ok)
		q := func(p float64) float64 {
			return float64(ok[min(len(ok)-1, int(p*float64(len(ok))))].Microseconds())
		}
		res.P50, res.P90, res.P99, res.P999 = q(0.50), q(0.90), q(0.99), q(0.999)
		res.Max = float64(ok[len(ok)-1].Microseconds())
	}
	return res, nil
}

func newRequester(cfg LoadConfig) (requester, error) {
	switch cfg.Kind {
	case KindHTTP:
		tr := &http.Transport{MaxIdleConnsPerHost: cfg.Conns, MaxConnsPerHost: cfg.Conns, DisableCompression: true}
		return &httpReq{c: &http.Client{Transport: tr, Timeout: 10 * time.Second}, url: "http://" + cfg.Target + "/"}, nil
	case KindGRPC:
		cc, err := grpc.NewClient(cfg.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("grpc client: %w", err)
		}
		return &grpcReq{cc: cc, c: testpb.NewTestServiceClient(cc)}, nil
	case KindTCP:
		return &tcpReq{target: cfg.Target, conns: make([]net.Conn, cfg.Conns)}, nil
	}
	return nil, fmt.Errorf("unknown load kind %q", cfg.Kind)
}

type httpReq struct {
	c   *http.Client
	url string
}

func (r *httpReq) do(ctx context.Context, _ int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	resp, err := r.c.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != PayloadSize {
		return fmt.Errorf("http status %d, %d bytes", resp.StatusCode, n)
	}
	return nil
}

func (r *httpReq) close() { r.c.CloseIdleConnections() }

type grpcReq struct {
	cc *grpc.ClientConn
	c  testpb.TestServiceClient
}

func (r *grpcReq) do(ctx context.Context, _ int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := r.c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: PayloadSize, Payload: &testpb.Payload{Body: payload}})
	if err != nil {
		return err
	}
	if len(resp.GetPayload().GetBody()) != PayloadSize {
		return fmt.Errorf("grpc payload %d bytes", len(resp.GetPayload().GetBody()))
	}
	return nil
}

func (r *grpcReq) close() { r.cc.Close() }

type tcpReq struct {
	target string
	conns  []net.Conn // one per worker, only touched by that worker
}

func (r *tcpReq) do(ctx context.Context, w int) error {
	c := r.conns[w]
	if c == nil {
		var err error
		var d net.Dialer
		if c, err = d.DialContext(ctx, "tcp", r.target); err != nil {
			return err
		}
		r.conns[w] = c
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, PayloadSize)
	if _, err := c.Write(payload); err != nil {
		c.Close()
		r.conns[w] = nil
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, payload) {
		c.Close()
		r.conns[w] = nil
		return fmt.Errorf("echo: %v", err)
	}
	return nil
}

func (r *tcpReq) close() {
	for _, c := range r.conns {
		if c != nil {
			c.Close()
		}
	}
}
