// Package api is the node's local HTTP API: JSON over HTTP, a bearer token
// on every request, typed JSON errors, server-sent events for agents, an
// OpenAPI document generated from the route table and the Go types, and
// Prometheus metrics.
//
// The API serves a Backend (implemented by *node.Node); it holds no state of
// its own. Who may call what:
//
//   - any: the admin token or any agent token;
//   - agent: an agent token only; the request acts as that agent;
//   - party: an agent token (the backend shows only what the agent is a
//     party to) or the admin token;
//   - admin: the admin token only.
//
// A missing or unknown token is 401 unauthorized; a valid token on a route
// it may not use is 403 unauthorized. Errors are
// {"error":{"code":"…","message":"…"}}.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aspnode/asp/internal/strictjson"
	"github.com/aspnode/asp/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxBodyBytes caps a request body.
const DefaultMaxBodyBytes = 1 << 20

// DefaultHeartbeat is the interval of SSE heartbeat comments.
const DefaultHeartbeat = 15 * time.Second

// DefaultBodyTimeout bounds the time a client may take to send a request
// body.
const DefaultBodyTimeout = 30 * time.Second

type config struct {
	reg         prometheus.Registerer
	logger      *slog.Logger
	heartbeat   time.Duration
	maxBody     int64
	bodyTimeout time.Duration
}

// Option configures New.
type Option func(*config)

// WithRegisterer registers the API's metrics (requests by route and status,
// refused requests by error code) with reg. Default: not registered. Pass
// the registerer whose gatherer Backend.Metrics serves.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(c *config) { c.reg = reg }
}

// WithLogger sets the logger for server errors. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithHeartbeat sets the interval of SSE heartbeats. Default: DefaultHeartbeat.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) { c.heartbeat = d }
}

// WithMaxBodyBytes caps request bodies. Default: DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) { c.maxBody = n }
}

// WithBodyTimeout sets how long a client may take to send a request body,
// from the moment the handler starts; a body not in by then is answered
// 408 timeout. Default: DefaultBodyTimeout.
// Requests without a body (server-sent events among them) are not bounded
// by it.
func WithBodyTimeout(d time.Duration) Option {
	return func(c *config) { c.bodyTimeout = d }
}

type handler struct {
	b       Backend
	cfg     config
	routes  []*route
	openapi []byte

	requests *prometheus.CounterVec
	refused  *prometheus.CounterVec

	// shutdowns are closed when the server serving a stream shuts down
	// (see streamsEnd).
	shutdowns sync.Map // *http.Server -> chan struct{}
}

// New returns the HTTP handler of the API, serving b.
func New(b Backend, opts ...Option) http.Handler {
	cfg := config{logger: slog.Default(), heartbeat: DefaultHeartbeat, maxBody: DefaultMaxBodyBytes,
		bodyTimeout: DefaultBodyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	h := &handler{
		b:   b,
		cfg: cfg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "api", Name: "requests_total",
			Help: "HTTP API requests by route and status.",
		}, []string{"route", "status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asp", Subsystem: "api", Name: "refused_total",
			Help: "HTTP API requests refused, by error code.",
		}, []string{"code"}),
	}
	if cfg.reg != nil {
		h.requests = register(cfg.reg, h.requests)
		h.refused = register(cfg.reg, h.refused)
	}
	h.routes = routes()
	doc, err := openAPI(h.routes)
	if err != nil {
		// The route table and types are static: a failure is a bug.
		panic(fmt.Sprintf("api: build openapi document: %v", err))
	}
	h.openapi = doc
	return h
}

// register registers c, or returns the collector already registered under
// the same description (several handlers on one registry share counters).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// call is one request being served.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	p      Principal
	params map[string]string
	h      *handler
}

func (c *call) ctx() context.Context { return c.r.Context() }

