package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aspnode/asp/node/api"
)

// Event is one server-sent event of an agent.
type Event struct {
	// ID is the node's id of the event (decimal), empty for a gap event.
	ID string
	// Type is "session", "message", "commitment", "trust", "dispute" or
	// "gap" (api.EventGap).
	Type string
	// Data is the event's JSON data.
	Data json.RawMessage
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error { return json.Unmarshal(e.Data, v) }

// Gap returns the data of a gap event: events of the agent after g.After
// and before g.Oldest may be lost; read current state again.
func (e Event) Gap() (g api.GapEvent, ok bool) {
	if e.Type != api.EventGap {
		return g, false
	}
	return g, json.Unmarshal(e.Data, &g) == nil
}

// Message decodes a "message" event: a signed envelope of a session the
// agent is a party to (its own moves and its counterparty's).
func (e Event) Message() (Message, error) {
	var m Message
	if e.Type != "message" {
		return m, fmt.Errorf("event %s is not a message", e.Type)
	}
	return m, json.Unmarshal(e.Data, &m)
}

// EventsOptions tune an event stream. The zero value is fine.
type EventsOptions struct {
	// LastEventID resumes after this event id (an Event.ID of an earlier
	// stream); empty starts with the events published from now on.
	LastEventID string
	// MinBackoff and MaxBackoff bound the wait before a reconnection: it
	// doubles from MinBackoff (default 100 ms) up to MaxBackoff (default
	// 5 s) while attempts fail, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout is how long a connection may stay silent (no event, no
	// heartbeat) before it is dropped and made again. Default 45 s: three
	// of the node's 15 s heartbeats.
	IdleTimeout time.Duration
}

// EventStream is an agent's event stream that resumes by itself. It is
// not safe for concurrent use, except Close.
type EventStream struct {
	c      *Client
	http   *http.Client
	opts   EventsOptions
	ctx    context.Context
	cancel context.CancelFunc

	body     io.ReadCloser
	br       *bufio.Reader
	idle     *time.Timer
	connDone context.CancelFunc

	lastID    string
	failures  int
	connects  int
	closeOnce sync.Once
}

// Events returns the stream of the token's agent's events (GET /v1/events).
// Nothing is sent before the first Next.
func (c *Client) Events(ctx context.Context, opts EventsOptions) *EventStream {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 3 * api.DefaultHeartbeat
	}
	// A stream outlives any client timeout: idleness is watched instead.
	hc := *c.httpClient()
	hc.Timeout = 0
	ctx, cancel := context.WithCancel(ctx)
	return &EventStream{c: c, http: &hc, opts: opts, ctx: ctx, cancel: cancel, lastID: opts.LastEventID}
}

// LastEventID is the id of the last event Next returned (or the one the
// stream resumed from): what to pass as EventsOptions.LastEventID to
// resume in another stream.
func (s *EventStream) LastEventID() string { return s.lastID }

// Connects is the number of connections made so far (1 plus the
// reconnections).
func (s *EventStream) Connects() int { return s.connects }

// Close ends the stream; a Next in progress returns.
func (s *EventStream) Close() error {
	s.closeOnce.Do(s.cancel)
	return nil
}

// Next returns the next event, reconnecting (with Last-Event-ID, after a
// backoff) as often as the connection breaks. It returns an error only
// when the stream's context ends or Close is called (the context's error),
// or the node refuses the stream for good (an *Error that is not
// retryable: a revoked token, say).
func (s *EventStream) Next() (Event, error) {
	for {
		if err := s.ctx.Err(); err != nil {
			s.disconnect()
			return Event{}, err
		}
		if err := s.Connect(); err != nil {
			return Event{}, err
		}
		ev, err := s.read()
		if err == nil {
			s.failures = 0
			if ev.ID != "" {
				s.lastID = ev.ID
			}
			return ev, nil
		}
		s.disconnect()
		if err := s.backoff(); err != nil {
			return Event{}, err
		}
	}
}

// Connect makes the stream's connection now if it has none, so that every
// event published after Connect returns is delivered; Next connects by
// itself otherwise. It retries like Next.
func (s *EventStream) Connect() error {
	for s.br == nil {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		err := s.connect()
		if err == nil {
			return nil
		}
		if e := errorsAs(err); e != nil && !e.Retryable && e.Status < 500 {
			s.Close()
			return err
		}
		if err := s.backoff(); err != nil {
			return err
		}
	}
	return nil
}

// All iterates over the stream's events until it ends, then yields its
// error once.
func (s *EventStream) All() func(yield func(Event, error) bool) {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := s.Next()
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

func (s *EventStream) connect() error {
	ctx, done := context.WithCancel(s.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.c.BaseURL+"/v1/events", nil)
	if err != nil {
		done()
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	s.c.authorize(req)
	s.connects++
	idle := time.AfterFunc(s.opts.IdleTimeout, done)
	resp, err := s.http.Do(req)
	if err != nil {
		idle.Stop()
		done()
		return fmt.Errorf("GET /v1/events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		idle.Stop()
		done()
		return errorAnswer(http.MethodGet, "/v1/events", resp.StatusCode, raw)
	}
	s.body, s.br, s.idle, s.connDone = resp.Body, bufio.NewReader(resp.Body), idle, done
	return nil
}

func (s *EventStream) disconnect() {
	if s.body == nil {
		return
	}
	s.idle.Stop()
	s.connDone()
	s.body.Close()
	s.body, s.br = nil, nil
}

// backoff waits before the next connection attempt.
func (s *EventStream) backoff() error {
	s.failures++
	d := s.opts.MinBackoff
	for i := 1; i < s.failures && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return s.ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxEventBytes bounds one event's data.
const maxEventBytes = 16 << 20

// read parses the next event; an id without data moves the stream's
// position (the node's newest id when the stream starts).
func (s *EventStream) read() (Event, error) {
	return readEvent(s.br, func() { s.idle.Reset(s.opts.IdleTimeout) }, func(id string) { s.lastID = id })
}

// readEvent parses the next event of a text/event-stream: fields up to a
// blank line. Every line read calls alive (comment lines, heartbeats, only
// keep the connection alive); a block with an id and no data calls
// position. The end of the input before an event is io.ErrUnexpectedEOF.
func readEvent(br *bufio.Reader, alive func(), position func(id string)) (Event, error) {
	var (
		ev   Event
		data strings.Builder
		has  bool
	)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		alive()
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !has {
				if ev.ID != "" {
					position(ev.ID)
				}
				ev = Event{}
				continue
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			ev.Data = json.RawMessage(data.String())
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		case "event":
			ev.Type = value
		case "data":
			if has {
				data.WriteByte('\n')
			}
			has = true
			data.WriteString(value)
			if data.Len() > maxEventBytes {
				return Event{}, errors.New("event too large")
			}
		}
	}
}
