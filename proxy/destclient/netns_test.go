package destclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/internal/testnet"
	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// TestBalancesRealServers: the destination service names three replicas
// running in network namespaces; requests through destclient + the pipeline
// spread over all of them, the slow one gets the least, and a replica
// removed from the Service gets no new requests.
func TestBalancesRealServers(t *testing.T) {
	t.Parallel()
	n := testnet.New(t)
	var ips []string
	for i, delay := range []time.Duration{0, 0, 50 * time.Millisecond} {
		h := n.AddHost(t, fmt.Sprintf("r%d", i))
		ln, err := h.Listen("tcp", netip.AddrPortFrom(h.IP(), 7000).String())
		if err != nil {
			t.Fatal(err)
		}
		name := h.IP().String()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay + 2*time.Millisecond)
			io.WriteString(w, name)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ips = append(ips, name)
	}
	cp := newControlPlane(t)
	cp.setEndpoints(t, "books", ips...)
	c := newClient(t, cp, nil)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	pipe := &pipeline.Pipeline{Router: resolveRouter{c}}
	eventually(t, "three endpoints", func() bool { return c.lookup(booksName, booksOrig).bal.Len() == 3 })

	run := func(total, workers int) map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < total/workers; i++ {
					req, _ := http.NewRequest("GET", "http://"+booksName+"/books", nil)
					resp, err := sendThrough(pipe, c, tr, req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					got[string(b)]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return got
	}
	got := run(600, 6)
	t.Logf("picks over 600 requests: %v (slow: %s)", got, ips[2])
	if got[ips[0]] == 0 || got[ips[1]] == 0 || got[ips[2]] == 0 {
		t.Fatalf("every replica should get traffic: %v", got)
	}
	if got[ips[2]] >= got[ips[0]] || got[ips[2]] >= got[ips[1]] {
		t.Fatalf("the slow replica should get the least: %v", got)
	}
	cp.setEndpoints(t, "books", ips[1], ips[2])
	eventually(t, "removal", func() bool { return c.lookup(booksName, booksOrig).bal.Len() == 2 })
	if got := run(120, 4); got[ips[0]] != 0 {
		t.Fatalf("removed replica still got requests: %v", got)
	}
}

// resolveRouter is the Router the proxy's outbound side builds over a
// Client.
type resolveRouter struct{ c *Client }

func (r resolveRouter) Route(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	return r.c.ResolveContext(ctx, authority, orig)
}

// sendThrough runs a bodiless req through the pipeline, over tr: the
// smallest pipeline.Exchange.
func sendThrough(pipe *pipeline.Pipeline, c *Client, tr *http.Transport, req *http.Request) (*http.Response, error) {
	start := time.Now()
	rec := &record.HTTP{Method: req.Method, Path: req.URL.Path, GRPCStatus: -1}
	r := pipeline.Begin(c.Profile(context.Background(), booksName, booksOrig), rec, start, 0)
	r.Ctx, r.Authority, r.Orig = context.Background(), booksName, booksOrig
	ep, err := pipe.Router.Route(r.Ctx, booksName, booksOrig)
	if err != nil {
		return nil, err
	}
	x := &rtExchange{tr: tr, req: req}
	if err := pipe.Run(x, &r, ep); err != nil {
		return nil, err
	}
	return x.resp, nil
}

type rtExchange struct {
	tr   *http.Transport
	req  *http.Request
	resp *http.Response
}

func (x *rtExchange) Send(ep *target.Endpoint, _ time.Time) (int, int, error) {
	out := x.req.Clone(x.req.Context())
	out.URL = &url.URL{Scheme: "http", Host: ep.Addr.String(), Path: x.req.URL.Path}
	resp, err := x.tr.RoundTrip(out)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return 0, -1, proxyerr.New(proxyerr.Connect, err)
	}
	if err != nil {
		return 0, -1, err
	}
	x.resp = resp
	return resp.StatusCode, -1, nil
}

func (x *rtExchange) Discard() {
	if x.resp != nil {
		x.resp.Body.Close()
	}
}
func (x *rtExchange) Canceled() bool             { return x.req.Context().Err() != nil }
func (x *rtExchange) Done() <-chan struct{}      { return x.req.Context().Done() }
func (x *rtExchange) Replayable() bool           { return true }
func (x *rtExchange) Rewind() bool               { return true }
func (x *rtExchange) Unread() bool               { return true }
func (x *rtExchange) Routed(ep *target.Endpoint) {}
