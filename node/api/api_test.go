package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aspnode/asp/protocol"
)

type harness struct {
	t   *testing.T
	f   *fake
	srv *httptest.Server
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	f := newFake()
	return newHarnessFor(t, f, f, opts...)
}

func newHarnessFor(t *testing.T, f *fake, b Backend, opts ...Option) *harness {
	t.Helper()
	opts = append([]Option{WithRegisterer(f.reg), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	srv := httptest.NewServer(New(b, opts...))
	t.Cleanup(srv.Close)
	return &harness{t: t, f: f, srv: srv}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// errCode decodes an error answer, failing the test if it has not the
// contract's shape.
func (r resp) errCode(t *testing.T) string {
	t.Helper()
	var e map[string]map[string]any // strings, and "retryable": true where it applies
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	code, _ := e["error"]["code"].(string)
	msg, _ := e["error"]["message"].(string)
	if len(e) != 1 || code == "" || msg == "" {
		t.Fatalf("error body %q lacks {error:{code,message}}", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error content type %q", ct)
	}
	return code
}

func (h *harness) do(method, path, token, body string) resp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// expect checks the status and, for an error, the code.
func (h *harness) expect(r resp, status int, code string) {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.errCode(h.t); got != code {
			h.t.Fatalf("code %q, want %q; body %s", got, code, r.body)
		}
	}
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

var esc = url.PathEscape

// sample is a request that a route's allowed principal may make.
type sample struct {
	path, body string
	token      string // an allowed token
}

// samples has a request for every route in the table.
func samples(sid string) map[string]sample {
	return map[string]sample{
		"GET /v1/node":                                {"/v1/node", "", buyerToken},
		"POST /v1/agents":                             {"/v1/agents", `{"name":"seller","capabilities":["gpu"]}`, adminToken},
		"GET /v1/agents":                              {"/v1/agents", "", adminToken},
		"DELETE /v1/agents/{agentId...}":              {"/v1/agents/" + esc(eve), "", adminToken},
		"GET /v1/agents/{agentId...}/card":            {"/v1/agents/" + esc(vendor) + "/card", "", buyerToken},
		"GET /v1/consent":                             {"/v1/consent", "", adminToken},
		"PUT /v1/consent":                             {"/v1/consent", `{"consent":"accept-all","allow":[],"deny":[]}`, adminToken},
		"POST /v1/orgs/{peerId}/revoke":               {"/v1/orgs/12D3KooWOther/revoke", "", adminToken},
		"GET /v1/agents/{agentId...}/mandate":         {"/v1/agents/" + esc(buyer) + "/mandate", "", adminToken},
		"PUT /v1/agents/{agentId...}/mandate":         {"/v1/agents/" + esc(buyer) + "/mandate", `{"maxTotal":{"USD":"5000"}}`, adminToken},
		"GET /v1/discover":                            {"/v1/discover?capability=gpu", "", buyerToken},
		"GET /v1/sessions":                            {"/v1/sessions", "", buyerToken},
		"POST /v1/sessions":                           {"/v1/sessions", `{"to":"` + vendor + `"}`, buyerToken},
		"GET /v1/sessions/{sessionId}":                {"/v1/sessions/" + sid, "", buyerToken},
		"POST /v1/sessions/{sessionId}/messages":      {"/v1/sessions/" + sid + "/messages", `{"performative":"PROPOSE","terms":{"unitPrice":"2.40"}}`, buyerToken},
		"POST /v1/sessions/{sessionId}/accept":        {"/v1/sessions/" + sid + "/accept", "", vendorToken},
		"POST /v1/sessions/{sessionId}/decline":       {"/v1/sessions/" + sid + "/decline", "", vendorToken},
		"GET /v1/events":                              {"/v1/events", "", buyerToken},
		"GET /v1/events/recent":                       {"/v1/events/recent?since=0", "", buyerToken},
		"POST /v1/audit/events":                       {"/v1/audit/events", `{"type":"order.created","data":{}}`, buyerToken},
		"GET /v1/commitments":                         {"/v1/commitments", "", buyerToken},
		"GET /v1/commitments/{commitmentId}":          {"/v1/commitments/cmt_1", "", vendorToken},
		"POST /v1/commitments/{commitmentId}/fulfill": {"/v1/commitments/cmt_1/fulfill", `{"evidence":{"hours":1000}}`, vendorToken},
		"POST /v1/commitments/{commitmentId}/confirm": {"/v1/commitments/cmt_1/confirm", "", buyerToken},
		"POST /v1/commitments/{commitmentId}/dispute": {"/v1/commitments/cmt_1/dispute", `{"reason":"late","severity":"minor"}`, buyerToken},
		"GET /v1/trust/{agentId...}":                  {"/v1/trust/" + esc(vendor), "", buyerToken},
		"GET /v1/audit/checkpoint":                    {"/v1/audit/checkpoint", "", buyerToken},
		"GET /v1/audit/entries":                       {"/v1/audit/entries", "", adminToken},
		"GET /v1/openapi.json":                        {"/v1/openapi.json", "", buyerToken},
		"GET /metrics":                                {"/metrics", "", adminToken},
		"GET /v1/witnesses":                           {"/v1/witnesses", "", adminToken},
		"GET /v1/audit/proof/inclusion":               {"/v1/audit/proof/inclusion?index=1&size=4", "", buyerToken},
		"GET /v1/audit/proof/consistency":             {"/v1/audit/proof/consistency?from=2&to=4", "", buyerToken},
		"GET /v1/policy/disputes":                     {"/v1/policy/disputes", "", adminToken},
		"POST /v1/commitments/{commitmentId}/cancel":  {"/v1/commitments/cmt_1/cancel", "", buyerToken},
		"PUT /v1/policy/disputes":                     {"/v1/policy/disputes", `{"onBreach":"file","respondWithin":"2s"}`, adminToken},
		"GET /v1/disputes":                            {"/v1/disputes", "", buyerToken},
		"GET /v1/disputes/{disputeId}":                {"/v1/disputes/dsp_1", "", buyerToken},
		"POST /v1/disputes/{disputeId}/remedy":        {"/v1/disputes/dsp_1/remedy", `{"remedy":"half the penalty"}`, vendorToken},
		"POST /v1/disputes/{disputeId}/accept":        {"/v1/disputes/dsp_1/accept", "", buyerToken},
		"POST /v1/disputes/{disputeId}/reject":        {"/v1/disputes/dsp_1/reject", `{"reason":"no"}`, buyerToken},
		"POST /v1/disputes/{disputeId}/escalate":      {"/v1/disputes/dsp_1/escalate", "", buyerToken},
		"POST /v1/disputes/{disputeId}/rule":          {"/v1/disputes/dsp_1/rule", `{"outcome":"dismissed","reasoning":"no breach"}`, adminToken},
		"POST /v1/admin/backup":                       {"/v1/admin/backup", "", adminToken},
	}
}

func (h *harness) openSession() string {
	h.t.Helper()
	r := h.do("POST", "/v1/sessions", buyerToken, `{"to":"`+vendor+`"}`)
	h.expect(r, 201, "")
	return decode[SessionInfo](h.t, r).SessionID
}

// TestAuthEveryRoute checks every route of the table: no token, a wrong
// token and a malformed header are 401; a token of the wrong kind is 403;
// the right kind gets through.
func TestAuthEveryRoute(t *testing.T) {
	h := newHarness(t)
	sid := h.openSession()
	ss := samples(sid)
	for _, rt := range routes() {
		key := rt.Method + " " + rt.Path
		s, ok := ss[key]
		if !ok {
			t.Errorf("no sample request for route %s", key)
			continue
		}
		t.Run(key, func(t *testing.T) {
			h := &harness{t: t, f: h.f, srv: h.srv}
			for _, tok := range []string{"", "nope"} {
				r := h.do(rt.Method, s.path, tok, s.body)
				h.expect(r, 401, CodeUnauthorized)
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
			for _, hdr := range []string{"Basic " + adminToken, "Bearer", adminToken} {
				req, _ := http.NewRequest(rt.Method, h.srv.URL+s.path, nil)
				req.Header.Set("Authorization", hdr)
				res, err := h.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 401 {
					t.Errorf("Authorization %q: status %d, want 401", hdr, res.StatusCode)
				}
			}
			switch rt.Access {
			case accessAdmin:
				h.expect(h.do(rt.Method, s.path, buyerToken, s.body), 403, CodeUnauthorized)
			case accessAgent:
				h.expect(h.do(rt.Method, s.path, adminToken, s.body), 403, CodeUnauthorized)
			}
			if rt.Path == "/v1/events" {
				return // a stream: TestEvents
			}
			if r := h.do(rt.Method, s.path, s.token, s.body); r.status >= 300 {
				t.Fatalf("allowed request: status %d: %s", r.status, r.body)
			}
		})
	}
}

// TestAgentActsAsItself checks that an agent token acts only as its agent.
func TestAgentActsAsItself(t *testing.T) {
	h := newHarness(t)
	sid := h.openSession()
	if h.f.lastFrom != buyer {
		t.Fatalf("session opened as %q, want the caller %q", h.f.lastFrom, buyer)
	}
	// A field naming another sender is refused, not honoured.
	h.expect(h.do("POST", "/v1/sessions/"+sid+"/messages", buyerToken, `{"performative":"PROPOSE","from":"`+vendor+`"}`), 400, CodeBadRequest)
	h.expect(h.do("POST", "/v1/sessions", buyerToken, `{"to":"`+vendor+`","from":"`+eve+`"}`), 400, CodeBadRequest)

	// eve is not a party: she can neither read nor write the session.
	h.expect(h.do("GET", "/v1/sessions/"+sid, eveToken, ""), 404, CodeNotFound)
	h.expect(h.do("POST", "/v1/sessions/"+sid+"/messages", eveToken, `{"performative":"ACCEPT"}`), 403, CodeUnauthorized)
	h.expect(h.do("POST", "/v1/commitments/cmt_1/confirm", eveToken, ""), 404, CodeNotFound)
	if got := h.f.lastAct; !slices.Equal(got, []string{eve, "cmt_1", "confirm"}) {
		t.Fatalf("commitment action ran as %v", got)
	}
	h.expect(h.do("GET", "/v1/commitments/cmt_1", eveToken, ""), 404, CodeNotFound)
	if cl := decode[CommitmentList](t, h.do("GET", "/v1/commitments", eveToken, "")); len(cl.Commitments) != 0 {
		t.Fatalf("eve sees %v", cl.Commitments)
	}

	// The parties can.
	r := h.do("POST", "/v1/sessions/"+sid+"/messages", vendorToken, `{"performative":"COUNTER","terms":{"unitPrice":"2.80"}}`)
	h.expect(r, 201, "")
	if h.f.lastFrom != vendor {
		t.Fatalf("message sent as %q, want %q", h.f.lastFrom, vendor)
	}
	si := decode[SessionInfo](t, h.do("GET", "/v1/sessions/"+sid, buyerToken, ""))
	if len(si.Messages) != 1 || !strings.Contains(string(si.Messages[0]), `"2.80"`) {
		t.Fatalf("session %+v", si)
	}
	// Admin sees all commitments, a party its own.
	if cl := decode[CommitmentList](t, h.do("GET", "/v1/commitments", adminToken, "")); len(cl.Commitments) != 2 {
		t.Fatalf("admin sees %v", cl.Commitments)
	}
	if sl := decode[SessionList](t, h.do("GET", "/v1/sessions", eveToken, "")); len(sl.Sessions) != 0 {
		t.Fatalf("eve lists %v", sl.Sessions)
	}
	// A deleted agent's token no longer works.
	h.expect(h.do("DELETE", "/v1/agents/"+esc(eve), adminToken, ""), 204, "")
	h.f.mu.Lock()
	delete(h.f.tokens, eveToken)
	h.f.mu.Unlock()
	h.expect(h.do("GET", "/v1/node", eveToken, ""), 401, CodeUnauthorized)
	h.expect(h.do("DELETE", "/v1/agents/"+esc(eve), adminToken, ""), 404, CodeNotFound)
}

func TestErrorMapping(t *testing.T) {
	h := newHarness(t)
	sid := h.openSession()
	msg := func(perf string) resp {
		return h.do("POST", "/v1/sessions/"+sid+"/messages", buyerToken, `{"performative":"`+perf+`"}`)
	}
	h.expect(msg("BAD"), 409, CodeInvalidTransition)
	h.expect(msg("POOR"), 403, CodeInsufficientTrustScore)
	h.expect(msg("SLOW"), 504, CodeTimeout)
	for _, p := range []string{"WEIRD", "BOOM", "PANIC"} {
		r := msg(p)
		h.expect(r, 500, CodeInternal)
		if strings.Contains(string(r.body), "secret") {
			t.Fatalf("%s: internal detail leaked: %s", p, r.body)
		}
	}
	h.expect(h.do("POST", "/v1/sessions/nope/messages", buyerToken, `{"performative":"PROPOSE"}`), 404, CodeNotFound)
	h.expect(h.do("POST", "/v1/agents", adminToken, `{"name":"buyer"}`), 409, CodeDuplicate)
	h.expect(h.do("GET", "/v1/discover?capability=slow", buyerToken, ""), 504, CodeTimeout)
	h.expect(h.do("GET", "/v1/nothing", buyerToken, ""), 404, CodeNotFound)
	h.expect(h.do("GET", "/v1/nothing", "", ""), 404, CodeNotFound)
	r405 := h.do("PUT", "/v1/sessions", buyerToken, "")
	h.expect(r405, 405, CodeMethodNotAllowed)
	if got := r405.header.Get("Allow"); got != "GET, POST" {
		t.Fatalf("Allow %q", got)
	}
	h.expect(h.do("GET", "/v1/agents/"+esc(eve)+"/card", buyerToken, ""), 404, CodeNotFound)
	h.expect(h.do("GET", "/v1/sessions/", buyerToken, ""), 404, CodeNotFound)

	// The optional extensions answer 501 when the backend lacks them.
	h2 := newHarnessFor(t, h.f, onlyBackend{h.f})
	h2.expect(h2.do("GET", "/v1/sessions", buyerToken, ""), 501, CodeUnsupported)
	h2.expect(h2.do("POST", "/v1/sessions/"+sid+"/accept", vendorToken, ""), 501, CodeUnsupported)
}

func TestToError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{NotFound("x"), 404, CodeNotFound},
		{&Error{Code: CodeDuplicate, Message: "x"}, 409, CodeDuplicate},
		{codedErr{CodeInvalidSignature, "bad sig"}, 400, CodeInvalidSignature},
		{codedErr{CodePolicyViolation, "no"}, 403, CodePolicyViolation},
		{codedErr{CodeUnauthorized, "not a party"}, 403, CodeUnauthorized},
		{codedErr{CodeBadRequest, "float"}, 400, CodeBadRequest},
		{codedErr{CodeEscalationRequired, "human"}, 409, CodeEscalationRequired},
		{context.DeadlineExceeded, 504, CodeTimeout},
		{fmt.Errorf("step: %w", protocol.ErrInvalidTransition), 409, CodeInvalidTransition},
		{fmt.Errorf("step: %w", protocol.ErrOwnOffer), 409, CodeInvalidTransition},
		{fmt.Errorf("verify: %w", protocol.ErrBadSignature), 400, CodeInvalidSignature},
		{fmt.Errorf("terms: %w", protocol.ErrFloat), 400, CodeBadRequest},
		{fmt.Errorf("step: %w", protocol.ErrNotParty), 403, CodeUnauthorized},
		{fmt.Errorf("step: %w", protocol.ErrDuplicate), 409, CodeDuplicate},
		{fmt.Errorf("step: %w", protocol.ErrStaleOffer), 409, protocol.CodeStaleOffer},
		{fmt.Errorf("step: %w", protocol.ErrTimeout), 504, CodeTimeout},
		{fmt.Errorf("step: %w", protocol.ErrPolicyViolation), 403, CodePolicyViolation},
		{fmt.Errorf("mandate: %w", protocol.ErrBudgetExceeded), 403, protocol.CodeBudgetExceeded},
		{fmt.Errorf("offer: %w", protocol.ErrCapacityUnavailable), 503, protocol.CodeCapacityUnavailable},
		{fmt.Errorf("body: %w", protocol.ErrSchemaUnsupported), 422, protocol.CodeSchemaUnsupported},
		{codedErr{protocol.CodeBusy, "peer moving"}, 409, protocol.CodeBusy},
		{codedErr{protocol.CodeUnspecified, "no reason"}, 409, protocol.CodeUnspecified},
		{io.EOF, 500, CodeInternal},
	} {
		e := toError(tc.err)
		if e.Status != tc.status || e.Code != tc.code {
			t.Errorf("%v: got %d %s, want %d %s", tc.err, e.Status, e.Code, tc.status, tc.code)
		}
	}
}

// Every error answer says whether the same request may succeed later, as
// protocol's code table does.
func TestErrorRetryable(t *testing.T) {
	h := newHarness(t)
	sid := h.openSession()
	for _, tc := range []struct {
		perf      string
		retryable bool
	}{{"SLOW", true}, {"BAD", false}} {
		r := h.do("POST", "/v1/sessions/"+sid+"/messages", buyerToken, `{"performative":"`+tc.perf+`"}`)
		var er ErrorResponse
		if err := json.Unmarshal(r.body, &er); err != nil {
			t.Fatal(err)
		}
		if er.Error.Retryable != tc.retryable || er.Error.Retryable != protocol.Retryable(er.Error.Code) {
			t.Errorf("%s: %s retryable=%v, want %v", tc.perf, er.Error.Code, er.Error.Retryable, tc.retryable)
		}
		if tc.retryable != strings.Contains(string(r.body), `"retryable":true`) {
			t.Errorf("%s: body %s", tc.perf, r.body)
		}
	}
}

func TestBodies(t *testing.T) {
	h := newHarness(t)
	sid := h.openSession()
	big := `{"name":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	for _, tc := range []struct{ path, body string }{
		{"/v1/agents", big},
		{"/v1/agents", `[]`},
		{"/v1/agents", `"buyer"`},
		{"/v1/agents", `12`},
		{"/v1/agents", `null`},
		{"/v1/agents", `{`},
		{"/v1/agents", `{"name":"a"}{}`},
		{"/v1/agents", `{"name":"a"} x`},
		{"/v1/agents", `{"name":5}`},
		{"/v1/agents", `{"name":"a","admin":true}`},
		{"/v1/agents", `{}`},
		{"/v1/agents", ``},
		{"/v1/sessions", `{}`},
		{"/v1/sessions", `{"to":7}`},
		{"/v1/sessions/" + sid + "/messages", `{}`},
		{"/v1/sessions/" + sid + "/messages", `{"performative":"PROPOSE","terms":[1]}`},
		{"/v1/sessions/" + sid + "/messages", `{"performative":"PROPOSE","body":"x"}`},
		{"/v1/commitments/cmt_1/dispute", ``},
		{"/v1/commitments/cmt_1/dispute", `{"severity":"minor"}`},
		{"/v1/commitments/cmt_1/fulfill", `{"proof":1}`},
		{"/v1/commitments/cmt_1/fulfill", `[]`},
	} {
		tok := buyerToken
		if tc.path == "/v1/agents" {
			tok = adminToken
		}
		r := h.do("POST", tc.path, tok, tc.body)
		if r.status != 400 || r.errCode(t) != CodeBadRequest {
			b := tc.body
			if len(b) > 40 {
				b = b[:40] + "…"
			}
			t.Errorf("POST %s %s: %d %s", tc.path, b, r.status, r.body)
		}
	}
	// The body reaches the backend as sent.
	h.expect(h.do("POST", "/v1/commitments/cmt_1/dispute", buyerToken, `{"reason":"late","severity":"major","evidence":{"msg":"m1"}}`), 200, "")
	if got := string(h.f.lastBody); got != `{"reason":"late","severity":"major","evidence":{"msg":"m1"}}` {
		t.Fatalf("backend got body %s", got)
	}
	h.expect(h.do("POST", "/v1/commitments/cmt_1/confirm", buyerToken, ""), 200, "")
	if h.f.lastBody != nil {
		t.Fatalf("empty body reached backend as %q", h.f.lastBody)
	}
}

func TestAgentIDsInPaths(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{
		"/v1/agents/" + esc(vendor) + "/card",
		"/v1/agents/" + url.QueryEscape(vendor) + "/card",
		"/v1/agents/" + vendor + "/card", // unescaped, as typed
	} {
		r := h.do("GET", path, buyerToken, "")
		h.expect(r, 200, "")
		if card := decode[map[string]string](t, r); card["agentId"] != vendor {
			t.Fatalf("%s: card %v", path, card)
		}
	}
	for _, path := range []string{"/v1/trust/" + esc(vendor), "/v1/trust/" + vendor} {
		if ti := decode[TrustInfo](t, h.do("GET", path, buyerToken, "")); ti.AgentID != vendor {
			t.Fatalf("%s: trust %+v", path, ti)
		}
	}
	h.expect(h.do("DELETE", "/v1/agents/"+eve, adminToken, ""), 204, "")
}

func TestQueries(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/v1/discover?capability=gpu-hours&min_trust=40.5&limit=5", buyerToken, "")
	h.expect(r, 200, "")
	if q := h.f.discover; q != (DiscoverQuery{Capability: "gpu-hours", MinTrust: 40.5, Limit: 5}) {
		t.Fatalf("query %+v", q)
	}
	dr := decode[DiscoverResult](t, r)
	if len(dr.Agents) != 1 || dr.Agents[0].Trust.Score != 80 {
		t.Fatalf("result %+v", dr)
	}
	h.do("GET", "/v1/discover?capability=gpu&limit=100000", buyerToken, "")
	if h.f.discover.Limit != maxDiscoverLimit {
		t.Fatalf("limit %d not capped", h.f.discover.Limit)
	}
	h.do("GET", "/v1/discover?capability=gpu", buyerToken, "")
	if h.f.discover.Limit != defaultDiscoverLimit {
		t.Fatalf("default limit %d", h.f.discover.Limit)
	}
	if r := h.do("GET", "/v1/discover?capability=none", buyerToken, ""); string(r.body) != "{\"agents\":[]}\n" {
		t.Fatalf("empty result %s", r.body)
	}
	for _, q := range []string{"", "?min_trust=5", "?capability=g&min_trust=x", "?capability=g&min_trust=101",
		"?capability=g&min_trust=NaN", "?capability=g&min_trust=nan", "?capability=g&min_trust=Inf", "?capability=g&min_trust=-Inf",
		"?capability=g&min_trust=-0.5", "?capability=g&min_trust=100.01", "?capability=g&min_trust=1e309", "?capability=g&limit=-1", "?capability=g&limit=0"} {
		h.expect(h.do("GET", "/v1/discover"+q, buyerToken, ""), 400, CodeBadRequest)
	}
	ep := decode[EntriesPage](t, h.do("GET", "/v1/audit/entries?from=2&limit=2", adminToken, ""))
	if ep.Size != 5 || len(ep.Entries) != 2 || ep.Entries[0].Index != 2 {
		t.Fatalf("entries %+v", ep)
	}
	h.expect(h.do("GET", "/v1/audit/entries?from=x", adminToken, ""), 400, CodeBadRequest)

	r = h.do("GET", "/v1/audit/checkpoint", buyerToken, "")
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.HasPrefix(string(r.body), "asp.example/ledger\n3\n") {
		t.Fatalf("checkpoint %q %q", r.header.Get("Content-Type"), r.body)
	}
	ni := decode[NodeInfo](t, h.do("GET", "/v1/node", adminToken, ""))
	if ni.PeerID != peer {
		t.Fatalf("node %+v", ni)
	}
	r = h.do("POST", "/v1/agents", adminToken, `{"name":"seller","capabilities":["gpu-hours"],"description":"sells"}`)
	h.expect(r, 201, "")
	if ca := decode[CreateAgentResponse](t, r); ca.AgentID != "agent://"+peer+"/seller" || ca.Token == "" {
		t.Fatalf("create %+v", ca)
	}
	if al := decode[AgentList](t, h.do("GET", "/v1/agents", adminToken, "")); len(al.Agents) != 3 {
		t.Fatalf("agents %+v", al)
	}
}

func TestOpenAPI(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/v1/openapi.json", buyerToken, "")
	h.expect(r, 200, "")
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	ids := map[string]bool{}
	for _, rt := range routes() {
		op := doc.Paths[openAPIPath(rt.Path)][strings.ToLower(rt.Method)]
		if op == nil {
			t.Errorf("route %s %s missing", rt.Method, rt.Path)
			continue
		}
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] {
			t.Errorf("%s %s: operationId %q empty or repeated", rt.Method, rt.Path, id)
		}
		ids[id] = true
		if op["x-asp-access"] != rt.Access.String() {
			t.Errorf("%s %s: access %v", rt.Method, rt.Path, op["x-asp-access"])
		}
	}
	if n := len(doc.Paths); n == 0 {
		t.Fatal("no paths")
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, ok := strings.CutPrefix(ref, "#/components/schemas/")
				if !ok || doc.Components.Schemas[name] == nil {
					t.Errorf("dangling $ref %q", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	json.Unmarshal(r.body, &all)
	walk(all)

	// Types carry their JSON names, required fields and doc comments.
	si := doc.Components.Schemas["SessionInfo"]
	props, _ := si["properties"].(map[string]any)
	for _, f := range []string{"sessionId", "state", "participants", "messages", "commitmentId"} {
		if props[f] == nil {
			t.Errorf("SessionInfo lacks %s", f)
		}
	}
	if req := si["required"].([]any); slices.Contains(req, any("commitmentId")) || !slices.Contains(req, any("sessionId")) {
		t.Errorf("SessionInfo required %v", req)
	}
	perf := doc.Components.Schemas["SendMessageRequest"]["properties"].(map[string]any)["performative"].(map[string]any)
	if !strings.Contains(perf["description"].(string), "PROPOSE") {
		t.Errorf("performative description %v", perf)
	}
	if doc.Components.Schemas["ErrorResponse"] == nil {
		t.Error("no ErrorResponse schema")
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.do("GET", "/v1/node", "", "")
	h.do("GET", "/v1/node", "wrong", "")
	h.do("GET", "/v1/audit/entries", buyerToken, "")
	h.do("POST", "/v1/agents", adminToken, `[]`)
	r := h.do("GET", "/metrics", adminToken, "")
	h.expect(r, 200, "")
	for _, want := range []string{
		`asp_api_refused_total{code="unauthorized"} 3`,
		`asp_api_refused_total{code="bad_request"} 1`,
		`asp_api_requests_total{route="GET /v1/node",status="401"} 2`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s:\n%s", want, r.body)
		}
	}
	// A second handler on the same registry shares the counters.
	h2 := newHarnessFor(t, h.f, h.f)
	h2.do("GET", "/v1/node", "", "")
	if r := h.do("GET", "/metrics", adminToken, ""); !strings.Contains(string(r.body), `asp_api_refused_total{code="unauthorized"} 4`) {
		t.Errorf("shared counters:\n%s", r.body)
	}
}

// TestBodiesStrictJSON refuses bodies that encoding/json alone reads
// without a word: a key given twice (the last wins) or a key in another
// case (folded to the field), at the top level and inside terms and body.
func TestBodiesStrictJSON(t *testing.T) {
	h := newHarness(t)
	sid := h.openSession()
	msgs := "/v1/sessions/" + sid + "/messages"
	for _, tc := range []struct{ path, tok, body string }{
		{"/v1/agents", adminToken, `{"name":"seller","name":"admin"}`},
		{"/v1/agents", adminToken, `{"Name":"seller"}`},
		{"/v1/agents", adminToken, `{"name":"seller","capabilities":["gpu"],"Capabilities":["all"]}`},
		{"/v1/sessions", buyerToken, `{"to":"` + eve + `","to":"` + vendor + `"}`},
		{"/v1/sessions", buyerToken, `{"TO":"` + vendor + `"}`},
		{msgs, buyerToken, `{"performative":"PROPOSE","performative":"ACCEPT"}`},
		{msgs, buyerToken, `{"performative":"PROPOSE","terms":{"unitPrice":"9.99","unitPrice":"2.40"}}`},
		{msgs, buyerToken, `{"performative":"PROPOSE","body":{"terms":{"quantity":"1","quantity":"1000"}}}`},
		{msgs, buyerToken, `{"Performative":"PROPOSE"}`},
		{"/v1/commitments/cmt_1/dispute", buyerToken, `{"reason":"late","reason":"none"}`},
		{"/v1/commitments/cmt_1/dispute", buyerToken, `{"Reason":"late"}`},
		{"/v1/commitments/cmt_1/fulfill", vendorToken, `{"evidence":{"hours":1000,"hours":1}}`},
	} {
		r := h.do("POST", tc.path, tc.tok, tc.body)
		if r.status != 400 || r.errCode(t) != CodeBadRequest {
			t.Errorf("POST %s %s: %d %s", tc.path, tc.body, r.status, r.body)
		}
	}
	// The same bodies without the second key or in the field's case pass.
	h.expect(h.do("POST", "/v1/agents", adminToken, `{"name":"seller"}`), 201, "")
	h.expect(h.do("POST", msgs, buyerToken, `{"performative":"PROPOSE","terms":{"unitPrice":"2.40"}}`), 201, "")
}
