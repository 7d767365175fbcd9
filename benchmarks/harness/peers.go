package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Side is where a proxy of a pair runs.
type Side string

// Sides: the client pod's outbound proxy and the server pod's inbound proxy.
const (
	ClientSide Side = "client"
	ServerSide Side = "server"
)

// Listen ports, as weft uses them: the client-side proxy gets the application's redirected
// outbound connections on 4140, the server-side one the redirected inbound ones on 4143.
const (
	OutboundPort = 4140
	InboundPort  = 4143
	ProxyUID     = 2102
)

// ProxySpec says what one proxy of a pair must do.
type ProxySpec struct {
	Kind     Kind
	Side     Side
	Listen   string // host:port to listen on
	Upstream string // host:port to forward to
	Dir      string // scratch directory owned by ProxyUID
	Self     string // path of the weft-bench binary
	WeftBin  string // path of bin/weft-proxy
	// Mesh is set for peers with Mesh: the identity service and the server's identity; nil
	// otherwise.
	Mesh *MeshSpec
}

// Peer builds the command of one proxy; the command is started inside the pod's netns as
// ProxyUID.
type Peer struct {
	Name string
	// Command returns the program and arguments plus extra environment.
	Command func(s ProxySpec) (args []string, env []string, err error)
	// Mesh peers need the harness's identity service (ProxySpec.Mesh), are waited on until their
	// /ready answers 200, and have their mTLS handshakes counted; false for every other peer.
	Mesh bool
}

// Peers known to the harness, in report order. "direct" has no proxies.
var Peers = []Peer{
	{Name: "direct"},
	{Name: "weft", Command: weftCommand},
	{Name: "weft-mtls", Command: weftMTLSCommand, Mesh: true},
	{Name: "nginx", Command: nginxCommand},
	{Name: "haproxy", Command: haproxyCommand},
	{Name: "go-reverseproxy", Command: goProxyCommand},
}

func weftCommand(s ProxySpec) ([]string, []string, error) {
	if _, err := os.Stat(s.WeftBin); err != nil {
		return nil, nil, fmt.Errorf("weft-proxy binary: %w", err)
	}
	// Pass-through mode: no discovery configured, every connection goes to its original
	// destination. Both listeners run in each pod, as in a mesh.
	env := []string{"GOMAXPROCS=1"}
	return []string{s.WeftBin}, env, nil
}

func goProxyCommand(s ProxySpec) ([]string, []string, error) {
	return []string{s.Self, "goproxy", "-kind", string(s.Kind), "-listen", s.Listen, "-upstream", s.Upstream}, []string{"GOMAXPROCS=1"}, nil
}

func nginxCommand(s ProxySpec) ([]string, []string, error) {
	var b strings.Builder
	if s.Kind == KindTCP { // load_module must come first
		b.WriteString("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n")
	}
	fmt.Fprintf(&b, "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\nevents { worker_connections 4096; }\n", s.Dir, s.Dir)
	var temp strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temp, "  %s_temp_path %s/%s;\n", k, s.Dir, k)
	}
	switch s.Kind {
	case KindTCP:
		fmt.Fprintf(&b, "stream {\n  server { listen %s; proxy_pass %s; }\n}\n", s.Listen, s.Upstream)
	case KindHTTP:
		fmt.Fprintf(&b, "http {\n  access_log off;\n%s  upstream up { server %s; keepalive 256; }\n  server {\n    listen %s;\n    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }\n  }\n}\n",
			temp.String(), s.Upstream, s.Listen)
	case KindGRPC:
		fmt.Fprintf(&b, "http {\n  access_log off;\n%s  upstream up { server %s; keepalive 256; }\n  server {\n    listen %s http2;\n    location / { grpc_pass grpc://up; }\n  }\n}\n",
			temp.String(), s.Upstream, s.Listen)
	}
	conf := filepath.Join(s.Dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, nil, err
	}
	// One process, no master: the measured pid is the one doing the work.
	return []string{"nginx", "-p", s.Dir, "-c", conf, "-e", filepath.Join(s.Dir, "error.log"), "-g", "daemon off; master_process off;"}, nil, nil
}

func haproxyCommand(s ProxySpec) ([]string, []string, error) {
	mode, proto := "http", ""
	switch s.Kind {
	case KindTCP:
		mode = "tcp"
	case KindGRPC:
		proto = " proto h2"
	}
	conf := fmt.Sprintf(`global
  nbthread 1
  maxconn 4000
defaults
  mode %s
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend f
  bind %s%s
  default_backend b
backend b
  server s %s%s
`, mode, s.Listen, proto, s.Upstream, proto)
	if mode == "tcp" {
		conf = strings.Replace(strings.Replace(conf, "  option http-keep-alive\n", "", 1), "  http-reuse always\n", "", 1)
	}
	path := filepath.Join(s.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, nil, err
	}
	return []string{"haproxy", "-db", "-f", path}, nil, nil
}

// asProxyUID wraps args to run as ProxyUID with no supplementary groups.
func asProxyUID(args []string) []string {
	id := strconv.Itoa(ProxyUID)
	return append([]string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups", "--"}, args...)
}

// procCPU returns utime+stime of pid in clock ticks and its VmHWM in KiB.
func procCPU(pid int) (ticks int64, hwmKiB int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the ")" that ends comm: state is field 3, utime 14, stime 15.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, l := range strings.Split(string(s), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				hwmKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
	}
	return ut + st, hwmKiB, nil
}

// clockTick is USER_HZ, 100 on Linux.
const clockTick = 100
