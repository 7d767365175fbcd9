package iptables

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRenderGolden(t *testing.T) {
	full := Defaults()
	full.ProxyGID = 2102
	full.InboundPortsToIgnore = []PortRange{{22, 22}, {8000, 8100}}
	full.OutboundPortsToIgnore = []PortRange{{25, 25}, {3306, 3306}}
	full.SubnetsToIgnore = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	full.PortsToRedirect = []PortRange{{80, 80}, {8080, 8090}}
	tests := []struct {
		name string
		cfg  Config
		fam  Family
	}{
		{"default-v4", Defaults(), IPv4},
		{"full-v4", full, IPv4},
		{"full-v6", full, IPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(tt.cfg, tt.fam)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("Render mismatch for %s (run with -update after checking):\n--- got\n%s--- want\n%s", tt.name, got, want)
			}
		})
	}
}
