package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Handler serves one request from a peer and returns the response. A
// non-nil error is sent back to the peer as a RemoteError (see
// WithErrorMapper) and the stream stays open for further requests. ctx is
// the Host's context, cancelled when the Host closes.
type Handler func(ctx context.Context, from peer.ID, req []byte) ([]byte, error)

// RemoteError is the error a peer's Handler returned, as Request reports it.
// Code is a short machine-readable word (for example "invalid_transition");
// Message is meant for people. Both cross organization boundaries.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "remote error: " + e.Code
	}
	return "remote error: " + e.Code + ": " + e.Message
}

// CodeInternal is the RemoteError code for failures the serving side does
// not describe.
const CodeInternal = "internal"

func defaultErrorMapper(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	return &RemoteError{Code: CodeInternal, Message: "internal error"}
}

// Response status bytes.
const (
	statusOK    byte = 0
	statusError byte = 1
)

// Handle serves proto with fn: each inbound stream is read frame by frame,
// each frame is a request passed to fn, and each answer goes back as one
// response frame, until the peer closes its side (the stream is then
// closed) or no frame starts within the idle timeout, or a frame is
// oversized or malformed (the stream is then reset, fn is not called, and
// asp_p2p_frames_refused_total counts it), or a frame does not arrive at
// MinFrameRate (reset, asp_p2p_frames_stalled_total). A stream beyond the
// budget of peers without live business is reset unread
// (asp_p2p_streams_refused_total), unless a stream not being served gives
// way to it (asp_p2p_streams_evicted_total); see the package documentation,
// "Stream budgets and stalls". Handle replaces any handler already set for
// proto.
func (h *Host) Handle(proto protocol.ID, fn Handler) {
	adm := newAdmission(budgetFor(h.limiter, proto), h.cfg.protected)
	h.basic.SetStreamHandler(proto, func(s network.Stream) { h.serve(s, proto, fn, adm) })
}

// RemoveHandler stops serving proto; streams already open are served on.
func (h *Host) RemoveHandler(proto protocol.ID) { h.basic.RemoveStreamHandler(proto) }

func (h *Host) serve(s network.Stream, proto protocol.ID, fn Handler, adm *admission) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = s.Reset()
		return
	}
	h.handlers.Add(1)
	h.mu.Unlock()
	defer h.handlers.Done()

	from := s.Conn().RemotePeer()
	pl, ev, refused := adm.admit(from, func() { _ = s.Reset() })
	if refused != "" {
		h.metrics.streamRefused.WithLabelValues(string(proto), refused).Inc()
		h.cfg.logger.Debug("stream refused, over budget", "protocol", proto, "peer", from, "reason", refused)
		_ = s.Reset()
		return
	}
	if ev != nil {
		h.metrics.evicted.WithLabelValues(string(proto)).Inc()
		h.cfg.logger.Debug("stream evicted for a new one", "protocol", proto, "peer", ev.peer, "in_frame", ev.inFrame, "for", from)
		if ev.inFrame {
			h.strike(ev.peer)
		}
	}
	defer adm.done(pl)
	// A stream counted in the shared budget holds a place there while
	// idle, so it may idle less.
	idle := h.cfg.idleTimeout
	if pl != nil {
		idle = min(idle, UnprotectedIdleTimeout)
	}
	if h.serveLoop(s, proto, fn, from, idle, adm, pl) {
		_ = s.Close()
	} else {
		_ = s.Reset()
	}
}

