package dns

import (
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// ttl is the TTL in seconds of every answer, and the negative-caching TTL of the SOA.
const ttl = 5

// ednsSize is the UDP payload size we advertise in our OPT record (the DNS flag day 2020 value).
const ednsSize = 1232

// version is answered for TXT dns-version.<zone>, as the Kubernetes DNS specification asks.
const version = "1.1.0"

// ServeDNS answers one query. It implements miekg/dns.Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	m := s.answer(r)
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	fit(m, r, udp)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write dns response", "err", err)
	}
}

// answer builds the response to r without regard to its size.
func (s *Server) answer(r *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch {
	case r.Opcode != mdns.OpcodeQuery:
		return refuse(m, mdns.RcodeNotImplemented)
	case len(r.Question) != 1:
		return refuse(m, mdns.RcodeFormatError)
	}
	q := r.Question[0]
	name := mdns.CanonicalName(q.Name)
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY || q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR {
		return refuse(m, mdns.RcodeRefused)
	}
	cn, inZone := parseClusterName(name, s.zone)
	if !inZone && !isReverseZone(name) {
		// Never forward: there is no upstream network.
		return refuse(m, mdns.RcodeRefused)
	}
	if !s.synced() {
		return refuse(m, mdns.RcodeServerFailure)
	}
	var res result
	soaZone := s.zone
	if inZone {
		res = s.lookup(cn, q)
	} else {
		res = s.lookupReverse(name, q)
		soaZone = "in-addr.arpa."
		if mdns.IsSubDomain("ip6.arpa.", name) {
			soaZone = "ip6.arpa."
		}
	}
	m.Answer, m.Extra = res.answer, res.extra
	if !res.exists {
		m.Rcode = mdns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []mdns.RR{s.soa(soaZone)}
	}
	return m
}

func refuse(m *mdns.Msg, rcode int) *mdns.Msg {
	m.Authoritative = false
	m.Rcode = rcode
	return m
}

// fit sizes m for the transport: UDP answers larger than the client's buffer (512 bytes, or its
// EDNS0 size) are truncated with TC set so the client retries over TCP.
func fit(m, r *mdns.Msg, udp bool) {
	size := mdns.MaxMsgSize
	if udp {
		size = mdns.MinMsgSize
	}
	if opt := r.IsEdns0(); opt != nil {
		if udp {
			size = max(int(opt.UDPSize()), mdns.MinMsgSize)
		}
		m.SetEdns0(ednsSize, false)
	}
	m.Truncate(size)
}

// result is what a lookup found: exists is false for names that do not exist (NXDOMAIN).
type result struct {
	exists        bool
	answer, extra []mdns.RR
}

var nxdomain = result{}

// lookup answers q for a name in the cluster zone.
func (s *Server) lookup(cn clusterName, q mdns.Question) result {
	res := result{exists: true}
	switch cn.kind {
	case kindApex:
		if want(q.Qtype, mdns.TypeSOA) {
			res.answer = append(res.answer, s.soa(s.zone))
		}
		if want(q.Qtype, mdns.TypeNS) {
			res.answer = append(res.answer, &mdns.NS{Hdr: hdr(q.Name, mdns.TypeNS), Ns: "ns.dns." + s.zone})
		}
	case kindVersion:
		if want(q.Qtype, mdns.TypeTXT) {
			res.answer = append(res.answer, &mdns.TXT{Hdr: hdr(q.Name, mdns.TypeTXT), Txt: []string{version}})
		}
	case kindSvcRoot, kindPodRoot:
	case kindNamespace:
		res.exists = s.index.namespaceHasServices(cn.namespace)
	case kindPod:
		res.answer = addrRRs(q, []netip.Addr{cn.podIP})
	case kindService, kindEndpoint, kindPort:
		return s.lookupService(cn, q)
	default:
		return nxdomain
	}
	return res
}

