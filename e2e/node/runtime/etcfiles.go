package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// hostname is the pod's hostname: spec.hostname or the pod name, at most 63 characters.
func (s *Sandbox) hostname() string {
	h := s.pod.Spec.Hostname
	if h == "" {
		h = s.pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func (s *Sandbox) resolvPath() string { return filepath.Join(s.dir, "etc", "resolv.conf") }
func (s *Sandbox) hostsPath() string  { return filepath.Join(s.dir, "etc", "hosts") }
func (s *Sandbox) hostnamePath() string {
	return filepath.Join(s.dir, "etc", "hostname")
}

// usesClusterDNS tells whether the pod's resolv.conf points at the cluster DNS
// (dnsPolicy ClusterFirst without hostNetwork, or ClusterFirstWithHostNet).
func (s *Sandbox) usesClusterDNS() bool {
	switch s.pod.Spec.DNSPolicy {
	case corev1.DNSClusterFirstWithHostNet:
		return true
	case corev1.DNSClusterFirst, "":
		return !s.hostNet
	}
	return false
}

// writeEtcFiles generates the pod's /etc/resolv.conf, /etc/hosts and /etc/hostname.
func (s *Sandbox) writeEtcFiles() error {
	ns := s.pod.Namespace
	d := s.rt.cfg.ClusterDomain
	var servers, searches, options []string
	switch {
	case s.usesClusterDNS():
		servers = []string{s.rt.cfg.ClusterDNS.String()}
		searches = []string{ns + ".svc." + d, "svc." + d, d}
		options = []string{"ndots:5"}
	case s.pod.Spec.DNSPolicy == corev1.DNSNone:
	default: // Default, or ClusterFirst with hostNetwork: the host's resolver configuration
		servers, searches, options = parseResolvConf("/etc/resolv.conf")
	}
	if c := s.pod.Spec.DNSConfig; c != nil {
		servers = append(servers, c.Nameservers...)
		searches = append(searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			options = mergeOption(options, o.Name, opt)
		}
	}
	var b strings.Builder
	for _, sv := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", sv)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	if err := os.WriteFile(s.resolvPath(), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}

	b.Reset()
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	h := s.hostname()
	names := h
	if sd := s.pod.Spec.Subdomain; sd != "" {
		names = fmt.Sprintf("%s.%s.%s.svc.%s\t%s", h, sd, ns, d, h)
	}
	for _, ip := range s.ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, names)
	}
	if len(s.pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, ha := range s.pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
		}
	}
	if err := os.WriteFile(s.hostsPath(), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	if err := os.WriteFile(s.hostnamePath(), []byte(h+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}
	return nil
}

func mergeOption(opts []string, name, opt string) []string {
	for i, o := range opts {
		if o == name || strings.HasPrefix(o, name+":") {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

// parseResolvConf reads nameservers, search domains and options of a resolv.conf.
func parseResolvConf(path string) (servers, searches, options []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			searches = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	return servers, searches, options
}
