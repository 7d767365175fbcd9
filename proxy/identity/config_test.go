package identity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/weftmesh/weft/proxy/identity"
)

func TestFromEnv(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\n..."
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantID  string
		wantErr string
	}{
		{"disabled", map[string]string{identity.EnvDisabled: "true"}, "", "identity disabled"},
		{"bad disabled", map[string]string{identity.EnvDisabled: "maybe"}, "", identity.EnvDisabled},
		{"local name", map[string]string{identity.EnvLocalName: "spiffe://example.org/ns/a/sa/b", identity.EnvTrustAnchors: pem}, "spiffe://example.org/ns/a/sa/b", ""},
		{"built from pod env", map[string]string{identity.EnvPodNamespace: "demo", identity.EnvPodServiceAccount: "web", identity.EnvTrustAnchorsFile: "/x"}, "spiffe://cluster.local/ns/demo/sa/web", ""},
		{"trust domain", map[string]string{identity.EnvTrustDomain: "prod.example", identity.EnvPodNamespace: "demo", identity.EnvPodServiceAccount: "web", identity.EnvTrustAnchors: pem}, "spiffe://prod.example/ns/demo/sa/web", ""},
		{"no identity", map[string]string{identity.EnvTrustAnchors: pem}, "", identity.EnvLocalName},
		{"bad local name", map[string]string{identity.EnvLocalName: "https://x/y", identity.EnvTrustAnchors: pem}, "", identity.EnvLocalName},
		{"bad trust domain", map[string]string{identity.EnvTrustDomain: "Bad Domain", identity.EnvPodNamespace: "a", identity.EnvPodServiceAccount: "b", identity.EnvTrustAnchors: pem}, "", identity.EnvTrustDomain},
		{"bad service name", map[string]string{identity.EnvServiceName: "nope", identity.EnvLocalName: "spiffe://cluster.local/ns/a/sa/b", identity.EnvTrustAnchors: pem}, "", identity.EnvServiceName},
		{"workload api", map[string]string{identity.EnvWorkloadAPIAddr: "unix:///run/spire/agent.sock"}, "", ""},
		{"no anchors", map[string]string{identity.EnvLocalName: "spiffe://cluster.local/ns/a/sa/b"}, "", identity.EnvTrustAnchors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := identity.FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want containing %q", err, tc.wantErr)
				}
				if tc.name == "disabled" && !errors.Is(err, identity.ErrDisabled) {
					t.Fatal("not ErrDisabled")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "workload api" && c.WorkloadAPIAddr != tc.env[identity.EnvWorkloadAPIAddr] {
				t.Fatalf("workload api addr %q", c.WorkloadAPIAddr)
			}
			if c.LocalID.String() != tc.wantID {
				t.Fatalf("id %s, want %s", c.LocalID, tc.wantID)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := identity.New(identity.Config{}); err == nil {
		t.Fatal("no local id accepted")
	}
	c, err := identity.FromEnv(func(k string) string {
		return map[string]string{identity.EnvLocalName: "spiffe://cluster.local/ns/a/sa/b", identity.EnvTrustAnchors: "not pem"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.New(c); err == nil || !strings.Contains(err.Error(), "trust anchors") {
		t.Fatalf("bad anchors: %v", err)
	}
}
