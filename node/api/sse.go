package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveEvents streams the caller's events as server-sent events:
//
//	id: <event id>
//	event: <type>
//	data: <json>
//
// with a comment line every heartbeat interval. The stream ends when the
// client goes away or the backend closes the subscription. The response
// headers are sent once the subscription is in place, so an event published
// after a client has its 200 is delivered.
//
// A client that sends Last-Event-ID (or ?since=) first gets the events it
// missed that the backend still holds, then live ones; when some may be
// lost the stream opens with a "gap" event (GapEvent), without an id.
func serveEvents(c *call) error {
	rc := http.NewResponseController(c.w)
	after, resume, err := resumePoint(c.r)
	if err != nil {
		return err
	}
	// Registered first, before the subscription a caller may wait for: a
	// Shutdown from then on ends the stream.
	shutdown := c.h.streamsEnd(c.ctx())
	var (
		replay Replay
		events <-chan Event
		cancel func()
	)
	if er, ok := c.h.b.(EventReplayer); ok {
		replay, events, cancel = er.SubscribeSince(c.p.Agent, resume, after)
	} else {
		// Without a replaying backend nothing missed can be given back:
		// say so.
		replay.Gap = resume
		events, cancel = c.h.b.Subscribe(c.p.Agent)
	}
	defer cancel()

	// A stream outlives any server write timeout.
	_ = rc.SetWriteDeadline(time.Time{})
	hdr := c.w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Connection", "keep-alive")
	hdr.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	if _, err := c.w.Write([]byte(": subscribed\n\n")); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil {
		return err
	}

	var buf bytes.Buffer
	send := func(ev Event) error {
		buf.Reset()
		if err := encodeEvent(&buf, ev); err != nil {
			c.h.cfg.logger.Error("api: encode event", "type", ev.Type, "err", err)
			return nil
		}
		if _, err := c.w.Write(buf.Bytes()); err != nil {
			return err
		}
		return rc.Flush()
	}
	if replay.Gap {
		if send(Event{Type: EventGap, Data: GapEvent{After: after, Oldest: replay.Oldest}}) != nil {
			return nil
		}
	}
	last := after
	if replay.Gap {
		last = 0 // the id may be from another run of the node
	}
	for _, ev := range replay.Events {
		if send(ev) != nil {
			return nil
		}
		last = ev.ID
	}
	if replay.Newest > last {
		// The client's position: an id without an event moves it past the
		// events of other agents, and past none of the caller's.
		if _, err := fmt.Fprintf(c.w, "id: %d\n\n", replay.Newest); err != nil {
			return nil
		}
		if rc.Flush() != nil {
			return nil
		}
		last = replay.Newest
	}

	hb := c.h.cfg.heartbeat
	if hb <= 0 {
		hb = DefaultHeartbeat
	}
	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	ctx := c.ctx()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-shutdown:
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.ID != 0 && ev.ID <= last {
				continue // replayed already
			}
			if send(ev) != nil {
				return nil
			}
		case <-ticker.C:
			if _, err := c.w.Write([]byte(": heartbeat\n\n")); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
}

// encodeEvent writes one event in the text/event-stream format. JSON from
// json.Marshal holds no raw newline, so data is one line.
func encodeEvent(buf *bytes.Buffer, ev Event) error {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return err
	}
	if ev.ID != 0 {
		buf.WriteString("id: ")
		buf.WriteString(strconv.FormatUint(ev.ID, 10))
		buf.WriteByte('\n')
	}
	typ := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, ev.Type)
	if typ != "" {
		buf.WriteString("event: ")
		buf.WriteString(typ)
		buf.WriteByte('\n')
	}
	buf.WriteString("data: ")
	buf.Write(data)
	buf.WriteString("\n\n")
	return nil
}

// resumePoint reads the event id a client resumes after: the Last-Event-ID
// header, else the since query parameter. resume is false when neither is
// sent (an empty header is a fresh start, as EventSource sends before any
// event had an id).
func resumePoint(r *http.Request) (after uint64, resume bool, err error) {
	if h := strings.TrimSpace(r.Header.Get("Last-Event-ID")); h != "" {
		v, err := strconv.ParseUint(h, 10, 64)
		if err != nil {
			return 0, false, BadRequest("Last-Event-ID must be an event id (a non-negative integer)")
		}
		return v, true, nil
	}
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, false, BadRequest("since must be an event id (a non-negative integer)")
		}
		return v, true, nil
	}
	return 0, false, nil
}

// streamsEnd returns a channel closed when the server serving the request
// shuts down, so that event streams end then instead of holding
// Server.Shutdown until its deadline (it waits for handlers to return);
// the clients resume elsewhere or later. Without a server in the context
// (a test's ResponseRecorder) it returns nil: never closed.
func (h *handler) streamsEnd(ctx context.Context) <-chan struct{} {
	srv, _ := ctx.Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	if ch, ok := h.shutdowns.Load(srv); ok {
		return ch.(chan struct{})
	}
	ch := make(chan struct{})
	if prev, loaded := h.shutdowns.LoadOrStore(srv, ch); loaded {
		return prev.(chan struct{})
	}
	srv.RegisterOnShutdown(func() {
		close(ch)
		h.shutdowns.Delete(srv)
	})
	return ch
}
