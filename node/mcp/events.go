package mcp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxWait bounds how long read_events waits for an event.
const maxWait = 60 * time.Second

// eventsOut is the answer of read_events.
type eventsOut struct {
	Events []api.RecentEvent `json:"events"`
	// Newest is the id to pass as after next time.
	Newest string `json:"newest"`
	// Gap says some events after the id asked for are no longer held:
	// read sessions and commitments again.
	Gap string `json:"gap,omitempty"`
}

// readEvents answers read_events: the events the node holds after the id
// (GET /v1/events/recent); when there is none and the model asked to wait,
// the first event of a stream resumed from the node's newest id.
func (t *tools) readEvents(ctx context.Context, _ *mcp.CallToolRequest, in eventsIn) (*mcp.CallToolResult, any, error) {
	var after uint64
	if s := strings.TrimSpace(in.After); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("after must be an event id (the newest of a previous answer), not %q", in.After)
		}
		after = v
	}
	if in.WaitSeconds < 0 || time.Duration(in.WaitSeconds)*time.Second > maxWait {
		return nil, nil, fmt.Errorf("wait_seconds must be between 0 and %d", int(maxWait/time.Second))
	}
	r, err := t.c.RecentEvents(ctx, after)
	if err != nil {
		return nil, nil, toolError(err, "")
	}
	out := eventsOut{Events: r.Events, Newest: strconv.FormatUint(max(r.Newest, after), 10)}
	if r.Gap != nil {
		out.Gap = fmt.Sprintf("events after %d and before %d may be lost: read your sessions and commitments again", r.Gap.After, r.Gap.Oldest)
	}
	if len(out.Events) > 0 || in.WaitSeconds == 0 {
		return jsonResult(out)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(in.WaitSeconds)*time.Second)
	defer cancel()
	st := t.c.Events(wctx, client.EventsOptions{LastEventID: strconv.FormatUint(r.Newest, 10)})
	defer st.Close()
	for {
		ev, err := st.Next()
		if err != nil {
			// Waited long enough (or the stream ended): nothing new.
			return jsonResult(out)
		}
		if ev.Type == api.EventGap || ev.ID == "" {
			continue
		}
		// What arrived, and anything published with it.
		id, _ := strconv.ParseUint(ev.ID, 10, 64)
		r, err := t.c.RecentEvents(ctx, id-1)
		if err != nil {
			return nil, nil, toolError(err, "")
		}
		out.Events = r.Events
		out.Newest = strconv.FormatUint(max(r.Newest, id), 10)
		return jsonResult(out)
	}
}
