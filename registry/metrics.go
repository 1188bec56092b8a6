package registry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics counts what the registry accepts, rejects and answers. One
// Metrics is shared by a node's Validator and Registry.
type Metrics struct {
	rejected    *prometheus.CounterVec
	discoveries *prometheus.CounterVec
	latency     prometheus.Histogram
	published   prometheus.Gauge
}

// NewMetrics creates the registry's metrics and registers them on reg
// (nil: not registered, still counted):
//
//	asp_registry_cards_rejected_total{reason}   forged|expired|oversized|replayed|malformed
//	asp_registry_discoveries_total{outcome}     complete|partial|cached
//	asp_registry_discovery_seconds              histogram of Discover latency
//	asp_registry_local_agents                   cards this node publishes
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "registry", Name: "cards_rejected_total",
			Help: "Agent cards refused, by reason (forged, expired, oversized, replayed, malformed).",
		}, []string{"reason"}),
		discoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "registry", Name: "discoveries_total",
			Help: "Capability discoveries answered, by outcome (complete, partial, cached).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "asp", Subsystem: "registry", Name: "discovery_seconds",
			Help:    "Latency of capability discovery.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		published: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asp", Subsystem: "registry", Name: "local_agents",
			Help: "Agent cards this node publishes.",
		}),
	}
	for _, r := range []string{ReasonForged, ReasonExpired, ReasonOversized, ReasonReplayed, ReasonMalformed} {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rejected, m.discoveries, m.latency, m.published} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registry: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// reject counts err if it is a rejection and returns it.
func (m *Metrics) reject(err error) error {
	if m == nil {
		return err
	}
	if r := RejectReason(err); r != "" {
		m.rejected.WithLabelValues(r).Inc()
	}
	return err
}

// Rejected returns how many cards were refused for reason so far.
func (m *Metrics) Rejected(reason string) float64 {
	if m == nil {
		return 0
	}
	c, err := m.rejected.GetMetricWithLabelValues(reason)
	if err != nil {
		return 0
	}
	return readCounter(c)
}

func readCounter(c prometheus.Counter) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		return 0
	}
	return pb.GetCounter().GetValue()
}
