package identity_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
)

const webID = "spiffe://cluster.local/ns/demo/sa/web"

var users = identitytest.Reviewer{
	"tok-web":   "system:serviceaccount:demo:web",
	"tok-other": "system:serviceaccount:demo:other",
}

func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newManager(t *testing.T, ca *identitytest.CA, addr, tokenFile string) *identity.Manager {
	t.Helper()
	m, err := identity.New(identity.Config{
		LocalID:         spiffeid.RequireFromString(webID),
		TokenFile:       tokenFile,
		ServiceAddr:     addr,
		TrustAnchorsPEM: ca.AnchorPEM,
		BackoffMin:      20 * time.Millisecond,
		BackoffMax:      200 * time.Millisecond,
		RequestTimeout:  5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return m
}

func waitReady(t *testing.T, m *identity.Manager) {
	t.Helper()
	select {
	case <-m.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("no certificate: %+v", m.Snapshot())
	}
}

// eventually polls cond for up to 20s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestManagerObtainsValidSVID(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: users})
	m := newManager(t, ca, svc.Addr, writeToken(t, "tok-web"))
	waitReady(t, m)

	s, err := m.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.Verify(s.Certificates, ca.Bundle())
	if err != nil {
		t.Fatalf("go-spiffe verify: %v", err)
	}
	if id.String() != webID || m.LocalID().String() != webID {
		t.Fatalf("id %s, want %s", id, webID)
	}
	// The SVID is usable as a go-spiffe SVID (key matches the leaf).
	certPEM, keyPEM, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509svid.Parse(certPEM, keyPEM); err != nil {
		t.Fatalf("parse marshalled svid: %v", err)
	}
	if b, err := m.GetX509BundleForTrustDomain(ca.TrustDomain); err != nil || !b.HasX509Authority(ca.Anchor.Cert) {
		t.Fatalf("bundle: %v", err)
	}
	if _, err := m.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("other.org")); err == nil {
		t.Fatal("bundle for another trust domain")
	}
	snap := m.Snapshot()
	if !snap.Ready || !snap.Valid || snap.Refreshes != 1 || snap.Failures != 0 || !snap.Expiry.Equal(s.Certificates[0].NotAfter) {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestManagerRenewsWithoutGap(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: users, Lifetime: 2 * time.Second})
	m := newManager(t, ca, svc.Addr, writeToken(t, "tok-web"))
	waitReady(t, m)

	serials := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	for len(serials) < 4 && time.Now().Before(deadline) {
		s, err := m.GetX509SVID()
		if err != nil {
			t.Fatalf("without a certificate after %d renewals: %v", len(serials), err)
		}
		if _, _, err := x509svid.Verify(s.Certificates, ca.Bundle()); err != nil {
			t.Fatalf("current certificate does not verify: %v", err)
		}
		serials[s.Certificates[0].SerialNumber.String()] = true
		time.Sleep(20 * time.Millisecond)
	}
	if len(serials) < 4 {
		t.Fatalf("saw %d certificates, want 4 (renewals)", len(serials))
	}
	if snap := m.Snapshot(); snap.Refreshes < 4 || snap.Failures != 0 {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestManagerKeepsCertificateWhileServiceDown(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: users, Lifetime: 3 * time.Second})
	m := newManager(t, ca, svc.Addr, writeToken(t, "tok-web"))
	waitReady(t, m)
	svc.Stop()
	first, err := m.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	expiry := first.Certificates[0].NotAfter
	// Until it expires the current certificate keeps being served, while
	// renewals fail and are counted.
	for time.Until(expiry) > 100*time.Millisecond {
		s, err := m.GetX509SVID()
		if err != nil {
			t.Fatalf("lost the certificate before expiry: %v", err)
		}
		if s.Certificates[0].NotAfter.Before(expiry) {
			t.Fatal("certificate went backwards")
		}
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, "expiry", func() bool { return !m.Snapshot().Valid })
	_, err = m.GetX509SVID()
	if !errors.Is(err, identity.ErrExpired) {
		t.Fatalf("after expiry: %v, want ErrExpired", err)
	}
	snap := m.Snapshot()
	if snap.Failures == 0 || snap.LastError == "" || !snap.Ready {
		t.Fatalf("snapshot %+v", snap)
	}
	// The Manager keeps trying and recovers when the service is back.
	svc.Start()
	eventually(t, "recovery", func() bool { _, err := m.GetX509SVID(); return err == nil })
	if m.Snapshot().LastError != "" {
		t.Fatalf("last error not cleared: %+v", m.Snapshot())
	}
}

