package metricsapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/weftmesh/weft/viz/web"
	"github.com/weftmesh/weft/viz/web/chromium"
)

func TestDashboardHandlers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(demoServer(t, 3).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
		body         string // a substring the body has
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8", "createTextNode"},
		{"GET", "/app.css", 200, "text/css; charset=utf-8", ".topology"},
		{"GET", "/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"HEAD", "/app.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/nope", 404, "text/plain; charset=utf-8", "not found"},
		{"GET", "/../etc/passwd", 404, "", ""},
		{"POST", "/", 405, "text/plain; charset=utf-8", "read-only"},
		{"PUT", "/app.js", 405, "", ""},
		{"DELETE", "/api/v1/stat", 405, "", ""},
		{"POST", SeriesPath, 405, "", ""},
		{"PATCH", HealthPath, 405, "", ""},
		{"GET", SeriesPath + "?resource=deploy/web&namespace=demo", 200, "application/json", `"inbound":[`},
		{"GET", SeriesPath + "?resource=deploy&namespace=demo", 400, "application/json", "series needs one named resource"},
		{"GET", SeriesPath + "?resource=deploy/web&from=deploy/traffic", 400, "application/json", "no from or to"},
		{"GET", SeriesPath + "?resource=deploy/web&window=-1m", 400, "application/json", "not a positive duration"},
		{"GET", SeriesPath, 400, "application/json", "missing resource"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body lacks %q: %.300s", tc.body, body)
			}
			if tc.status == 405 && !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("405 without Allow: GET (%q)", resp.Header.Get("Allow"))
			}
			for h, want := range map[string]string{
				"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
			} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP allows inline code: %q", csp)
			}
		})
	}
}

// The page may load nothing but its own files: no inline script or style
// (the CSP would block them), no absolute or remote URL.
func TestDashboardPageIsSelfContained(t *testing.T) {
	t.Parallel()
	for path, a := range web.Assets {
		rec := httptest.NewRecorder()
		web.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		// The SVG namespace URI is a name, not a fetch.
		body := strings.ReplaceAll(rec.Body.String(), "http://www.w3.org/2000/svg", "")
		if rec.Code != 200 || body == "" {
			t.Fatalf("%s (%s): %d, %d bytes", path, a.File, rec.Code, len(body))
		}
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`https?://[a-z]`), regexp.MustCompile(`<script>`), regexp.MustCompile(`style="`),
			regexp.MustCompile(`(src|href)="/`), regexp.MustCompile(`\bon[a-z]+="`),
		} {
			if m := bad.FindString(body); m != "" {
				t.Errorf("%s has %q (%s)", path, m, bad)
			}
		}
	}
	js := fetchAsset(t, "/app.js")
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "outerHTML") || strings.Contains(js, "insertAdjacentHTML") || strings.Contains(js, "document.write") {
		t.Error("app.js parses HTML from strings; render with DOM text nodes (viz/web/src/dom.ts)")
	}
}

func fetchAsset(t *testing.T, path string) string {
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Body.String()
}

func TestSeriesShape(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(demoServer(t, 4).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + SeriesPath + "?resource=deploy/web&namespace=demo&window=1m")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Series
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	// Tick 0 is every pod's baseline (outside every query); then web
	// serves 30 and sends 60 requests per 10 s tick.
	if s.IntervalSeconds != 10 || s.Resource.Name != "web" || len(s.Inbound) != 3 || len(s.Outbound) != 3 {
		t.Fatalf("series = %+v", s)
	}
	for i, want := range [][2]float64{{3, 6}, {3, 6}, {3, 6}} {
		if s.Inbound[i] != want[0] || s.Outbound[i] != want[1] {
			t.Errorf("tick %d: inbound %v outbound %v, want %v", i, s.Inbound[i], s.Outbound[i], want)
		}
	}
}

// TestDashboardInChromium renders the pages in headless Chromium from the
// fixture window: workloads with their success rates, the failing route
// marked, the demo's edges drawn, and names that are HTML rendered as text.
func TestDashboardInChromium(t *testing.T) {
	if _, err := chromium.Find(); errors.Is(err, chromium.ErrNotInstalled) {
		t.Skip(err)
	}
	t.Parallel()
	srv := httptest.NewServer(demoServer(t, 4).Handler())
	defer srv.Close()
	dump := func(frag string) string {
		dom, err := chromium.DumpDOM(t.Context(), srv.URL+"/"+frag, chromium.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dom, `data-loaded="`) {
			t.Fatalf("%s did not load:\n%s", frag, dom)
		}
		return dom
	}
	checkXSS := func(frag, dom string) {
		if strings.Contains(dom, `<img src="x"`) || strings.Contains(dom, "pwned") && !strings.Contains(dom, "title='pwned'") {
			t.Errorf("%s: a name became markup:\n%s", frag, dom)
		}
	}
	ns := dump("#/ns/demo")
	for _, want := range []string{
		`<tr data-name="web" data-type="deploy" class="health-ok"><td class="name"><a href="#/ns/demo/deploy/web">deploy/web</a>`,
		`data-success="0.9286">92.86%</td>`, // books served 65 of 70
		`data-route="GET /fail" data-authority="books.demo.svc.cluster.local:7000" data-client="traffic" class="route health-fail failing"`,
		`<span class="badge fail">failing</span>`,
		`data-src="traffic" data-dst="web"`, `data-src="traffic" data-dst="books"`, `data-src="web" data-dst="books"`, `data-src="web" data-dst="authors"`,
		`class="edge fail secured failing" data-src="traffic" data-dst="books"`,
		`deploy/&lt;img src=x onerror=document.title='pwned'&gt;`, // the workload, as text
		`&lt;img src=x onerror=document.title='pwned'&gt;<`,       // the route, as text
	} {
		if !strings.Contains(ns, want) {
			t.Errorf("namespace page lacks %s", want)
		}
	}
	checkXSS("#/ns/demo", ns)
	if t.Failed() {
		t.Logf("namespace page:\n%s", ns)
	}
	wl := dump("#/ns/demo/deploy/traffic")
	for _, want := range []string{`<h1>deploy/traffic</h1>`, `data-series="inbound rps"`, `data-series="outbound rps"`, `weft viz top deploy/traffic -n demo`,
		`data-route="GET /fail"`, `<td class="name">svc/books</td>`} {
		if !strings.Contains(wl, want) {
			t.Errorf("workload page lacks %s", want)
		}
	}
	checkXSS("#/ns/demo/deploy/traffic", wl)
	xss := dump("#/ns/demo/deploy/" + strings.NewReplacer("<", "%3C", ">", "%3E", " ", "%20", "'", "%27").Replace(xssName))
	if !strings.Contains(xss, `<h1>deploy/&lt;img src=x onerror=document.title='pwned'&gt;</h1>`) {
		t.Errorf("the workload named %s is not its page's title as text", xssName)
	}
	checkXSS("xss workload page", xss)
	if t.Failed() {
		t.Logf("workload page:\n%s", wl)
	}
}
