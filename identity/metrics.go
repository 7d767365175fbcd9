package identity

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the identity service's Prometheus collectors, registered on the
// service's own registry (never the global one).
type metrics struct {
	issued        prometheus.Counter
	refused       *prometheus.CounterVec
	latency       prometheus.Histogram
	inflight      prometheus.Gauge
	reloads       *prometheus.CounterVec
	issuerExpiry  prometheus.Gauge
	anchorExpiry  prometheus.Gauge
	issuerLoadedT prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_identity_certificates_issued_total", Help: "Certificates issued.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_identity_requests_refused_total", Help: "Certify requests refused, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weft_identity_certify_duration_seconds", Help: "Time to answer a Certify request.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_identity_requests_in_flight", Help: "Certify requests being served.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_identity_issuer_reloads_total", Help: "Issuer and trust-anchor loads, by result.",
		}, []string{"result"}),
		issuerExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_identity_issuer_expiry_timestamp_seconds", Help: "NotAfter of the loaded issuer certificate.",
		}),
		anchorExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_identity_trust_anchor_expiry_timestamp_seconds", Help: "Earliest NotAfter among the loaded trust anchors.",
		}),
		issuerLoadedT: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_identity_issuer_loaded_timestamp_seconds", Help: "When the current issuer was loaded.",
		}),
	}
	for _, reason := range []string{"invalid_token", "invalid_request", "identity_mismatch", "not_ready", "overloaded", "internal"} {
		m.refused.WithLabelValues(reason)
	}
	reg.MustRegister(m.issued, m.refused, m.latency, m.inflight, m.reloads, m.issuerExpiry, m.anchorExpiry, m.issuerLoadedT)
	return m
}
