package destination

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	subscribers *prometheus.GaugeVec
	updates     *prometheus.CounterVec
	lag         prometheus.Histogram
	invalid     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weft_destination_subscribers", Help: "Open discovery streams, by method.",
		}, []string{"method"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_destination_updates_total", Help: "Messages sent on discovery streams, by method.",
		}, []string{"method"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weft_destination_update_lag_seconds",
			Help:    "Time from a published endpoint change to its update being sent on a stream.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_destination_profile_invalid_total", Help: "ServiceProfile versions rejected as invalid.",
		}),
	}
	reg.MustRegister(m.subscribers, m.updates, m.lag, m.invalid)
	return m
}
