package attest

import (
	"errors"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/prometheus/client_golang/prometheus"
)

// Results of the topic validator, as the "result" label of
// asp_attest_validations_total.
const (
	ResultAccept = "accept"
	ResultReject = "reject"
	ResultIgnore = "ignore"
)

// metrics are a Service's counters:
//
//	asp_attest_validations_total{result,reason}  accept|reject|ignore × ok|malformed|forged|not_party|unreceipted|late_acceptance|mismatch|stale|duplicate|rate_limited
//	asp_attest_published_total                   attestations this node published
//	asp_attest_delivered_total                   verified attestations handed to subscribers (once per subscriber)
//	asp_attest_dropped_total                     deliveries dropped because a subscriber's buffer was full
type metrics struct {
	validations *prometheus.CounterVec
	published   prometheus.Counter
	delivered   prometheus.Counter
	dropped     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "attest", Name: "validations_total",
			Help: "Messages on the trust topic judged by the validator, by result (accept, reject, ignore) and reason.",
		}, []string{"result", "reason"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "attest", Name: "published_total",
			Help: "Attestations this node published on the trust topic.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "attest", Name: "delivered_total",
			Help: "Verified attestations handed to subscribers, once per subscriber.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "attest", Name: "dropped_total",
			Help: "Verified attestations not handed to a subscriber whose buffer was full.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.validations, err = register(reg, m.validations); err != nil {
		return nil, err
	}
	if m.published, err = register(reg, m.published); err != nil {
		return nil, err
	}
	if m.delivered, err = register(reg, m.delivered); err != nil {
		return nil, err
	}
	if m.dropped, err = register(reg, m.dropped); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the collector of the same name
// already there (several services in one process may share a registerer).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) count(r pubsub.ValidationResult, err error) {
	res := ResultAccept
	switch r {
	case pubsub.ValidationReject:
		res = ResultReject
	case pubsub.ValidationIgnore:
		res = ResultIgnore
	}
	m.validations.WithLabelValues(res, reason(err)).Inc()
}
