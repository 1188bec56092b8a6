package p2p

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a frame is refused, as the "reason" label of
// asp_p2p_frames_refused_total.
const (
	RefusedOversize  = "oversize"
	RefusedMalformed = "malformed"
)

type metrics struct {
	refused       *prometheus.CounterVec // protocol, reason
	handlerErrors *prometheus.CounterVec // protocol
	idleResets    *prometheus.CounterVec // protocol
	stalled       *prometheus.CounterVec // protocol
	streamRefused *prometheus.CounterVec // protocol, reason
	evicted       *prometheus.CounterVec // protocol
	cooledOff     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "p2p", Name: "frames_refused_total",
			Help: "Frames refused from peers (the stream was reset and no handler ran), by protocol and reason (oversize, malformed).",
		}, []string{"protocol", "reason"}),
		handlerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "p2p", Name: "handler_errors_total",
			Help: "Requests whose handler returned an error, sent back to the peer as a remote error, by protocol.",
		}, []string{"protocol"}),
		idleResets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "p2p", Name: "idle_resets_total",
			Help: "Served streams reset because no complete frame arrived within the idle timeout, by protocol.",
		}, []string{"protocol"}),
		stalled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "p2p", Name: "frames_stalled_total",
			Help: "Served streams reset because a frame, once started, did not arrive at the minimum rate, by protocol.",
		}, []string{"protocol"}),
		streamRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "p2p", Name: "streams_refused_total",
			Help: "Inbound streams reset unread because the peer (reason peer) or all peers without live business together (reason shared) held their share of the protocol's streams, by protocol and reason.",
		}, []string{"protocol", "reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "p2p", Name: "streams_evicted_total",
			Help: "Inbound streams of peers without live business reset, while not being served, to make room for another such peer's new stream when their shared budget was full, by protocol.",
		}, []string{"protocol"}),
	}
	cooled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "asp", Subsystem: "p2p", Name: "peers_cooled_off_total",
		Help: "Peers disconnected and refused for a while for stalled, oversized or malformed frames.",
	}, nil)
	m.cooledOff = cooled.WithLabelValues()
	if reg == nil {
		return m, nil
	}
	var err error
	m.refused, err = register(reg, m.refused)
	if err != nil {
		return nil, err
	}
	m.handlerErrors, err = register(reg, m.handlerErrors)
	if err != nil {
		return nil, err
	}
	m.idleResets, err = register(reg, m.idleResets)
	if err != nil {
		return nil, err
	}
	m.stalled, err = register(reg, m.stalled)
	if err != nil {
		return nil, err
	}
	m.streamRefused, err = register(reg, m.streamRefused)
	if err != nil {
		return nil, err
	}
	m.evicted, err = register(reg, m.evicted)
	if err != nil {
		return nil, err
	}
	if cooled, err = register(reg, cooled); err != nil {
		return nil, err
	}
	m.cooledOff = cooled.WithLabelValues()
	return m, nil
}

// register registers c on reg, or returns the collector already registered
// there under the same name (several hosts in one process share it).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return c, nil
}
