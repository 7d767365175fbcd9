package healthcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
)

// ProxyAdminPort is the proxy's admin port (/metrics).
const ProxyAdminPort = 4191

// ProxyCertWarn is how close to expiry a proxy certificate warns: proxies
// renew well before, so one this close has stopped renewing.
const ProxyCertWarn = time.Hour

// proxyCertMetric is the proxy's leaf certificate NotAfter (proxy/identity).
const proxyCertMetric = "identity_cert_expiration_timestamp_seconds"

// parseMetrics parses Prometheus text exposition.
func parseMetrics(b []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}

// proxyIssuerMetric labels the SHA-256 of the certificate that issued the
// proxy's current one (proxy/identity).
const proxyIssuerMetric = "weft_identity_cert_issuer_info"

// label returns the value of label name on the first sample of family fam.
func label(fams map[string]*dto.MetricFamily, fam, name string) (string, bool) {
	f := fams[fam]
	if f == nil || len(f.Metric) == 0 {
		return "", false
	}
	for _, l := range f.Metric[0].Label {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

// gauge returns the value of an unlabelled gauge (or the first sample).
func gauge(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f := fams[name]
	if f == nil || len(f.Metric) == 0 {
		return 0, false
	}
	m := f.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

// podMetrics scrapes a pod's proxy.
func podMetrics(ctx context.Context, e *Env, p *corev1.Pod) (map[string]*dto.MetricFamily, error) {
	b, err := e.AdminGet(ctx, p, ProxyAdminPort, "/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(b)
}

// certProblem returns what is wrong with a proxy's certificate, "" if it
// is valid for more than ProxyCertWarn, and whether it is only a warning.
func certProblem(fams map[string]*dto.MetricFamily, now time.Time, issuerSum string) (string, bool) {
	v, found := gauge(fams, proxyCertMetric)
	if !found || v == 0 {
		return "holds no certificate (" + proxyCertMetric + " absent)", false
	}
	exp := time.Unix(int64(v), 0)
	switch {
	case !now.Before(exp):
		return "certificate expired at " + exp.UTC().Format(time.RFC3339), false
	case exp.Sub(now) < ProxyCertWarn:
		return "certificate expires at " + exp.UTC().Format(time.RFC3339) + " and was not renewed", true
	}
	if got, found := label(fams, proxyIssuerMetric, "issuer_sha256"); found && issuerSum != "" && got != issuerSum {
		return "certificate was issued by an earlier issuer (SHA-256 " + short(got) + ", the current one is " + short(issuerSum) +
			"); it is replaced at its next renewal, before " + exp.UTC().Format(time.RFC3339), true
	}
	return "", false
}

// certFinding scrapes pods' proxies and reports their certificates.
func certFinding(ctx context.Context, e *Env, pods []*corev1.Pod, restart string) Finding {
	now := e.Now()
	issuerSum := "" // unknown issuer: identity-issuer reports why
	if ca, err := issuer(ctx, e); err == nil {
		sum := sha256.Sum256(ca.Cert.Raw)
		issuerSum = hex.EncodeToString(sum[:])
	}
	var bad, near []string
	for _, s := range forEach(ctx, pods, func(ctx context.Context, p *corev1.Pod) string {
		fams, err := podMetrics(ctx, e, p)
		if err != nil {
			return "×pod " + p.Namespace + "/" + p.Name + ": " + err.Error()
		}
		if msg, soft := certProblem(fams, now, issuerSum); msg != "" {
			if soft {
				return "‼pod " + p.Namespace + "/" + p.Name + ": " + msg
			}
			return "×pod " + p.Namespace + "/" + p.Name + ": " + msg
		}
		return ""
	}) {
		if s[:len("×")] == "×" {
			bad = append(bad, s[len("×"):])
		} else {
			near = append(near, s[len("‼"):])
		}
	}
	hint := "check identity (`weft check`) and the proxy's log, then restart the pods: `" + restart + " <name>`"
	switch {
	case len(bad) > 0:
		return fail(list(bad), hint)
	case len(near) > 0:
		return warn(list(near), hint)
	}
	return ok("")
}

// short abbreviates a hex digest for messages.
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