// statusWriter records the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and SetWriteDeadline.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody && h.cfg.bodyTimeout > 0 {
		// A body that dribbles in would hold the connection and its
		// goroutine for as long as the client likes: bound it. Once the
		// body is read to its end, net/http lifts the deadline itself (its
		// background read watches for the client leaving), so an answer
		// may take longer; a body left unread stays bounded while the
		// server discards it. A ResponseWriter other than the server's
		// (tests) has no deadlines: then nothing is bounded.
		_ = http.NewResponseController(sw).SetReadDeadline(time.Now().Add(h.cfg.bodyTimeout))
	}
	start := time.Now()
	rt, params, allow := h.match(r)
	label := "unmatched"
	if rt != nil {
		label = rt.Method + " " + rt.Path
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.cfg.logger.Error("api: panic", "route", label, "panic", v)
			if sw.status == 0 {
				h.writeError(sw, Internal(fmt.Errorf("panic: %v", v)))
			}
		}
		h.requests.WithLabelValues(label, strconv.Itoa(sw.status)).Inc()
		h.cfg.logger.Debug("api: request", "method", r.Method, "path", r.URL.Path, "route", label,
			"status", sw.status, "duration", time.Since(start))
	}()
	if rt == nil {
		if allow != nil {
			sw.Header().Set("Allow", strings.Join(allow, ", "))
			h.writeError(sw, Errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
				"method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		h.writeError(sw, NotFound("no such endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	p, err := h.authenticate(r)
	if err != nil {
		h.writeError(sw, err)
		return
	}
	if err := rt.Access.allows(p); err != nil {
		h.writeError(sw, err)
		return
	}
	c := &call{w: sw, r: r, p: p, params: params, h: h}
	if rt.raw != nil {
		err = rt.raw(c)
	} else {
		var v any
		v, err = rt.json(c)
		if err == nil {
			if rt.Status == http.StatusNoContent {
				sw.WriteHeader(http.StatusNoContent)
			} else if st, ok := v.(interface{ httpStatus() int }); ok {
				writeJSON(sw, st.httpStatus(), v)
			} else {
				writeJSON(sw, rt.Status, v)
			}
		}
	}
	if err != nil {
		if sw.status != 0 {
			// Headers are out (a stream): nothing more to say.
			h.cfg.logger.Debug("api: error after response started", "route", label, "err", err)
			return
		}
		h.writeError(sw, err)
	}
}

func (h *handler) authenticate(r *http.Request) (Principal, error) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	if auth == "" {
		return Principal{}, Unauthorized("missing Authorization: Bearer token")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, Unauthorized("Authorization must be \"Bearer TOKEN\"")
	}
	p, err := h.b.Authenticate(token)
	if err != nil {
		return Principal{}, Unauthorized("unknown or revoked token")
	}
	if !p.Admin && p.Agent == "" {
		return Principal{}, Unauthorized("token names no principal")
	}
	return p, nil
}

// extension returns the backend as T, an optional extension of Backend,
// or a 501 unsupported error saying unserved.
func extension[T any](c *call, unserved string) (T, error) {
	x, ok := c.h.b.(T)
	if !ok {
		return x, Errorf(http.StatusNotImplemented, CodeUnsupported, "%s", unserved)
	}
	return x, nil
}

// access is who may use a route.
type access int

const (
	accessAny   access = iota // admin or any agent
	accessAgent               // agent tokens only; acts as that agent
	accessParty               // agent (sees its own) or admin
	accessAdmin               // admin only
)

func (a access) String() string {
	return [...]string{"any", "agent", "party", "admin"}[a]
}

func (a access) allows(p Principal) error {
	switch a {
	case accessAgent:
		if !p.IsAgent() {
			return Forbidden("this endpoint acts as an agent: use an agent token")
		}
	case accessAdmin:
		if !p.Admin {
			return Forbidden("this endpoint needs the admin token")
		}
	}
	return nil
}

// ErrorResponse is the JSON body of every error answer.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is an error's code and message.
type ErrorDetail struct {
	// Code is an ASP error code: unauthorized, not_found, bad_request,
	// invalid_transition, invalid_signature, duplicate, timeout,
	// insufficient_trust_score, policy_violation, escalation_required,
	// internal...
	Code string `json:"code"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
	// Retryable says the same request may succeed later unchanged (the
	// code's retryable flag in protocol's code table: timeout, busy,
	// unavailable, capacity_unavailable).
	Retryable bool `json:"retryable,omitempty"`
	// SessionID names the session the error is about, when one exists
	// (an invitation recorded but not acknowledged: 504 timeout).
	SessionID string `json:"sessionId,omitempty"`
}

// coder is an error carrying its own ASP error code (checked before
// protocol.ErrorCode, so other packages can type their errors).
type coder interface{ ASPCode() string }

// declined is a counterparty's refusal to take part (an invitation
// declined), with the code it gave: 403, whatever the code.
type declined interface {
	ASPCode() string
	Declined() bool
}

// ErrorFor is the answer the API gives for err: the *Error a Backend
// returned, or the status and code mapped from the error's ASP code
// (protocol's code table, or the error's own ASPCode method).
func ErrorFor(err error) *Error { return toError(err) }

// toError turns any error into an *Error, naming the session the error is
// about when the error says (a SessionID method).
func toError(err error) *Error {
	e := toErrorCode(err)
	var se interface{ SessionID() string }
	if e.SessionID == "" && errors.As(err, &se) {
		e2 := *e
		e2.SessionID = se.SessionID()
		return &e2
	}
	return e
}

func toErrorCode(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Status == 0 {
			e2 := *e
			e2.Status = statusForCode(e.Code)
			return &e2
		}
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return BadRequest("request body exceeds %d bytes", mbe.Limit)
	}
	var d declined
	if errors.As(err, &d) && d.Declined() {
		return &Error{Status: http.StatusForbidden, Code: d.ASPCode(), Message: err.Error(), Err: err}
	}
	if code := errorCode(err); code != "" && code != CodeInternal {
		if st := statusForCode(code); st != http.StatusInternalServerError {
			return &Error{Status: st, Code: code, Message: err.Error(), Err: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: "deadline exceeded", Err: err}
	}
	return Internal(err)
}

// errorCode is the ASP code of err: its own (coder), else protocol's.
func errorCode(err error) string {
	var c coder
	if errors.As(err, &c) {
		return c.ASPCode()
	}
	return protocol.ErrorCode(err)
}

// statusForCode maps an ASP error code to an HTTP status.
func statusForCode(code string) int {
	switch code {
	case CodeBadRequest, CodeInvalidSignature:
		return http.StatusBadRequest
	case CodeUnauthorized, CodeInsufficientTrustScore, CodePolicyViolation, protocol.CodeBudgetExceeded, protocol.CodeEquivocation:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeInvalidTransition, CodeDuplicate, CodeEscalationRequired,
		protocol.CodeReplay, protocol.CodeConflict, protocol.CodeStaleOffer, protocol.CodeBusy,
		protocol.CodeUnspecified, protocol.CodePending:
		return http.StatusConflict
	case protocol.CodeSchemaUnsupported:
		return http.StatusUnprocessableEntity
	case CodeTimeout:
		return http.StatusGatewayTimeout
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeUnsupported:
		return http.StatusNotImplemented
	case CodeUnavailable, protocol.CodeCapacityUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (h *handler) writeError(w http.ResponseWriter, err error) {
	e := toError(err)
	if e.Status == http.StatusInternalServerError {
		h.cfg.logger.Error("api: request failed", "code", e.Code, "err", err)
	}
	h.refused.WithLabelValues(e.Code).Inc()
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="asp"`)
	}
	writeJSON(w, e.Status, ErrorResponse{Error: ErrorDetail{Code: e.Code, Message: e.Message, Retryable: protocol.Retryable(e.Code), SessionID: e.SessionID}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decodeBody decodes the request body, which must be one JSON object, into
// v, refusing unknown fields. An empty body is refused unless optional, in
// which case it reports false.
func (c *call) decodeBody(v any, optional bool) (bool, error) {
	raw, err := c.readBody()
	if err != nil {
		return false, err
	}
	if raw == nil {
		if optional {
			return false, nil
		}
		return false, BadRequest("request body must be a JSON object")
	}
	return true, decodeStrict(raw, v)
}

// readBody reads the capped body; nil if empty. A non-empty body must be a
// JSON object.
func (c *call) readBody() ([]byte, error) {
	body := http.MaxBytesReader(c.w, c.r.Body, c.h.cfg.maxBody)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, BadRequest("request body exceeds %d bytes", mbe.Limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, Errorf(http.StatusRequestTimeout, CodeTimeout, "request body not received within %s", c.h.cfg.bodyTimeout)
		}
		return nil, BadRequest("read request body: %v", err)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, BadRequest("request body must be a JSON object")
	}
	return raw, nil
}

// decodeStrict decodes a request body into v: unknown fields, duplicate
// keys at any depth (terms and body included) and keys that name a field
// only in another case are refused, so the node acts on the value every
// reader of the body sees.
func decodeStrict(raw []byte, v any) error {
	if err := strictjson.Decode(raw, v); err != nil {
		if errors.Is(err, strictjson.ErrTrailing) {
			return BadRequest("invalid JSON body: data after the object")
		}
		return BadRequest("invalid JSON body: %s", jsonErrText(err))
	}
	return nil
}

func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// match finds the route for r and its path parameters (unescaped). When
// the path exists but not for r.Method, allow lists the methods it has.
func (h *handler) match(r *http.Request) (rt *route, params map[string]string, allow []string) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for pass := 0; pass < 2; pass++ {
		// Pass 0 tries exact routes, pass 1 routes with a multi-segment
		// parameter (agent ids sent unescaped).
		for _, rt := range h.routes {
			if (rt.greedy >= 0) != (pass == 1) {
				continue
			}
			params, ok := rt.matchPath(segs)
			if !ok {
				continue
			}
			if rt.Method != r.Method {
				if !slices.Contains(allow, rt.Method) {
					allow = append(allow, rt.Method)
				}
				continue
			}
			return rt, params, nil
		}
	}
	return nil, nil, allow
}

