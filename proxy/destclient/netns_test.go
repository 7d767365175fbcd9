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
	"github.com/weftmesh/weft/proxy/profile/httpretry"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

// TestBalancesRealServers: the destination service names three replicas
// running in network namespaces; requests through destclient + httpretry
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
	x := &httpretry.Executor{Resolve: c, Send: func(ctx context.Context, ep *target.Endpoint, req *http.Request) (*http.Response, error) {
		out := req.Clone(ctx)
		out.URL = &url.URL{Scheme: "http", Host: ep.Addr.String(), Path: req.URL.Path}
		out.RequestURI = ""
		resp, err := tr.RoundTrip(out)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, proxyerr.New(proxyerr.Connect, err)
		}
		return resp, err
	}}
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
					resp, _, err := x.Do(req, booksOrig, c.Profile(context.Background(), booksName, booksOrig))
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
