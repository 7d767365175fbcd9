package mtls_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

func startManager(t *testing.T, ca *identitytest.CA, svc *identitytest.Service, id, token string) *identity.Manager {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := identity.New(identity.Config{
		LocalID:         spiffeid.RequireFromString(id),
		TokenFile:       tok,
		ServiceAddr:     svc.Addr,
		TrustAnchorsPEM: ca.AnchorPEM,
		BackoffMin:      20 * time.Millisecond,
		BackoffMax:      200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m.Start(ctx)
	select {
	case <-m.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no certificate: %+v", id, m.Snapshot())
	}
	return m
}

// Two proxies with certificates from the real identity service talk mTLS
// across several certificate renewals.
func TestManagersEndToEndAcrossRenewals(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{
		Lifetime: 2 * time.Second,
		Users: identitytest.Reviewer{
			"tok-web":   "system:serviceaccount:demo:web",
			"tok-books": "system:serviceaccount:demo:books",
		},
	})
	web := startManager(t, ca, svc, webID, "tok-web")
	books := startManager(t, ca, svc, booksID, "tok-books")
	p := startPeer(t, books, books)
	d := &mtls.Dialer{SVIDs: web, Bundle: web, InboundPort: p.port()}

	serials := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; (len(serials) < 3 || i < 10) && time.Now().Before(deadline); i++ {
		c, err := d.Dial(context.Background(), endpoint(8080, booksID, target.HTTP1))
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		a := p.next(t)
		if a.err != nil {
			t.Fatalf("accept %d: %v", i, a.err)
		}
		if a.sc.ClientID().String() != webID {
			t.Fatalf("client id %s", a.sc.ClientID())
		}
		if _, err := a.sc.Write([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !a.sc.ConnectionState().DidResume {
			serials[a.sc.ConnectionState().PeerCertificates[0].SerialNumber.String()] = true
		}
		c.Close()
		a.sc.Close()
		time.Sleep(100 * time.Millisecond)
	}
	if len(serials) < 3 {
		t.Fatalf("server saw %d client certificates, want renewed ones (3+)", len(serials))
	}
	if s := web.Snapshot(); s.Refreshes < 3 || s.Failures != 0 {
		t.Fatalf("web manager %+v", s)
	}
	if s := d.Stats(); s.Handshakes < 10 || s.Failures[mtls.ReasonIdentity] != 0 {
		t.Fatalf("dialer stats %+v", s)
	}
}