// matchPath matches the escaped path segments against the route pattern.
func (rt *route) matchPath(segs []string) (map[string]string, bool) {
	pat := rt.segs
	if rt.greedy < 0 {
		if len(segs) != len(pat) {
			return nil, false
		}
	} else if len(segs) < len(pat) {
		return nil, false
	}
	var params map[string]string
	set := func(name, esc string) bool {
		v, err := url.PathUnescape(esc)
		if err != nil || v == "" {
			return false
		}
		if params == nil {
			params = make(map[string]string, 2)
		}
		params[name] = v
		return true
	}
	one := func(p pathSeg, s string) bool {
		if p.param == "" {
			return p.lit == s
		}
		return set(p.param, s)
	}
	if rt.greedy < 0 {
		for i, p := range pat {
			if !one(p, segs[i]) {
				return nil, false
			}
		}
		return params, true
	}
	g := rt.greedy
	tail := len(pat) - g - 1
	for i := 0; i < g; i++ {
		if !one(pat[i], segs[i]) {
			return nil, false
		}
	}
	for i := 0; i < tail; i++ {
		if !one(pat[len(pat)-1-i], segs[len(segs)-1-i]) {
			return nil, false
		}
	}
	if !set(pat[g].param, strings.Join(segs[g:len(segs)-tail], "/")) {
		return nil, false
	}
	return params, true
}
