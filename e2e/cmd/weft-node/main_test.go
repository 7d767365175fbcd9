package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	base := []string{"--kubeconfig", "kc", "--state-dir", "st", "--bin-dir", "bin"}
	cfg, err := parseFlags(append(base, "--node-name", "weft-node", "--bridge", "weft0", "--pod-cidr", "198.18.0.0/20",
		"--service-cidr", "198.19.0.0/16", "--cluster-dns", "198.19.0.10", "--cluster-domain", "cluster.local", "--restart-backoff-base", "1s"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodCIDR.Addr().Next().String() != "198.18.0.1" || cfg.ServiceCIDR.Addr().Next().String() != "198.19.0.1" ||
		cfg.RestartBackoffBase != time.Second || cfg.RestartBackoffMax != 5*time.Minute || cfg.NodeName != "weft-node" {
		t.Errorf("cfg = %+v", cfg)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--state-dir", "s", "--bin-dir", "b"}, "--kubeconfig is required"},
		{append(base, "--pod-cidr", "nope"), "--pod-cidr"},
		{append(base, "--cluster-dns", "10.0.0.10"), "outside --service-cidr"},
		{append(base, "--restart-backoff-base", "10m"), "--restart-backoff-base"},
		{append(base, "--log-level", "loud"), "--log-level"},
		{append(base, "extra"), "unexpected arguments"},
	} {
		if _, err := parseFlags(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%v) = %v, want error containing %q", tt.args, err, tt.want)
		}
	}
}
