package testapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/weftmesh/weft/e2e/demo/serve"
)

// MaxSleep bounds GET /sleep?d=.
const MaxSleep = time.Minute

// Echo is the JSON body of GET / of the http subcommand.
type Echo struct {
	Hostname string              `json:"hostname"`
	PodIP    string              `json:"podIP"`
	UID      int                 `json:"uid"`
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	Host     string              `json:"host"`
	Remote   string              `json:"remote"`
	Headers  map[string][]string `json:"headers"`
}

// NewHTTPHandler returns the http subcommand's handler: / (echo), /uid, /healthz, /status/{code}
// and /sleep?d=<duration>.
func NewHTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", &serve.Health{})
	mux.HandleFunc("GET /uid", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%d\n", os.Getuid())
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, fmt.Sprintf("status %q: want 200..599", r.PathValue("code")), http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "%d\n", code)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 || d > MaxSleep {
			http.Error(w, fmt.Sprintf("d=%q: want a duration between 0 and %v", r.URL.Query().Get("d"), MaxSleep), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(w, "slept %v\n", d)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		e := Echo{
			Hostname: host, PodIP: podIP(), UID: os.Getuid(),
			Method: r.Method, Path: r.URL.Path, Host: r.Host, Remote: r.RemoteAddr, Headers: r.Header,
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
	return mux
}

// ServeHTTP serves NewHTTPHandler on addr until ctx is done.
func ServeHTTP(ctx context.Context, addr string) error {
	return serve.HTTP(ctx, addr, NewHTTPHandler(), 5*time.Second)
}

// podIP is $POD_IP, else the first non-loopback IPv4 address of the host (the pod's netns).
func podIP() string {
	if ip := os.Getenv("POD_IP"); ip != "" {
		return ip
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var ips []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ips = append(ips, n.IP.String())
		}
	}
	sort.Strings(ips)
	if len(ips) == 0 {
		return ""
	}
	return ips[0]
}
