package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ProbePrefix is where the admin server answers the application's rewritten
// HTTP probes: GET /app-probe/<port><path> is forwarded to the application as
// GET <path> on <port>. The injector rewrites httpGet probes to it in pods
// whose inbound policy refuses plaintext (the kubelet probes in plaintext),
// and the admin port is never redirected to the proxy's inbound listener.
const ProbePrefix = "/app-probe/"

// Probe is one application probe the proxy may forward.
type Probe struct {
	Port uint16
	Path string // with its leading "/", without query
}

// ParseProbes parses WEFT_PROXY_APP_PROBES: comma-separated "port:/path".
func ParseProbes(s string) ([]Probe, error) {
	var out []Probe
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		portStr, path, ok := strings.Cut(item, ":")
		port, err := strconv.ParseUint(portStr, 10, 16)
		if !ok || err != nil || port == 0 || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("probe %q: want port:/path", item)
		}
		out = append(out, Probe{Port: uint16(port), Path: path})
	}
	return out, nil
}

// probeForwarder forwards declared probes to the application at addr.
type probeForwarder struct {
	allowed map[Probe]bool
	addr    netip.Addr
	client  *http.Client
}

func newProbeForwarder(probes []Probe, app netip.Addr) *probeForwarder {
	f := &probeForwarder{
		allowed: make(map[Probe]bool, len(probes)),
		addr:    app,
		// Like the kubelet: no keep-alive, no redirects followed.
		client: &http.Client{
			Transport:     &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, p := range probes {
		f.allowed[p] = true
	}
	return f
}

func (f *probeForwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, ProbePrefix)
	portStr, path, _ := strings.Cut(rest, "/")
	port, err := strconv.ParseUint(portStr, 10, 16)
	p := Probe{Port: uint16(port), Path: "/" + path}
	if err != nil || !f.allowed[p] {
		http.Error(w, "not a declared application probe", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	u := "http://" + netip.AddrPortFrom(f.addr, p.Port).String() + p.Path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, vs := range r.Header { // the probe's httpHeaders
		req.Header[k] = vs
	}
	resp, err := f.client.Do(req)
	if err != nil {
		http.Error(w, "probe failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, 10<<10)) // the kubelet reads at most 10 KiB
}