// serveLoop returns true when the stream ended in order (the peer closed its
// side between frames), false when it must be reset. It reports the
// stream's state on its place pl (nil when uncounted).
func (h *Host) serveLoop(s network.Stream, proto protocol.ID, fn Handler, from peer.ID, idle time.Duration, adm *admission, pl *place) bool {
	br := bufio.NewReader(s)
	wait := min(idle, FrameStartTimeout) // to the first frame
	var began func()                     // at the first byte of each frame
	if pl != nil {
		began = func() { adm.reading(pl) }
	}
	for {
		req, err := readRequest(s, br, wait, began)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return true
			case errors.Is(err, ErrFrameTooLarge):
				h.refuse(proto, RefusedOversize, from, err)
				h.strike(from)
			case errors.Is(err, ErrMalformedFrame):
				h.refuse(proto, RefusedMalformed, from, err)
				h.strike(from)
			case errors.Is(err, errStalled):
				h.metrics.stalled.WithLabelValues(string(proto)).Inc()
				h.cfg.logger.Debug("frame stalled, stream reset", "protocol", proto, "peer", from)
				h.strike(from)
			case isTimeout(err):
				h.metrics.idleResets.WithLabelValues(string(proto)).Inc()
				h.cfg.logger.Debug("stream idle, reset", "protocol", proto, "peer", from)
				if wait < idle {
					h.strike(from) // opened and left silent
				}
			}
			return false
		}
		if !adm.serving(pl) {
			return false // evicted as the request arrived; it is not served
		}
		wait = idle
		resp, herr := h.call(fn, from, req)
		var werr error
		_ = s.SetWriteDeadline(time.Now().Add(h.cfg.idleTimeout))
		if herr != nil {
			h.metrics.handlerErrors.WithLabelValues(string(proto)).Inc()
			werr = writeFrameParts(s, encodeRemoteError(h.cfg.errorMapper(herr)), nil)
		} else if len(resp)+1 > MaxFrameSize {
			h.cfg.logger.Error("response too large", "protocol", proto, "peer", from, "size", len(resp))
			werr = writeFrameParts(s, encodeRemoteError(&RemoteError{Code: CodeInternal, Message: "response too large"}), nil)
		} else {
			werr = writeFrameParts(s, []byte{statusOK}, resp)
		}
		if werr != nil {
			return false
		}
		adm.idle(pl)
	}
}

// call runs fn, turning a panic into an error so that one bad request does
// not bring the node down.
func (h *Host) call(fn Handler, from peer.ID, req []byte) (resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			h.cfg.logger.Error("handler panic", "peer", from, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, &RemoteError{Code: CodeInternal, Message: "internal error"}
		}
	}()
	return fn(h.ctx, from, req)
}

func (h *Host) refuse(proto protocol.ID, reason string, from peer.ID, err error) {
	h.metrics.refused.WithLabelValues(string(proto), reason).Inc()
	h.cfg.logger.Debug("frame refused, stream reset", "protocol", proto, "peer", from, "reason", reason, "err", err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// encodeRemoteError is the payload of an error response frame: the status
// byte, uvarint len(code), code, message. Over-long codes and messages are
// cut so that the frame fits.
func encodeRemoteError(e *RemoteError) []byte {
	if e == nil {
		e = &RemoteError{Code: CodeInternal}
	}
	code, msg := e.Code, e.Message
	const maxCode, maxMsg = 256, 64 << 10
	if len(code) > maxCode {
		code = code[:maxCode]
	}
	if len(msg) > maxMsg {
		msg = msg[:maxMsg]
	}
	b := make([]byte, 0, 1+2+len(code)+len(msg))
	b = append(b, statusError)
	b = appendUvarint(b, uint64(len(code)))
	b = append(b, code...)
	return append(b, msg...)
}

// decodeResponse splits a response frame into the response or the remote
// error it carries.
func decodeResponse(frame []byte) ([]byte, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty response", ErrMalformedFrame)
	}
	switch frame[0] {
	case statusOK:
		return frame[1:], nil
	case statusError:
		rest := frame[1:]
		var n uint64
		var shift uint
		i := 0
		for ; ; i++ {
			if i >= len(rest) || i >= 2 {
				return nil, fmt.Errorf("%w: remote error code length", ErrMalformedFrame)
			}
			b := rest[i]
			if b == 0 && i > 0 {
				return nil, fmt.Errorf("%w: remote error code length not minimal", ErrMalformedFrame)
			}
			n |= uint64(b&0x7f) << shift
			shift += 7
			if b < 0x80 {
				break
			}
		}
		rest = rest[i+1:]
		if n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: remote error code length", ErrMalformedFrame)
		}
		return nil, &RemoteError{Code: string(rest[:n]), Message: string(rest[n:])}
	default:
		return nil, fmt.Errorf("%w: unknown response status %#x", ErrMalformedFrame, frame[0])
	}
}

