package api

// CardQuery is the query of GET /v1/agents/{agentId}/card.
type CardQuery struct {
	// Format "a2a" answers the card as an A2A AgentCard.
	Format string `json:"format,omitempty"`
}

// RecentQuery is the query of GET /v1/events/recent.
type RecentQuery struct {
	// Since returns the events after this event id (default 0: all the
	// node still holds).
	Since uint64 `json:"since,omitempty"`
}

// RecentEvent is one event of GET /v1/events/recent: the id, type and data
// the stream (GET /v1/events) sends.
type RecentEvent struct {
	ID   uint64 `json:"id"`
	Type string `json:"type"`
	Data any    `json:"data"`
}

// RecentEvents is the answer of GET /v1/events/recent.
type RecentEvents struct {
	// Events are the caller's events after Since that the node holds, in
	// order.
	Events []RecentEvent `json:"events"`
	// Newest is the id of the node's newest event: ask again with
	// since=Newest to get only what comes later.
	Newest uint64 `json:"newest"`
	// Gap is set when some of the caller's events after Since are no longer
	// held (or Since is not an id of the node's current run): read sessions
	// and commitments again.
	Gap *GapEvent `json:"gap,omitempty"`
}

// recentEvents answers GET /v1/events/recent: the replay a resumed stream
// would start with, without the stream. It never waits.
func recentEvents(c *call) (any, error) {
	q, _, err := resumePoint(c.r)
	if err != nil {
		return nil, err
	}
	er, ok := c.h.b.(EventReplayer)
	if !ok {
		return RecentEvents{Events: []RecentEvent{}, Gap: &GapEvent{After: q}}, nil
	}
	replay, _, cancel := er.SubscribeSince(c.p.Agent, true, q)
	cancel()
	out := RecentEvents{Events: make([]RecentEvent, 0, len(replay.Events)), Newest: replay.Newest}
	for _, ev := range replay.Events {
		out.Events = append(out.Events, RecentEvent{ID: ev.ID, Type: ev.Type, Data: ev.Data})
	}
	if replay.Gap {
		out.Gap = &GapEvent{After: q, Oldest: replay.Oldest}
	}
	return out, nil
}
