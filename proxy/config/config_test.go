package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", env: nil, check: func(c Config) bool {
			return slices.Equal(c.InboundAddrs, []string{"0.0.0.0:4143"}) && slices.Equal(c.OutboundAddrs, []string{"127.0.0.1:4140"}) &&
				c.AdminAddr == "0.0.0.0:4191" && slices.Equal(c.InboundOpaquePorts, DefaultOpaquePorts) &&
				c.DetectTimeout <= time.Second && !c.AdminShutdown
		}},
		{name: "ports and ranges", env: map[string]string{"WEFT_PROXY_OUTBOUND_PORTS_DISABLE_PROTOCOL_DETECTION": "9000-9002, 25,25"},
			check: func(c Config) bool { return slices.Equal(c.OutboundOpaquePorts, []uint16{25, 9000, 9001, 9002}) }},
		{name: "dual stack", env: map[string]string{"WEFT_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:4140, [::1]:4140"},
			check: func(c Config) bool { return slices.Equal(c.OutboundAddrs, []string{"127.0.0.1:4140", "[::1]:4140"}) }},
		{name: "bad list", env: map[string]string{"WEFT_PROXY_INBOUND_LISTEN_ADDR": "0.0.0.0:4143,"}, wantErr: "WEFT_PROXY_INBOUND_LISTEN_ADDR"},
		{name: "none", env: map[string]string{"WEFT_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION": "none"},
			check: func(c Config) bool { return len(c.InboundOpaquePorts) == 0 }},
		{name: "bad port", env: map[string]string{"WEFT_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION": "70000"},
			wantErr: "WEFT_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"},
		{name: "detect too long", env: map[string]string{"WEFT_PROXY_DETECT_TIMEOUT": "2s"}, wantErr: "WEFT_PROXY_DETECT_TIMEOUT"},
		{name: "bad duration", env: map[string]string{"WEFT_PROXY_CONNECT_TIMEOUT": "soon"}, wantErr: "WEFT_PROXY_CONNECT_TIMEOUT"},
		{name: "bad addr", env: map[string]string{"WEFT_PROXY_ADMIN_LISTEN_ADDR": "localhost:4191"}, wantErr: "WEFT_PROXY_ADMIN_LISTEN_ADDR"},
		{name: "bad bool", env: map[string]string{"WEFT_PROXY_ADMIN_SHUTDOWN_ENABLED": "yes please"}, wantErr: "WEFT_PROXY_ADMIN_SHUTDOWN_ENABLED"},
		{name: "bad level", env: map[string]string{"WEFT_PROXY_LOG_LEVEL": "loud"}, wantErr: "WEFT_PROXY_LOG_LEVEL"},
		{name: "header bytes", env: map[string]string{"WEFT_PROXY_MAX_HEADER_BYTES": "10"}, wantErr: "WEFT_PROXY_MAX_HEADER_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestMeshEnv(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "nothing: identity off, pass-through", check: func(c Config) bool { return c.Identity == nil && c.DestinationAddr == "" }},
		{name: "disabled wins", env: map[string]string{"WEFT_PROXY_IDENTITY_DISABLED": "true", "WEFT_PROXY_IDENTITY_SVC_ADDR": "id:8080",
			"WEFT_PROXY_DESTINATION_SVC_ADDR": "dst:8086"},
			check: func(c Config) bool {
				return c.Identity == nil && c.DestinationAddr == "dst:8086" && c.DestinationName == ""
			}},
		{name: "injector env", env: map[string]string{
			"WEFT_PROXY_IDENTITY_SVC_ADDR": "weft-identity.weft.svc.cluster.local:8080", "WEFT_PROXY_IDENTITY_TRUST_ANCHORS": pem,
			"WEFT_PROXY_POD_NAMESPACE": "demo", "WEFT_PROXY_SERVICE_ACCOUNT": "web",
			"WEFT_PROXY_DESTINATION_SVC_ADDR":   "weft-destination.weft.svc.cluster.local:8086",
			"WEFT_PROXY_INBOUND_DEFAULT_POLICY": "all-authenticated"},
			check: func(c Config) bool {
				return c.Identity != nil && c.Identity.LocalID.String() == "spiffe://cluster.local/ns/demo/sa/web" &&
					c.DestinationName == DefaultDestinationName && c.Policy.Default.String() == "all-authenticated"
			}},
		{name: "partial identity", env: map[string]string{"WEFT_PROXY_IDENTITY_TRUST_ANCHORS": pem}, wantErr: "WEFT_PROXY_IDENTITY_SVC_ADDR"},
		{name: "no anchors", env: map[string]string{"WEFT_PROXY_IDENTITY_SVC_ADDR": "id:8080", "WEFT_PROXY_IDENTITY_LOCAL_NAME": "spiffe://cluster.local/ns/a/sa/b"},
			wantErr: "WEFT_PROXY_IDENTITY_TRUST_ANCHORS"},
		{name: "policy without identity", env: map[string]string{"WEFT_PROXY_INBOUND_DEFAULT_POLICY": "all-authenticated"}, wantErr: "needs identity"},
		{name: "bad policy", env: map[string]string{"WEFT_PROXY_INBOUND_DEFAULT_POLICY": "some"}, wantErr: "WEFT_PROXY_INBOUND_DEFAULT_POLICY"},
		{name: "destination tuning", env: map[string]string{"WEFT_PROXY_DESTINATION_SVC_ADDR": "dst:8086",
			"WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT": "500ms", "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES": "svc.cluster.local., example.org",
			"WEFT_PROXY_DESTINATION_CONTEXT": `{"ns":"demo"}`},
			check: func(c Config) bool {
				return c.DestinationFailFast == 500*time.Millisecond && slices.Equal(c.DestinationSuffixes, []string{"svc.cluster.local", "example.org"}) &&
					c.DestinationContext == `{"ns":"demo"}`
			}},
		{name: "no suffixes", env: map[string]string{"WEFT_PROXY_DESTINATION_SVC_ADDR": "dst:8086", "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES": "."},
			check: func(c Config) bool { return c.DestinationSuffixes != nil && len(c.DestinationSuffixes) == 0 }},
		{name: "bad fail-fast", env: map[string]string{"WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT": "soon"}, wantErr: "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT"},
		{name: "bad destination", env: map[string]string{"WEFT_PROXY_DESTINATION_SVC_ADDR": "nohostport"}, wantErr: "WEFT_PROXY_DESTINATION_SVC_ADDR"},
		{name: "bad destination name", env: map[string]string{"WEFT_PROXY_IDENTITY_SVC_ADDR": "id:8080", "WEFT_PROXY_IDENTITY_TRUST_ANCHORS": pem,
			"WEFT_PROXY_IDENTITY_LOCAL_NAME": "spiffe://cluster.local/ns/a/sa/b", "WEFT_PROXY_DESTINATION_SVC_ADDR": "dst:8086", "WEFT_PROXY_DESTINATION_SVC_NAME": "dst"},
			wantErr: "WEFT_PROXY_DESTINATION_SVC_NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestAppProbesAndPodIP(t *testing.T) {
	env := map[string]string{"WEFT_PROXY_APP_PROBES": "8080:/healthz,7002:/ready", "WEFT_PROXY_POD_IP": "198.18.0.7"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AppProbes) != 2 || c.AppProbes[0].Port != 8080 || c.PodIP.String() != "198.18.0.7" {
		t.Fatalf("probes %v pod IP %v", c.AppProbes, c.PodIP)
	}
	env["WEFT_PROXY_APP_PROBES"] = "healthz"
	if _, err := FromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "WEFT_PROXY_APP_PROBES") {
		t.Fatalf("bad probes: %v", err)
	}
}