// lookupService answers names under <svc>.<ns>.svc.<zone>.
func (s *Server) lookupService(cn clusterName, q mdns.Question) result {
	svc, ok := s.index.service(cn.namespace, cn.service)
	if !ok {
		return nxdomain
	}
	svcName := svc.Name + "." + svc.Namespace + ".svc." + s.zone
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if cn.kind != kindService {
			return nxdomain
		}
		target := mdns.Fqdn(strings.ToLower(svc.Spec.ExternalName))
		return result{exists: true, answer: []mdns.RR{&mdns.CNAME{Hdr: hdr(q.Name, mdns.TypeCNAME), Target: target}}}
	}
	cips := clusterIPs(svc)
	eps := s.index.endpoints(svc)
	switch cn.kind {
	case kindEndpoint:
		var addrs []netip.Addr
		for _, e := range eps {
			if e.name() == cn.endpoint {
				addrs = append(addrs, e.addr)
			}
		}
		if len(addrs) == 0 {
			return nxdomain
		}
		return result{exists: true, answer: addrRRs(q, addrs)}
	case kindPort:
		srv := s.srvRecords(q, svc, svcName, cips, eps, cn.port, cn.proto)
		if len(srv.answer) == 0 {
			return nxdomain
		}
		if !want(q.Qtype, mdns.TypeSRV) {
			srv.answer, srv.extra = nil, nil
		}
		return srv
	}
	res := result{exists: true}
	if len(cips) > 0 {
		res.answer = addrRRs(q, cips)
	} else {
		var addrs []netip.Addr
		for _, e := range eps {
			addrs = append(addrs, e.addr)
		}
		res.answer = addrRRs(q, addrs)
	}
	if want(q.Qtype, mdns.TypeSRV) {
		srv := s.srvRecords(q, svc, svcName, cips, eps, "", "")
		res.answer = append(res.answer, srv.answer...)
		res.extra = srv.extra
	}
	return res
}

// srvRecords returns the SRV records of svc for the port named port with protocol proto (both
// empty: every port). A Service with a cluster IP points at itself; a headless one at each
// endpoint's own name.
func (s *Server) srvRecords(q mdns.Question, svc *corev1.Service, svcName string, cips []netip.Addr, eps []endpoint, port, proto string) result {
	type target struct {
		name string
		port int32
		addr []netip.Addr
	}
	var targets []target
	matches := func(name string, p corev1.Protocol) bool {
		return port == "" || strings.EqualFold(name, port) && strings.EqualFold(string(p), proto)
	}
	if len(cips) > 0 {
		for _, p := range svc.Spec.Ports {
			if matches(p.Name, p.Protocol) {
				targets = append(targets, target{svcName, p.Port, cips})
			}
		}
	} else {
		for _, e := range eps {
			for _, p := range e.ports {
				name, pr := "", corev1.ProtocolTCP
				if p.Name != nil {
					name = *p.Name
				}
				if p.Protocol != nil {
					pr = *p.Protocol
				}
				if p.Port != nil && matches(name, pr) {
					targets = append(targets, target{e.name() + "." + svcName, *p.Port, []netip.Addr{e.addr}})
				}
			}
		}
	}
	if len(targets) == 0 {
		return result{}
	}
	weight := uint16(max(100/len(targets), 1))
	res := result{exists: true}
	added := map[string]bool{}
	for _, t := range targets {
		res.answer = append(res.answer, &mdns.SRV{Hdr: hdr(q.Name, mdns.TypeSRV), Priority: 0, Weight: weight, Port: uint16(t.port), Target: t.name})
		if added[t.name] {
			continue
		}
		added[t.name] = true
		res.extra = append(res.extra, addrRRs(mdns.Question{Name: t.name, Qtype: mdns.TypeANY}, t.addr)...)
	}
	return res
}

// lookupReverse answers PTR queries for cluster IPs and endpoint addresses.
func (s *Server) lookupReverse(name string, q mdns.Question) result {
	ip, ok := parseReverseName(name)
	if !ok {
		return nxdomain
	}
	names := s.index.reverse(ip, s.zone)
	if len(names) == 0 {
		return nxdomain
	}
	res := result{exists: true}
	if want(q.Qtype, mdns.TypePTR) {
		for _, n := range names {
			res.answer = append(res.answer, &mdns.PTR{Hdr: hdr(q.Name, mdns.TypePTR), Ptr: n})
		}
	}
	return res
}

// addrRRs returns the A and AAAA records of addrs that q asks for.
func addrRRs(q mdns.Question, addrs []netip.Addr) []mdns.RR {
	var out []mdns.RR
	for _, a := range addrs {
		switch {
		case a.Is4() && want(q.Qtype, mdns.TypeA):
			out = append(out, &mdns.A{Hdr: hdr(q.Name, mdns.TypeA), A: a.AsSlice()})
		case a.Is6() && want(q.Qtype, mdns.TypeAAAA):
			out = append(out, &mdns.AAAA{Hdr: hdr(q.Name, mdns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return out
}

// soa is the SOA record of zone, put in the authority section of negative answers.
func (s *Server) soa(zone string) mdns.RR {
	return &mdns.SOA{
		Hdr:     hdr(zone, mdns.TypeSOA),
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  s.serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  ttl,
	}
}

func hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: ttl}
}

func want(qtype, t uint16) bool { return qtype == t || qtype == mdns.TypeANY }
