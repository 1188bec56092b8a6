package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// serveEvents streams the caller's events as server-sent events:
//
//	event: <type>
//	data: <json>
//
// with a comment line every heartbeat interval. The stream ends when the
// client goes away or the backend closes the subscription. The response
// headers are sent once the subscription is in place, so an event published
// after a client has its 200 is delivered.
func serveEvents(c *call) error {
	rc := http.NewResponseController(c.w)
	events, cancel := c.h.b.Subscribe(c.p.Agent)
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

	hb := c.h.cfg.heartbeat
	if hb <= 0 {
		hb = DefaultHeartbeat
	}
	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	ctx := c.ctx()
	var buf bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			buf.Reset()
			if err := encodeEvent(&buf, ev); err != nil {
				c.h.cfg.logger.Error("api: encode event", "type", ev.Type, "err", err)
				continue
			}
			if _, err := c.w.Write(buf.Bytes()); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
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
