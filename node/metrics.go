package node

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messagesSent     prometheus.Counter
	messagesReceived prometheus.Counter
	refusedIncoming  *prometheus.CounterVec // wire input refused, by code
	refusedOutgoing  *prometheus.CounterVec // our moves refused by the counterparty, by code
	commitments      *prometheus.CounterVec // commitments by state reached
	resends          prometheus.Counter
	eventsDropped    prometheus.Counter
	moveSeconds      prometheus.Histogram
	reconciliations  prometheus.Counter     // sessions whose transcripts were compared with the counterparty's
	sessionsEnded    prometheus.Counter     // sessions ended because the transcripts could not converge
	sessionsRefused  *prometheus.CounterVec // invitations refused for a bound on open inbound sessions, by bound
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asp_messages_sent_total", Help: "Session messages sent and acknowledged by the counterparty."}),
		messagesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asp_messages_received_total", Help: "Session messages received and recorded."}),
		refusedIncoming: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asp_wire_refused_total", Help: "Requests from other nodes refused, by error code."}, []string{"code"}),
		refusedOutgoing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asp_moves_refused_by_peer_total", Help: "Our moves refused by the counterparty, by error code."}, []string{"code"}),
		commitments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asp_commitments_total", Help: "Commitments reaching each state."}, []string{"state"}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asp_resends_total", Help: "Requests resent to a counterparty that had not acknowledged them."}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asp_events_dropped_total", Help: "Events dropped for slow subscribers."}),
		moveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "asp_move_seconds", Help: "Time from a local move to the counterparty's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		reconciliations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asp_session_reconciliations_total", Help: "Sessions whose transcript was compared with the counterparty's after a replay or conflict."}),
		sessionsEnded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asp_sessions_ended_diverged_total", Help: "Sessions ended FAILED because the two transcripts could not converge."}),
		sessionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asp_sessions_refused_total", Help: "Invitations refused as capacity_unavailable because a bound on open inbound sessions was reached, by bound (org, node)."}, []string{"reason"}),
	}
	reg.MustRegister(m.sessionsRefused, m.messagesSent, m.messagesReceived, m.refusedIncoming, m.refusedOutgoing,
		m.commitments, m.resends, m.eventsDropped, m.moveSeconds, m.reconciliations, m.sessionsEnded)
	return m
}
