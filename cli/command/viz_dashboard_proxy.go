package command

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/weftmesh/weft/viz/metricsapi"
)

// vizServicePath is the viz Service's root through the API server's
// service proxy (as metricsapi.Client reaches the query API).
var vizServicePath = "/api/v1/namespaces/" + metricsapi.Namespace + "/services/http:" + metricsapi.ServiceName + ":" + strconv.Itoa(metricsapi.Port) + "/proxy"

// dashboardProxy forwards the browser's GETs to the viz web server through
// the API server's service proxy with the kubeconfig's credentials. It
// holds cluster credentials on a local port, so it forwards only what the
// read-only dashboard needs: GET and HEAD, paths without dot segments or
// escapes (nothing can climb out of the service proxy to other API
// paths), requests addressed to its own loopback host (a page elsewhere
// that rebinds a DNS name to 127.0.0.1 is refused), and never the
// browser's own Authorization or Cookie headers.
type dashboardProxy struct {
	base  *url.URL        // the API server's URL with vizServicePath
	hosts map[string]bool // Host headers accepted: 127.0.0.1:PORT, localhost:PORT
	rp    *httputil.ReverseProxy
}

// newDashboardProxy builds the proxy for rc; allow sets the accepted hosts
// once the port is known.
func newDashboardProxy(rc *rest.Config) (*dashboardProxy, error) {
	server, _, err := rest.DefaultServerUrlFor(rc)
	if err != nil {
		return nil, fmt.Errorf("api server url: %w", err)
	}
	rt, err := rest.TransportFor(rc)
	if err != nil {
		return nil, fmt.Errorf("api server transport: %w", err)
	}
	base := *server
	base.Path = strings.TrimSuffix(base.Path, "/") + vizServicePath
	d := &dashboardProxy{base: &base, hosts: map[string]bool{}}
	d.rp = &httputil.ReverseProxy{
		Transport: rt,
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *d.base
			u.Path += pr.In.URL.Path
			u.RawQuery = pr.In.URL.RawQuery
			pr.Out.URL = &u
			pr.Out.Host = ""
			for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization", "Origin", "Referer"} {
				pr.Out.Header.Del(h)
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "weft viz dashboard: reach the viz extension through the API server: "+err.Error(), http.StatusBadGateway)
		},
	}
	return d, nil
}

// allow accepts requests addressed to the listener's address.
func (d *dashboardProxy) allow(addr net.Addr) {
	_, port, _ := net.SplitHostPort(addr.String())
	for _, h := range []string{"127.0.0.1", "localhost"} {
		d.hosts[net.JoinHostPort(h, port)] = true
	}
}

func (d *dashboardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the dashboard is read-only", http.StatusMethodNotAllowed)
		return
	}
	if !d.hosts[r.Host] {
		http.Error(w, "forbidden: the dashboard answers only requests to 127.0.0.1 or localhost on its port", http.StatusForbidden)
		return
	}
	if !cleanPath(r.URL) {
		http.Error(w, "bad request: the path has dot segments or escapes", http.StatusBadRequest)
		return
	}
	d.rp.ServeHTTP(w, r)
}

// cleanPath reports whether u's path is absolute, already clean (no "."
// or ".." segments, no doubled slashes) and has no escapes.
func cleanPath(u *url.URL) bool {
	p := u.Path
	if u.RawPath != "" || strings.ContainsAny(p, "%\\") || !strings.HasPrefix(p, "/") {
		return false
	}
	c := path.Clean(p)
	return c == p || c+"/" == p
}
