package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/record"
)

// mesh is the proxy's identity: the SVID source (the identity Manager, or a
// SPIFFE Workload API source that arrives once connected), the mTLS dialer
// for meshed endpoints and the terminator of the inbound listener.
type mesh struct {
	log    *slog.Logger
	mgr    *identity.Manager // nil with the Workload API
	wlAddr string
	wl     atomic.Pointer[workloadapi.X509Source]
	wlErr  atomic.Pointer[string]

	dialer *mtls.Dialer
	term   *mtls.Terminator
}

func newMesh(cfg *config.Config, peerPort uint16, log *slog.Logger) (*mesh, error) {
	m := &mesh{log: log}
	idc := *cfg.Identity
	if idc.WorkloadAPIAddr != "" {
		m.wlAddr = idc.WorkloadAPIAddr
	} else {
		idc.Logger = log
		mgr, err := identity.New(idc)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		m.mgr = mgr
	}
	m.dialer = &mtls.Dialer{SVIDs: m, Bundle: m, ConnectTimeout: cfg.ConnectTimeout, InboundPort: peerPort}
	m.term = &mtls.Terminator{SVIDs: m, Bundle: m}
	return m, nil
}

// start runs the SVID source until ctx ends.
func (m *mesh) start(ctx context.Context) {
	if m.mgr != nil {
		m.mgr.Start(ctx)
		return
	}
	go func() {
		for backoff := 500 * time.Millisecond; ; backoff = min(2*backoff, 30*time.Second) {
			src, err := identity.NewWorkloadSource(ctx, m.wlAddr)
			if err == nil {
				m.wl.Store(src)
				context.AfterFunc(ctx, func() { src.Close() })
				return
			}
			msg := err.Error()
			m.wlErr.Store(&msg)
			m.log.Warn("identity: workload API", "err", err, "retry_in", backoff.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}()
}

// GetX509SVID implements x509svid.Source.
func (m *mesh) GetX509SVID() (*x509svid.SVID, error) {
	if m.mgr != nil {
		return m.mgr.GetX509SVID()
	}
	if s := m.wl.Load(); s != nil {
		return s.GetX509SVID()
	}
	return nil, identity.ErrNotReady
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (m *mesh) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if m.mgr != nil {
		return m.mgr.GetX509BundleForTrustDomain(td)
	}
	if s := m.wl.Load(); s != nil {
		return s.GetX509BundleForTrustDomain(td)
	}
	return nil, identity.ErrNotReady
}

// notReady is why the proxy cannot serve meshed traffic yet ("" once it
// holds a certificate; like Linkerd, readiness waits for the first one).
func (m *mesh) notReady() string {
	if m.mgr != nil {
		select {
		case <-m.mgr.Ready():
			return ""
		default:
		}
		s := m.mgr.Snapshot()
		if s.LastError != "" {
			return "no certificate yet: " + s.LastError
		}
		return "no certificate yet"
	}
	if m.wl.Load() != nil {
		return ""
	}
	if p := m.wlErr.Load(); p != nil {
		return "workload API: " + *p
	}
	return "waiting for the workload API"
}

// families renders the identity and handshake metrics at scrape time.
func (m *mesh) families() []metrics.Family {
	var fs []metrics.Family
	if m.mgr != nil {
		s := m.mgr.Snapshot()
		exp := 0.0
		if !s.Expiry.IsZero() {
			exp = float64(s.Expiry.Unix())
		}
		fs = append(fs,
			metrics.Family{Name: "identity_cert_expiration_timestamp_seconds", Type: "gauge",
				Help:    "Time when this proxy's current certificate expires (seconds since the Unix epoch).",
				Samples: []metrics.Sample{{Value: exp}}},
			metrics.Family{Name: "weft_identity_cert_issuer_info", Type: "gauge",
				Help:    "1, labelled with the SHA-256 of the certificate that issued this proxy's current one.",
				Samples: []metrics.Sample{{Labels: `issuer_sha256="` + s.IssuerSHA256 + `"`, Value: 1}}},
			metrics.Family{Name: "identity_cert_refresh_total", Type: "counter",
				Help:    "Total count of certificates obtained from the identity service.",
				Samples: []metrics.Sample{{Value: float64(s.Refreshes)}}},
			metrics.Family{Name: "identity_cert_refresh_failures_total", Type: "counter",
				Help:    "Total count of failed certificate requests.",
				Samples: []metrics.Sample{{Value: float64(s.Failures)}}},
		)
	}
	hs := metrics.Family{Name: "weft_tls_handshakes_total", Type: "counter",
		Help: "Total count of completed mTLS handshakes between proxies, by direction and session resumption."}
	fails := metrics.Family{Name: "weft_tls_handshake_failures_total", Type: "counter",
		Help: "Total count of failed mTLS handshakes between proxies, by direction and reason."}
	plain := metrics.Family{Name: "weft_tls_plaintext_dials_total", Type: "counter",
		Help: "Total count of outbound connections dialed in plaintext (endpoints without an identity)."}
	for _, st := range []struct {
		dir record.Direction
		s   mtls.Stats
	}{{record.Outbound, m.dialer.Stats()}, {record.Inbound, m.term.Stats()}} {
		d := `direction="` + st.dir.String() + `"`
		hs.Samples = append(hs.Samples,
			metrics.Sample{Labels: d + `,resumed="false"`, Value: float64(st.s.Handshakes - st.s.Resumed)},
			metrics.Sample{Labels: d + `,resumed="true"`, Value: float64(st.s.Resumed)})
		for _, reason := range sortedKeys(st.s.Failures) {
			fails.Samples = append(fails.Samples, metrics.Sample{Labels: d + `,reason=` + strconv.Quote(reason), Value: float64(st.s.Failures[reason])})
		}
		if st.dir == record.Outbound {
			plain.Samples = append(plain.Samples, metrics.Sample{Value: float64(st.s.Plain)})
		}
	}
	return append(fs, hs, fails, plain)
}

func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
