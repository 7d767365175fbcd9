package iptables

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParsePortRanges(t *testing.T) {
	tests := []struct {
		in      string
		want    []PortRange
		wantErr string
	}{
		{in: "", want: nil},
		{in: "80", want: []PortRange{{80, 80}}},
		{in: " 80, 443 ,1000-2000", want: []PortRange{{80, 80}, {443, 443}, {1000, 2000}}},
		{in: "0", wantErr: "invalid port \"0\""},
		{in: "65536", wantErr: "invalid port"},
		{in: "http", wantErr: "invalid port \"http\""},
		{in: "2000-1000", wantErr: "descending"},
		{in: "1-", wantErr: "invalid port \"\""},
	}
	for _, tt := range tests {
		got, err := ParsePortRanges(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePortRanges(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePortRanges(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSubnets(t *testing.T) {
	got, err := ParseSubnets("10.1.2.3/8, 198.18.64.7,fd00::1/64")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("198.18.64.7/32"),
		netip.MustParsePrefix("fd00::/64"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSubnets = %v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "1.2.3/8"} {
		if _, err := ParseSubnets(bad); err == nil {
			t.Errorf("ParseSubnets(%q) accepted", bad)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "NFT": ModeNFT, "legacy": ModeLegacy} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("iptables"); err == nil {
		t.Error("ParseMode(iptables) accepted")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"same ports", func(c *Config) { c.OutgoingProxyPort = c.IncomingProxyPort }, "both"},
		{"zero inbound", func(c *Config) { c.IncomingProxyPort = 0 }, "incoming"},
		{"bad gid", func(c *Config) { c.ProxyGID = -2 }, "gid"},
		{"bad mode", func(c *Config) { c.Mode = "xt" }, "mode"},
		{"redirect loop", func(c *Config) { c.PortsToRedirect = []PortRange{{4000, 4200}} }, "incoming proxy port"},
	}
	for _, tt := range tests {
		c := Defaults()
		tt.mod(&c)
		err := c.Validate()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate() = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestMultiportChunks(t *testing.T) {
	var rs []PortRange
	for p := uint16(1); p <= 20; p++ {
		rs = append(rs, PortRange{p, p})
	}
	rs = append(rs, PortRange{100, 200})
	got := multiport(rs)
	if len(got) != 2 || strings.Count(got[0], ",") != 14 || got[1] != "16,17,18,19,20,100:200" {
		t.Errorf("multiport = %q", got)
	}
}

func TestParseState(t *testing.T) {
	save := "*nat\n-A PREROUTING -m comment --comment \"weft/install-prerouting\" -j WEFT_PROXY_INIT_PREROUTING\n" +
		"-A OUTPUT -j WEFT_PROXY_INIT_OUTPUT\n-A OUTPUT -j WEFT_PROXY_INIT_OUTPUT\n-A OUTPUT -j KUBE\nCOMMIT\n"
	st := parseState(save)
	if st.preroutingJumps != 1 || st.outputJumps != 2 {
		t.Errorf("parseState = %+v", st)
	}
	out := render(Defaults(), IPv4, st)
	if strings.Contains(out, "-A PREROUTING") || strings.Count(out, "-D OUTPUT") != 1 || strings.Contains(out, "-A OUTPUT") {
		t.Errorf("render with existing jumps:\n%s", out)
	}
}
