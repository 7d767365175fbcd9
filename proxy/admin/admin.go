// Package admin serves the proxy's admin endpoints: /metrics (Prometheus
// text), /ready (503 once draining), /live, and /shutdown (off by default;
// when on, POST from loopback only — an SSRF-reachable shutdown was Linkerd's
// CVE-2024-40632).
package admin

import (
	"io"
	"net"
	"net/http"
	"net/netip"
)

// Config wires the handlers to the proxy.
type Config struct {
	// Metrics renders the exposition; nil serves an empty body.
	Metrics io.WriterTo
	// ContentType of /metrics.
	ContentType string
	// Draining reports whether readiness is withdrawn; nil means never.
	Draining func() bool
	// NotReady returns why the proxy is not ready yet (e.g. no certificate
	// yet), "" when it is; nil means always ready.
	NotReady func() string
	// Shutdown, when not nil, enables POST /shutdown from loopback clients
	// and is called once per accepted request.
	Shutdown func()
	// Probes are the application's HTTP probes forwarded under ProbePrefix;
	// empty disables it. ProbeAddr is the application's address (the pod IP;
	// invalid means 127.0.0.1).
	Probes    []Probe
	ProbeAddr netip.Addr
}

// Handler returns the admin mux.
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", cfg.ContentType)
		if cfg.Metrics != nil {
			cfg.Metrics.WriteTo(w)
		}
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Draining != nil && cfg.Draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if cfg.NotReady != nil {
			if why := cfg.NotReady(); why != "" {
				http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ready\n")
	})
	if len(cfg.Probes) > 0 {
		addr := cfg.ProbeAddr
		if !addr.IsValid() {
			addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		mux.Handle("GET "+ProbePrefix, newProbeForwarder(cfg.Probes, addr))
	}
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "live\n")
	})
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case cfg.Shutdown == nil:
			http.Error(w, "shutdown endpoint is disabled (WEFT_PROXY_ADMIN_SHUTDOWN_ENABLED)", http.StatusNotFound)
		case r.Method != http.MethodPost:
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
		case !fromLoopback(r):
			http.Error(w, "shutdown is allowed from loopback only", http.StatusForbidden)
		default:
			cfg.Shutdown()
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "shutting down\n")
		}
	})
	return mux
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
