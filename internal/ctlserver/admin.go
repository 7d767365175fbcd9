package ctlserver

import (
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves /metrics, /live, /ready and /selftest for cfg; api is
// the address the API listens on, which self-tests dial.
func AdminHandler(cfg Config, api net.Addr) http.Handler {
	g := cfg.Gatherer
	if g == nil {
		g = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "live") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /selftest", selfTestHandler{name: cfg.Name, tests: cfg.SelfTests, target: Loopback(api)})
	return mux
}

// Loopback is the address a process reaches its own listener at: an
// unspecified host (":8086", "[::]:8086") becomes the loopback address.
func Loopback(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || ip == nil:
		host = "127.0.0.1"
	case ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
