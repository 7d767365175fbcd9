package cluster

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Component names; also the base names of log files (<name>.log) and pid files (<name>.pid).
const (
	etcdName      = "etcd"
	apiserverComp = "kube-apiserver"
	kcmComp       = "kube-controller-manager"
	nodeComp      = "weft-node"
)

// etcdBinary is Debian's etcd-server.
const etcdBinary = "/usr/bin/etcd"

// component is one process of the cluster.
type component struct {
	name   string   // etcdName, apiserverComp, kcmComp or nodeComp
	binary string   // absolute path
	args   []string // flags
}

// components returns the processes in start order (etcd first, node agent last).
func components(p paths) []component {
	return []component{
		{name: etcdName, binary: etcdBinary, args: etcdArgs(p)},
		{name: apiserverComp, binary: filepath.Join(p.kube, apiserverComp), args: apiserverArgs(p)},
		{name: kcmComp, binary: filepath.Join(p.kube, kcmComp), args: kcmArgs(p)},
		{name: nodeComp, binary: filepath.Join(p.bin, nodeComp), args: nodeArgs(p)},
	}
}

func etcdArgs(p paths) []string {
	client := fmt.Sprintf("http://127.0.0.1:%d", EtcdClientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", EtcdPeerPort)
	return []string{
		"--name=weft",
		"--data-dir=" + p.etcd,
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=weft=" + peer,
		"--initial-cluster-state=new",
		"--snapshot-count=10000",
		"--log-level=warn",
		"--logger=zap",
	}
}

func apiserverArgs(p paths) []string {
	pki := func(f string) string { return filepath.Join(p.pki, f) }
	return []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", EtcdClientPort),
		"--bind-address=0.0.0.0",
		fmt.Sprintf("--secure-port=%d", APIServerPort),
		"--advertise-address=" + AdvertiseAddr,
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--client-ca-file=" + pki(caName+".crt"),
		"--tls-cert-file=" + pki(apiserverName+".crt"),
		"--tls-private-key-file=" + pki(apiserverName+".key"),
		"--kubelet-client-certificate=" + pki(kubeletClientName+".crt"),
		"--kubelet-client-key=" + pki(kubeletClientName+".key"),
		"--kubelet-certificate-authority=" + pki(caName+".crt"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-key-file=" + pki(saKeyName+".pub"),
		"--service-account-signing-key-file=" + pki(saKeyName+".key"),
		"--service-account-issuer=" + Issuer,
		// Only the issuer: tokens for other audiences (identity.weft.io) must not
		// authenticate to the apiserver; TokenReview checks them against its own audiences.
		"--api-audiences=" + Issuer,
		"--enable-aggregator-routing=true",
		"--requestheader-client-ca-file=" + pki(frontProxyCAName+".crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki(frontProxyName+".crt"),
		"--proxy-client-key-file=" + pki(frontProxyName+".key"),
		"--profiling=false",
	}
}

func kcmArgs(p paths) []string {
	pki := func(f string) string { return filepath.Join(p.pki, f) }
	kc := p.kcmKubeconfig()
	return []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--service-account-private-key-file=" + pki(saKeyName+".key"),
		"--root-ca-file=" + pki(caName+".crt"),
		"--use-service-account-credentials=true",
		"--controllers=*",
		"--leader-elect=false",
		"--cluster-signing-cert-file=" + pki(caName+".crt"),
		"--cluster-signing-key-file=" + pki(caName+".key"),
		"--allocate-node-cidrs=false",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", KCMPort),
		"--tls-cert-file=" + pki(kcmServingName+".crt"),
		"--tls-private-key-file=" + pki(kcmServingName+".key"),
		"--profiling=false",
	}
}

// nodeArgs are exactly the flags of the node agent contract (docs/local-cluster.md), with absolute paths.
func nodeArgs(p paths) []string {
	pki := func(f string) string { return filepath.Join(p.pki, f) }
	return []string{
		"--kubeconfig", p.kubeconfig(),
		"--node-name", NodeName,
		"--state-dir", p.node,
		"--bin-dir", p.bin,
		"--bridge", Bridge,
		"--pod-cidr", PodCIDR,
		"--service-cidr", ServiceCIDR,
		"--cluster-dns", ClusterDNS,
		"--cluster-domain", ClusterDomain,
		"--kubelet-cert", pki(kubeletName + ".crt"),
		"--kubelet-key", pki(kubeletName + ".key"),
		"--client-ca", pki(caName + ".crt"),
	}
}

// commandLine renders a component's command for logs and errors.
func (c component) commandLine() string {
	return c.binary + " " + strings.Join(c.args, " ")
}
