package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestParseProbes(t *testing.T) {
	t.Parallel()
	got, err := ParseProbes("8080:/healthz, 7002:/ready/deep")
	if err != nil || len(got) != 2 || got[1] != (Probe{7002, "/ready/deep"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"8080", "x:/a", "0:/a", "8080:healthz", "70000:/a"} {
		if _, err := ParseProbes(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestProbeForwarding(t *testing.T) {
	t.Parallel()
	var gotHeader string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader = r.Header.Get("X-Probe")
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok "+r.URL.RawQuery)
			return
		}
		http.Error(w, "sick", http.StatusServiceUnavailable)
	}))
	defer app.Close()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(app.URL, "http://"))
	port := strconv.Itoa(int(ap.Port()))
	admin := httptest.NewServer(Handler(Config{
		Probes:    []Probe{{ap.Port(), "/healthz"}, {ap.Port(), "/sick"}},
		ProbeAddr: ap.Addr(),
	}))
	defer admin.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, admin.URL+path, nil)
		req.Header.Set("X-Probe", "kubelet")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(ProbePrefix + port + "/healthz?full=1"); code != 200 || body != "ok full=1" || gotHeader != "kubelet" {
		t.Fatalf("declared probe: %d %q header %q", code, body, gotHeader)
	}
	if code, _ := get(ProbePrefix + port + "/sick"); code != http.StatusServiceUnavailable {
		t.Fatalf("the app's failure must reach the kubelet, got %d", code)
	}
	if code, _ := get(ProbePrefix + port + "/admin/secret"); code != http.StatusNotFound {
		t.Fatalf("an undeclared path must not be forwarded, got %d", code)
	}
	if code, _ := get(ProbePrefix + "1/healthz"); code != http.StatusNotFound {
		t.Fatalf("an undeclared port must not be forwarded, got %d", code)
	}
}
