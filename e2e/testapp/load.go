package testapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/e2e/demo/serve"
)

// Bounds of a LoadSpec.
const (
	MaxLoadCount = 10000
	MaxLoadRate  = 200
)

// LoadSpec is one bounded load run (the JSON body of POST /run of the load subcommand).
type LoadSpec struct {
	// URL is the HTTP target (http://…); with GRPC, the gRPC target host:port.
	URL string `json:"url"`
	// Method is the HTTP method; empty means GET.
	Method string `json:"method,omitempty"`
	// Body is sent with every HTTP request; empty means none.
	Body string `json:"body,omitempty"`
	// Count is how many requests to send, 1..MaxLoadCount.
	Count int `json:"count"`
	// Rate is requests started per second, 1..MaxLoadRate.
	Rate int `json:"rate"`
	// Concurrency bounds requests in flight; zero means 1.
	Concurrency int `json:"concurrency,omitempty"`
	// Timeout bounds each request; zero means 5s.
	Timeout time.Duration `json:"timeout,omitempty"`
	// GRPC sends grpc.health.v1.Health/Check calls over one client connection instead of HTTP.
	GRPC bool `json:"grpc,omitempty"`
}

// LoadResult is what a run observed.
type LoadResult struct {
	Sent int `json:"sent"`
	// OK counts 2xx responses (gRPC: OK status).
	OK int `json:"ok"`
	// Failed counts everything else: other statuses and transport errors.
	Failed int `json:"failed"`
	// Status counts responses by HTTP status code (gRPC: by status code name).
	Status map[string]int `json:"status"`
	// Backends counts responses by their BackendHeader.
	Backends map[string]int `json:"backends"`
	// ProxyErrors counts responses by their weft-proxy-error header.
	ProxyErrors map[string]int `json:"proxyErrors,omitempty"`
	// Errors holds the first few transport errors.
	Errors []string `json:"errors,omitempty"`
}

func (s *LoadSpec) check() error {
	switch {
	case s.URL == "":
		return errors.New("url: required")
	case s.Count < 1 || s.Count > MaxLoadCount:
		return fmt.Errorf("count %d: want 1..%d", s.Count, MaxLoadCount)
	case s.Rate < 1 || s.Rate > MaxLoadRate:
		return fmt.Errorf("rate %d: want 1..%d", s.Rate, MaxLoadRate)
	case s.Concurrency < 0 || s.Concurrency > 64:
		return fmt.Errorf("concurrency %d: want 0..64", s.Concurrency)
	case s.Timeout < 0 || s.Timeout > time.Minute:
		return fmt.Errorf("timeout %v: want 0..1m", s.Timeout)
	}
	if s.Method == "" {
		s.Method = http.MethodGet
	}
	if s.Concurrency == 0 {
		s.Concurrency = 1
	}
	if s.Timeout == 0 {
		s.Timeout = 5 * time.Second
	}
	return nil
}

// RunLoad sends spec.Count requests at spec.Rate per second with at most
// spec.Concurrency in flight and reports per-backend counts and failures.
func RunLoad(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	if err := spec.check(); err != nil {
		return LoadResult{}, err
	}
	var send func(ctx context.Context) (status, backend, proxyErr string, err error)
	if spec.GRPC {
		conn, err := grpc.NewClient(spec.URL, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return LoadResult{}, fmt.Errorf("grpc client %s: %w", spec.URL, err)
		}
		defer conn.Close()
		hc := healthpb.NewHealthClient(conn)
		send = func(ctx context.Context) (string, string, string, error) {
			var md metadata.MD
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
			backend := strings.Join(md.Get(BackendHeader), ",")
			proxyErr := strings.Join(md.Get("weft-proxy-error"), ",")
			if err != nil {
				return grpcCode(err), backend, proxyErr, nil
			}
			return "OK", backend, proxyErr, nil
		}
	} else {
		client := &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: spec.Concurrency, IdleConnTimeout: 30 * time.Second,
		}}
		defer client.CloseIdleConnections()
		send = func(ctx context.Context) (string, string, string, error) {
			var body io.Reader
			if spec.Body != "" {
				body = strings.NewReader(spec.Body)
			}
			req, err := http.NewRequestWithContext(ctx, spec.Method, spec.URL, body)
			if err != nil {
				return "", "", "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", "", "", err
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			return fmt.Sprint(resp.StatusCode), resp.Header.Get(BackendHeader), resp.Header.Get("weft-proxy-error"), nil
		}
	}

	res := LoadResult{Status: map[string]int{}, Backends: map[string]int{}, ProxyErrors: map[string]int{}}
	var mu sync.Mutex
	record := func(status, backend, proxyErr string, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.Sent++
		if err != nil {
			res.Failed++
			res.Status["error"]++
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, err.Error())
			}
			return
		}
		res.Status[status]++
		if status == "OK" || (len(status) == 3 && status[0] == '2') {
			res.OK++
		} else {
			res.Failed++
		}
		if backend != "" {
			res.Backends[backend]++
		}
		if proxyErr != "" {
			res.ProxyErrors[proxyErr]++
		}
	}

	// The whole run is bounded: its schedule plus one request timeout and some slack.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(spec.Count)*time.Second/time.Duration(spec.Rate)+spec.Timeout+10*time.Second)
	defer cancel()
	tokens := make(chan struct{})
	var wg sync.WaitGroup
	for range spec.Concurrency {
		wg.Go(func() {
			for range tokens {
				rctx, rcancel := context.WithTimeout(ctx, spec.Timeout)
				record(send(rctx))
				rcancel()
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(spec.Rate))
	defer tick.Stop()
	var err error
schedule:
	for range spec.Count {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("run cut short: %w", ctx.Err())
			break schedule
		case <-tick.C:
		}
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			err = fmt.Errorf("run cut short: %w", ctx.Err())
			break schedule
		}
	}
	close(tokens)
	wg.Wait()
	return res, err
}

// grpcCode names a gRPC error's status code.
func grpcCode(err error) string {
	return status.Code(err).String()
}

// ServeLoad serves POST /run (a JSON LoadSpec; answers the JSON LoadResult
// when the run is over) and GET /healthz on addr until ctx is done.
func ServeLoad(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", &serve.Health{})
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var spec LoadSpec
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			http.Error(w, fmt.Sprintf("load spec: %v", err), http.StatusBadRequest)
			return
		}
		res, err := RunLoad(r.Context(), spec)
		if err != nil && res.Status == nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	return serve.HTTP(ctx, addr, mux, 5*time.Second)
}