func TestManagerReadyOnlyAfterFirstCertificate(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: users})
	svc.Stop()
	m := newManager(t, ca, svc.Addr, writeToken(t, "tok-web"))
	eventually(t, "failures", func() bool { return m.Snapshot().Failures >= 3 })
	select {
	case <-m.Ready():
		t.Fatal("ready without a certificate")
	default:
	}
	if _, err := m.GetX509SVID(); !errors.Is(err, identity.ErrNotReady) {
		t.Fatalf("GetX509SVID: %v, want ErrNotReady", err)
	}
	svc.Start()
	waitReady(t, m)
}

func TestManagerRefused(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	for _, tc := range []struct {
		name     string
		token    string
		anchors  func() []byte
		wantText string
	}{
		{"token for another service account", "tok-other", func() []byte { return ca.AnchorPEM }, "does not match"},
		{"unknown token", "tok-nobody", func() []byte { return ca.AnchorPEM }, "invalid token"},
		{"identity service from an untrusted root", "tok-web", func() []byte { return identitytest.NewCA(t, "").AnchorPEM }, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := identitytest.StartService(t, ca, identitytest.Options{Users: users})
			m, err := identity.New(identity.Config{
				LocalID:         spiffeid.RequireFromString(webID),
				TokenFile:       writeToken(t, tc.token),
				ServiceAddr:     svc.Addr,
				TrustAnchorsPEM: tc.anchors(),
				BackoffMin:      20 * time.Millisecond,
				BackoffMax:      100 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m.Start(ctx)
			eventually(t, "failures", func() bool { return m.Snapshot().Failures >= 2 })
			snap := m.Snapshot()
			if snap.Ready || snap.Refreshes != 0 || !strings.Contains(snap.LastError, tc.wantText) {
				t.Fatalf("snapshot %+v, want error containing %q", snap, tc.wantText)
			}
			if testing.Verbose() {
				t.Log(snap.LastError)
			}
			if _, err := m.GetX509SVID(); err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("GetX509SVID error %v should carry the cause", err)
			}
		})
	}
}

func TestManagerTokenReReadEveryRequest(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: users})
	tok := writeToken(t, "tok-nobody")
	m := newManager(t, ca, svc.Addr, tok)
	eventually(t, "a failure", func() bool { return m.Snapshot().Failures >= 1 })
	// The kubelet rotates the token file; the next attempt uses it.
	if err := os.WriteFile(tok, []byte("tok-web"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReady(t, m)
}

func TestTrustAnchorsReload(t *testing.T) {
	a, b := identitytest.NewCA(t, ""), identitytest.NewCA(t, "")
	file := filepath.Join(t.TempDir(), "anchors.pem")
	if err := os.WriteFile(file, a.AnchorPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := identity.New(identity.Config{
		LocalID:          spiffeid.RequireFromString(webID),
		ServiceAddr:      "127.0.0.1:1",
		TrustAnchorsFile: file,
		PollInterval:     10 * time.Millisecond,
		BackoffMin:       time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Start(ctx)
	has := func(ca *identitytest.CA) bool {
		bd, err := m.GetX509BundleForTrustDomain(ca.TrustDomain)
		return err == nil && bd.HasX509Authority(ca.Anchor.Cert)
	}
	if !has(a) || has(b) {
		t.Fatal("initial anchors")
	}
	// Rotation: both roots, then only the new one.
	both := append(append([]byte{}, a.AnchorPEM...), b.AnchorPEM...)
	if err := os.WriteFile(file, both, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two roots", func() bool { return has(a) && has(b) })
	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if !has(a) || !has(b) {
		t.Fatal("invalid anchors replaced the loaded ones")
	}
	if err := m.SetTrustAnchors(ca2Leafish(t, b)); err == nil {
		t.Fatal("a non-CA certificate accepted as anchor")
	}
}

// ca2Leafish returns a PEM leaf certificate (not a CA).
func ca2Leafish(t *testing.T, ca *identitytest.CA) []byte {
	s := ca.SVID(t, webID, time.Hour)
	p, _, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
