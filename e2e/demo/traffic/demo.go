package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/weftmesh/weft/e2e/demo/api/authorspb"
)

// Rates is the offered load per demo target in requests per second; zero disables a target.
type Rates struct {
	WebIndex    float64 // web GET /
	WebStream   float64 // web GET /stream
	BooksList   float64 // books GET /books
	BooksFail   float64 // books GET /fail
	BooksSlow   float64 // books GET /slow
	AuthorsGet  float64 // authors GetAuthor
	AuthorsList float64 // authors ListAuthors
}

// DefaultRates is about 10 requests per second in total.
func DefaultRates() Rates {
	return Rates{WebIndex: 2, WebStream: 1, BooksList: 2, BooksFail: 1, BooksSlow: 1, AuthorsGet: 2, AuthorsList: 1}
}

// Endpoints are the demo services the generator calls.
type Endpoints struct {
	WebURL   string                  // e.g. http://web.demo.svc.cluster.local:8080
	BooksURL string                  // e.g. http://books.demo.svc.cluster.local:7000
	Authors  authorspb.AuthorsClient // nil disables the authors targets
	HTTP     *http.Client            // nil means http.DefaultClient (requests carry their own timeout)
}

// DemoTargets returns the demo's targets with a rate above zero.
func DemoTargets(e Endpoints, r Rates) []Target {
	hc := e.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	all := []Target{
		{Name: "web GET /", Rate: r.WebIndex, Call: HTTPGet(hc, e.WebURL, "/")},
		{Name: "web GET /stream", Rate: r.WebStream, Call: HTTPGet(hc, e.WebURL, "/stream")},
		{Name: "books GET /books", Rate: r.BooksList, Call: HTTPGet(hc, e.BooksURL, "/books")},
		{Name: "books GET /fail", Rate: r.BooksFail, Call: HTTPGet(hc, e.BooksURL, "/fail")},
		{Name: "books GET /slow", Rate: r.BooksSlow, Call: HTTPGet(hc, e.BooksURL, "/slow")},
	}
	if e.Authors != nil {
		all = append(all,
			Target{Name: "authors GetAuthor", Rate: r.AuthorsGet, Call: GetAuthor(e.Authors)},
			Target{Name: "authors ListAuthors", Rate: r.AuthorsList, Call: ListAuthors(e.Authors)},
		)
	}
	var out []Target
	for _, t := range all {
		if t.Rate > 0 {
			out = append(out, t)
		}
	}
	return out
}

// HTTPGet returns a Call that GETs base+path, reads the whole body (at most 1 MiB) and succeeds
// on a 2xx status.
func HTTPGet(c *http.Client, base, path string) Call {
	u := strings.TrimSuffix(base, "/") + path
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("request %s: %w", u, err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
			return fmt.Errorf("GET %s: read body: %w", path, err)
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		return nil
	}
}

// GetAuthor returns a Call that asks for author "1".
func GetAuthor(c authorspb.AuthorsClient) Call {
	return func(ctx context.Context) error {
		_, err := c.GetAuthor(ctx, &authorspb.GetAuthorRequest{Id: "1"})
		return err
	}
}

// ListAuthors returns a Call that reads the whole ListAuthors stream.
func ListAuthors(c authorspb.AuthorsClient) Call {
	return func(ctx context.Context) error {
		s, err := c.ListAuthors(ctx, &authorspb.ListAuthorsRequest{})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
}

// allowedIPs are the addresses the generator may be pointed at by IP: the local cluster's pod and
// Service ranges (198.18.0.0/15) and loopback.
var allowedIPs = []netip.Prefix{
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fd00:198:18::/48"),
}

// CheckTarget refuses a target the generator must never load: only cluster-local Service names
// (a single label such as "books", resolved through the pod's search path, or a name under
// ".svc.<clusterDomain>"),
// "localhost" and addresses in the local cluster's ranges or loopback are allowed. target is a
// URL or a host:port.
func CheckTarget(target, clusterDomain string) error {
	host := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return fmt.Errorf("target %q: %w", target, err)
		}
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return fmt.Errorf("target %q: no host", target)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		for _, p := range allowedIPs {
			if p.Contains(ip.Unmap()) {
				return nil
			}
		}
		return fmt.Errorf("target %q: address %s is outside the local cluster (198.18.0.0/15) and loopback", target, ip)
	}
	if host == "localhost" || !strings.Contains(host, ".") || strings.HasSuffix(host, ".svc."+clusterDomain) {
		return nil
	}
	return fmt.Errorf("target %q: %s is not a cluster-local Service name (want a single label or *.svc.%s)", target, host, clusterDomain)
}