// Request sends req to peer to on proto and returns the response, opening a
// stream or reusing an idle one from an earlier Request. When the peer's
// handler fails, the error is a *RemoteError. Without a deadline on ctx,
// the request is bounded by the request timeout (WithRequestTimeout).
//
// A reused stream that turns out to have been closed by the peer (for
// example by its idle timeout, or evicted to make room for another peer's)
// before any response arrives is dropped and
// the request is sent again on another stream; in the rare case where the
// peer had served it already, the handler sees the request twice, so
// handlers should be idempotent (ASP messages are deduplicated by id). A
// request that timed out is never sent again. Requests to a peer the access
// lists refuse fail with ErrPeerNotAllowed.
func (h *Host) Request(ctx context.Context, to peer.ID, proto protocol.ID, req []byte) ([]byte, error) {
	if len(req) > MaxFrameSize {
		return nil, fmt.Errorf("p2p: request %s: %w: %d bytes, cap %d", proto, ErrFrameTooLarge, len(req), MaxFrameSize)
	}
	if !h.gater.Allowed(to) {
		return nil, fmt.Errorf("p2p: request %s to %s: %w", proto, to, ErrPeerNotAllowed)
	}
	// The request's deadline: the context's, or the request timeout. The
	// latter is applied to the stream only, sparing a timer per request.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(h.cfg.requestTimeout)
	}
	key := poolKey{to, proto}
	for {
		ps, reused, err := h.stream(ctx, deadline, key)
		if err != nil {
			return nil, fmt.Errorf("p2p: request %s to %s: %w", proto, to, ctxErr(ctx, err))
		}
		resp, beforeResponse, err := h.exchange(ctx, deadline, ps, proto, req)
		if err == nil || isRemote(err) {
			h.release(key, ps)
			return resp, err
		}
		_ = ps.s.Reset()
		h.drop(key)
		if reused && beforeResponse && !isTimeout(err) && ctx.Err() == nil && time.Now().Before(deadline) {
			continue // the peer had closed the idle stream; try a fresh one
		}
		return nil, fmt.Errorf("p2p: request %s to %s: %w", proto, to, ctxErr(ctx, err))
	}
}

func isRemote(err error) bool {
	var re *RemoteError
	return errors.As(err, &re)
}

// ctxErr prefers the context's error, or a deadline error for a stream
// deadline, over the stream error it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if isTimeout(err) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// exchange writes one request frame on ps and reads the response frame.
// beforeResponse reports whether a failure happened before the first byte of
// the response, when the request may not have been served.
func (h *Host) exchange(ctx context.Context, deadline time.Time, ps *pooledStream, proto protocol.ID, req []byte) (resp []byte, beforeResponse bool, err error) {
	s := ps.s
	_ = s.SetDeadline(deadline)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
		defer func() {
			if !stop() && err == nil {
				// The context ended as the response arrived; the stream
				// has been reset under us, so report the context's error.
				resp, beforeResponse, err = nil, false, ctx.Err()
			}
		}()
	}
	if err := writeFrameParts(s, req, nil); err != nil {
		return nil, true, err
	}
	if _, err := ps.br.Peek(1); err != nil {
		return nil, true, err
	}
	frame, err := ReadFrame(ps.br, MaxFrameSize)
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			h.refuse(proto, RefusedOversize, s.Conn().RemotePeer(), err)
		} else if errors.Is(err, ErrMalformedFrame) {
			h.refuse(proto, RefusedMalformed, s.Conn().RemotePeer(), err)
		}
		return nil, false, err
	}
	resp, err = decodeResponse(frame)
	if errors.Is(err, ErrMalformedFrame) {
		h.refuse(proto, RefusedMalformed, s.Conn().RemotePeer(), err)
	}
	return resp, false, err
}

// disconnected drops pooled streams of a connection that went away.
func (h *Host) disconnected(_ network.Network, c network.Conn) {
	h.pool.drop(func(ps *pooledStream) bool { return ps.s.Conn() == c }, true)
}

// janitor closes pooled streams idle for more than pooledMaxIdle, so that
// peers' idle timers need not reset them.
func (h *Host) janitor() {
	defer h.bg.Done()
	every := h.pooledMaxIdle()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-t.C:
			h.pool.drop(func(ps *pooledStream) bool { return now.Sub(ps.since) > every }, false)
			h.strikes.prune(now)
			h.gater.prune(now)
		}
	}
}
