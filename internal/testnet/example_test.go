package testnet_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftmesh/weft/internal/testnet"
)

// A server in one namespace host, an ordinary net/http client dialing from another.
func TestExampleUsage(t *testing.T) {
	n := testnet.New(t)
	client, server := n.AddHost(t, "client"), n.AddHost(t, "server")

	ln, err := server.Listen("tcp", netip.AddrPortFrom(server.IP(), 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}}
	resp, err := hc.Get(fmt.Sprintf("http://%s:8080/", server.IP()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}

	// Programs run inside a host with Command (e.g. `weft-proxy init`, a proxy as uid 2102).
	out, err := client.Command("ip", "-brief", "addr", "show", "dev", "eth0").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := client.IP().String(); !strings.Contains(string(out), want) {
		t.Errorf("eth0 of client %q lacks %s", out, want)
	}
}
