package mtls_test

import (
	"strings"
	"testing"

	"github.com/weftmesh/weft/proxy/mtls"
)

func TestPolicy(t *testing.T) {
	type probe struct {
		port uint16
		auth bool
		want bool
	}
	for _, tc := range []struct {
		def, ports string
		probes     []probe
	}{
		{"", "", []probe{{80, false, true}, {80, true, true}}},
		{"all-unauthenticated", "8080,9000-9010", []probe{{80, false, true}, {8080, false, false}, {8080, true, true}, {9005, false, false}, {9011, false, true}}},
		{"all-authenticated", "", []probe{{80, false, false}, {80, true, true}}},
		{"all-authenticated", "8080", []probe{{8080, false, false}, {8080, true, true}, {81, false, false}}},
		{"deny", "", []probe{{80, false, false}, {80, true, false}}},
	} {
		p, err := mtls.ParsePolicy(tc.def, tc.ports)
		if err != nil {
			t.Fatalf("%q %q: %v", tc.def, tc.ports, err)
		}
		for _, pr := range tc.probes {
			if got := p.Allows(pr.port, pr.auth); got != pr.want {
				t.Errorf("policy %q ports %q: Allows(%d, authenticated=%v) = %v, want %v", tc.def, tc.ports, pr.port, pr.auth, got, pr.want)
			}
		}
	}
	var zero mtls.Policy
	if !zero.Allows(1, false) {
		t.Fatal("zero policy refuses")
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ def, ports, want string }{
		{"cluster-authenticated", "", mtls.EnvDefaultPolicy},
		{"", "80,http", mtls.EnvPortsRequireIdentity},
		{"", "90-80", mtls.EnvPortsRequireIdentity},
		{"", "0", mtls.EnvPortsRequireIdentity},
	} {
		if _, err := mtls.ParsePolicy(tc.def, tc.ports); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: %v, want an error naming %s", tc.def, tc.ports, err, tc.want)
		}
	}
	p, err := mtls.PolicyFromEnv(func(k string) string {
		return map[string]string{mtls.EnvDefaultPolicy: "all-authenticated"}[k]
	})
	if err != nil || p.Default != mtls.AllAuthenticated || p.Default.String() != "all-authenticated" {
		t.Fatalf("from env: %+v %v", p, err)
	}
}
