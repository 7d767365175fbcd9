package cluster

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func testPaths(t *testing.T) paths {
	t.Helper()
	p, err := resolvePaths(Config{CacheDir: "/c", BinDir: "/b"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestComponentFlags(t *testing.T) {
	p := testPaths(t)
	byName := map[string]component{}
	for _, c := range components(p) {
		byName[c.name] = c
	}
	tests := []struct {
		comp   string
		binary string
		want   []string // flags that must be present verbatim
		absent []string // flag prefixes that must not be present
	}{
		{etcdName, "/usr/bin/etcd", []string{
			"--data-dir=/c/cluster/etcd",
			"--listen-client-urls=http://127.0.0.1:2379",
			"--listen-peer-urls=http://127.0.0.1:2380",
			"--initial-cluster=weft=http://127.0.0.1:2380",
		}, nil},
		{apiserverComp, "/c/kube/" + KubeVersion + "/kube-apiserver", []string{
			"--etcd-servers=http://127.0.0.1:2379",
			"--bind-address=0.0.0.0",
			"--secure-port=6443",
			"--advertise-address=198.18.0.1",
			"--service-cluster-ip-range=198.19.0.0/16",
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			"--client-ca-file=/c/cluster/pki/ca.crt",
			"--tls-cert-file=/c/cluster/pki/apiserver.crt",
			"--tls-private-key-file=/c/cluster/pki/apiserver.key",
			"--service-account-key-file=/c/cluster/pki/sa.pub",
			"--service-account-signing-key-file=/c/cluster/pki/sa.key",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--api-audiences=https://kubernetes.default.svc.cluster.local",
			"--enable-aggregator-routing=true",
			"--requestheader-client-ca-file=/c/cluster/pki/front-proxy-ca.crt",
			"--requestheader-allowed-names=front-proxy-client",
			"--proxy-client-cert-file=/c/cluster/pki/front-proxy-client.crt",
			"--proxy-client-key-file=/c/cluster/pki/front-proxy-client.key",
		}, []string{"--token-auth-file", "--insecure", "--disable-admission-plugins", "--anonymous-auth=false"}},
		{kcmComp, "/c/kube/" + KubeVersion + "/kube-controller-manager", []string{
			"--kubeconfig=/c/cluster/kcm.kubeconfig",
			"--service-account-private-key-file=/c/cluster/pki/sa.key",
			"--root-ca-file=/c/cluster/pki/ca.crt",
			"--use-service-account-credentials=true",
			"--controllers=*",
			"--leader-elect=false",
			"--cluster-signing-cert-file=/c/cluster/pki/ca.crt",
			"--cluster-signing-key-file=/c/cluster/pki/ca.key",
			"--allocate-node-cidrs=false",
			"--bind-address=127.0.0.1",
			"--secure-port=10257",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.comp, func(t *testing.T) {
			c, ok := byName[tt.comp]
			if !ok {
				t.Fatalf("no component %s", tt.comp)
			}
			if c.binary != tt.binary {
				t.Errorf("binary %s, want %s", c.binary, tt.binary)
			}
			for _, w := range tt.want {
				if !slices.Contains(c.args, w) {
					t.Errorf("missing %s in %v", w, c.args)
				}
			}
			for _, a := range tt.absent {
				if slices.ContainsFunc(c.args, func(s string) bool { return strings.HasPrefix(s, a) }) {
					t.Errorf("unexpected %s", a)
				}
			}
			seen := map[string]bool{}
			for _, a := range c.args {
				name := strings.SplitN(a, "=", 2)[0]
				if seen[name] {
					t.Errorf("flag %s given twice", name)
				}
				seen[name] = true
			}
		})
	}
}

// The node agent gets exactly the flags of the contract in docs (cluster-api), in order.
func TestNodeAgentFlags(t *testing.T) {
	p := testPaths(t)
	c := components(p)[3]
	want := "/b/weft-node --kubeconfig /c/cluster/kubeconfig --node-name weft-node --state-dir /c/cluster/node --bin-dir /b " +
		"--bridge weft0 --pod-cidr 198.18.0.0/20 --service-cidr 198.19.0.0/16 --cluster-dns 198.19.0.10 --cluster-domain cluster.local" +
		" --kubelet-cert /c/cluster/pki/kubelet.crt --kubelet-key /c/cluster/pki/kubelet.key --client-ca /c/cluster/pki/ca.crt"
	if got := c.commandLine(); got != want {
		t.Errorf("node agent command\n got %s\nwant %s", got, want)
	}
}

func TestComponentOrder(t *testing.T) {
	var names []string
	for _, c := range components(testPaths(t)) {
		names = append(names, c.name)
	}
	want := []string{"etcd", "kube-apiserver", "kube-controller-manager", "weft-node"}
	if !slices.Equal(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
}

func TestResolvePaths(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cfg       Config
		env       map[string]string
		wantCache string
		wantBin   string
	}{
		{"defaults from repo", Config{}, map[string]string{"WEFT_CACHE_DIR": "", "WEFT_BIN_DIR": ""}, filepath.Join(root, ".cache"), filepath.Join(root, "bin")},
		{"environment", Config{}, map[string]string{"WEFT_CACHE_DIR": "/e/cache", "WEFT_BIN_DIR": "/e/bin"}, "/e/cache", "/e/bin"},
		{"config wins", Config{CacheDir: "/x", BinDir: "/y"}, map[string]string{"WEFT_CACHE_DIR": "/e/cache", "WEFT_BIN_DIR": "/e/bin"}, "/x", "/y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p, err := resolvePaths(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if p.cache != tt.wantCache || p.bin != tt.wantBin {
				t.Errorf("cache=%s bin=%s, want %s %s", p.cache, p.bin, tt.wantCache, tt.wantBin)
			}
			if p.kubeconfig() != filepath.Join(tt.wantCache, "cluster", "kubeconfig") {
				t.Errorf("kubeconfig %s", p.kubeconfig())
			}
		})
	}
}

// KubeVersion must be what e2e/scripts/kube-bins.sh builds.
func TestKubeVersionMatchesKubebinModule(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "e2e", "kubebin", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 3 && fields[0] == "require" && fields[1] == "k8s.io/kubernetes" {
			if fields[2] != KubeVersion {
				t.Fatalf("e2e/kubebin requires k8s.io/kubernetes %s, KubeVersion is %s", fields[2], KubeVersion)
			}
			return
		}
	}
	t.Fatal("no 'require k8s.io/kubernetes' line in e2e/kubebin/go.mod")
}
