package h2

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

func TestLimitsAdvertisedAndEnforced(t *testing.T) {
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	p, addr := startProxy(t, Config{Router: staticRouter{ep}, MaxConcurrentStreams: 7, MaxHeaderListSize: 8 << 10,
		MaxReadFrameSize: 32 << 10, IdleTimeout: 300 * time.Millisecond})

	c := dialRaw(t, addr)
	select {
	case f := <-c.settings:
		want := map[http2.SettingID]uint32{
			http2.SettingMaxConcurrentStreams: 7,
			http2.SettingMaxHeaderListSize:    8 << 10,
			http2.SettingMaxFrameSize:         32 << 10,
		}
		for id, v := range want {
			if got, ok := f[id]; !ok || got != v {
				t.Errorf("SETTINGS %v = %d (present %v), want %d", id, got, ok, v)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no SETTINGS from the proxy")
	}
	// Idle timeout: the connection is closed (after a GOAWAY) with no streams.
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("idle client connection was not closed")
	}

	// Oversized request header list → 431 from the server, nothing forwarded.
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	// (Several fields: one field longer than the whole limit is a
	// COMPRESSION_ERROR for the connection in x/net's HPACK decoder.)
	for _, k := range []string{"X-A", "X-B", "X-C"} {
		req.Header.Set(k, strings.Repeat("a", 4<<10))
	}
	resp, err := h2cClient(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: status %d, want 431", resp.StatusCode)
	}
	if s := p.Stats(); s.Requests != 0 {
		t.Fatalf("oversized request reached the handler: %+v", s)
	}
}

// hangDialer never connects; it returns when the dial context ends.
type hangDialer struct{}

func (hangDialer) Dial(ctx context.Context, _ target.Endpoint) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestDialTimeoutIs504(t *testing.T) {
	ep := target.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:9")}
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Dialer: hangDialer{}, DialTimeout: 100 * time.Millisecond, Observer: obs})
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	resp, err := h2cClient(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get(proxyerr.Header) != "timeout" {
		t.Fatalf("got %d %q, want 504 timeout", resp.StatusCode, resp.Header.Get(proxyerr.Header))
	}
	if r := obs.waitRecords(t, 1)[0]; r.ErrKind != proxyerr.Timeout {
		t.Fatalf("record %+v", r)
	}
}
