package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/weftmesh/weft/internal/testnet"
	"github.com/weftmesh/weft/proxy/iptables"
)

func TestInitFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string
		wantErrMsg string
	}{
		{"dry-run defaults", []string{"--dry-run"}, 0, []string{"--to-ports 4143", "--to-ports 4140", "--uid-owner 2102", "--dports 4190,4191"}, ""},
		{"dry-run custom", []string{"--dry-run", "--incoming-proxy-port=5143", "--outgoing-proxy-port=5140", "--proxy-uid=1337", "--proxy-gid=1337",
			"--inbound-ports-to-ignore=22,8000-8100", "--outbound-ports-to-ignore=3306", "--subnets-to-ignore=10.0.0.0/8", "--ports-to-redirect=80", "--ipv6"},
			0, []string{"--to-ports 5143", "--to-ports 5140", "--uid-owner 1337", "--gid-owner 1337", "--dports 22,4190,4191,8000:8100", "--dports 3306", "-s 10.0.0.0/8", "--dports 80 ", "ip6tables nat rules"}, ""},
		{"bad port list", []string{"--dry-run", "--inbound-ports-to-ignore=22,abc"}, 2, nil, `--inbound-ports-to-ignore: port list "22,abc": invalid port "abc"`},
		{"descending range", []string{"--outbound-ports-to-ignore=9-1"}, 2, nil, "descending"},
		{"bad subnet", []string{"--subnets-to-ignore=10.0.0.0/40"}, 2, nil, "invalid CIDR"},
		{"bad mode", []string{"--iptables-mode=xt"}, 2, nil, "want nft or legacy"},
		{"port out of range", []string{"--incoming-proxy-port=70000"}, 2, nil, "1-65535"},
		{"same ports", []string{"--incoming-proxy-port=4140"}, 2, nil, "both 4140"},
		{"bad log level", []string{"--log-level=loud"}, 2, nil, "--log-level"},
		{"extra args", []string{"now"}, 2, nil, "unexpected arguments"},
		{"unknown flag", []string{"--frobnicate"}, 2, nil, "flag provided but not defined"},
		{"missing netns", []string{"--netns=/run/netns/wt-none"}, 1, nil, "wt-none"},
		{"missing netns by name", []string{"--netns=wt-none2"}, 1, nil, "/run/netns/wt-none2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := initMain(tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errb.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantErrMsg != "" && !strings.Contains(errb.String(), tt.wantErrMsg) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErrMsg)
			}
		})
	}
}

func TestInitAppliesInNetns(t *testing.T) {
	h := testnet.New(t).AddHost(t, "pod")
	for range 2 {
		var out, errb bytes.Buffer
		if code := initMain([]string{"--netns", h.NetnsName(), "--iptables-mode", "legacy", "--outbound-ports-to-ignore", "25"}, &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	}
	save, err := iptables.Save(context.Background(), h.NetnsPath(), iptables.ModeLegacy, iptables.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(save, "-j "+iptables.ChainOutput) != 1 || !strings.Contains(save, "--dports 25 ") {
		t.Errorf("rules after two runs:\n%s", save)
	}
}
