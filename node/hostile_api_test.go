package node

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// apiCall serves one request through h and returns the status and body.
func apiCall(t *testing.T, h http.Handler, method, path, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// apiError decodes an error answer.
func apiError(t *testing.T, body string) api.ErrorDetail {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error answer: %q", body)
	}
	return e.Error
}

func TestHostileAPI(t *testing.T) {
	p := newPair(t)
	bn, vn := p.buyerNode, p.vendorNode
	hb, hv := bn.Handler(), vn.Handler()
	adminB, err := ReadAdminToken(bn.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	adminV, err := ReadAdminToken(vn.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	newAgent := func(h http.Handler, admin, name string) (id, token string) {
		t.Helper()
		code, body := apiCall(t, h, "POST", "/v1/agents", admin, `{"name":"`+name+`","capabilities":["procurement"]}`)
		if code != 201 {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
		var r api.CreateAgentResponse
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return r.AgentID, r.Token
	}
	alice, aliceTok := newAgent(hb, adminB, "alice")
	carol, carolTok := newAgent(hb, adminB, "carol")
	bob, bobTok := newAgent(hv, adminV, "bob")
	temp, tempTok := newAgent(hb, adminB, "temp")
	if code, body := apiCall(t, hb, "DELETE", "/v1/agents/"+url.PathEscape(temp), adminB, ""); code != 204 {
		t.Fatalf("delete temp: %d %s", code, body)
	}

	// refused serves a request that must be refused with status and code,
	// counted in asp_api_refused_total, and change neither node.
	refused := func(t *testing.T, h http.Handler, n *Node, method, path, token, body string, status int, code string) api.ErrorDetail {
		t.Helper()
		bb, bv := fingerprint(t, bn), fingerprint(t, vn)
		count := metric(t, n, apiRefused, "code", code)
		got, out := apiCall(t, h, method, path, token, body)
		if got != status {
			t.Fatalf("%s %s: status %d %s, want %d", method, path, got, out, status)
		}
		e := apiError(t, out)
		if e.Code != code {
			t.Fatalf("%s %s: code %q (%s), want %q", method, path, e.Code, e.Message, code)
		}
		if e.Message == "" {
			t.Errorf("%s %s: error without a message", method, path)
		}
		t.Logf("%s %s: %d %s: %s", method, path, got, e.Code, e.Message)
		if c := metric(t, n, apiRefused, "code", code); c != count+1 {
			t.Errorf("%s{code=%q} = %v, want %v", apiRefused, code, c, count+1)
		}
		assertUnchanged(t, method+" "+path, bn, bb)
		assertUnchanged(t, method+" "+path, vn, bv)
		return e
	}

	// Honest moves first, with the nodes' timer loops parked (see
	// parkTimers); everything after is refused before any move is made.
	// Three sessions between alice (buyer node) and bob (vendor node):
	// open (INTRODUCED, nothing on the table), offered (alice's offer is
	// open) and agreed (bob accepted alice's offer: a commitment).
	move := func(h http.Handler, tok, path, body string) api.SendMessageResult {
		t.Helper()
		code, out := apiCall(t, h, "POST", path, tok, body)
		if code != 201 {
			t.Fatalf("POST %s %s: %d %s", path, body, code, out)
		}
		var r api.SendMessageResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	openSession := func() (api.SessionInfo, string) {
		t.Helper()
		code, body := apiCall(t, hb, "POST", "/v1/sessions", aliceTok, `{"to":"`+bob+`"}`)
		if code != 201 {
			t.Fatalf("open session: %d %s", code, body)
		}
		var si api.SessionInfo
		if err := json.Unmarshal([]byte(body), &si); err != nil {
			t.Fatal(err)
		}
		if si.State != "INTRODUCED" {
			t.Fatalf("session state %s, want INTRODUCED", si.State)
		}
		return si, "/v1/sessions/" + si.SessionID + "/messages"
	}
	si, msgs := openSession()
	offered, offeredMsgs := openSession()
	offer := move(hb, aliceTok, offeredMsgs, `{"performative":"PROPOSE","terms":`+string(terms("2.40"))+`}`)
	_, agreedMsgs := openSession()
	agreedOffer := move(hb, aliceTok, agreedMsgs, `{"performative":"PROPOSE","terms":`+string(terms("2.55"))+`}`)
	acc := move(hv, bobTok, agreedMsgs, `{"performative":"ACCEPT"}`)
	if acc.CommitmentID == "" {
		t.Fatal("ACCEPT formed no commitment")
	}
	awaitActive(t, bn, acc.CommitmentID)
	awaitActive(t, vn, acc.CommitmentID)

	t.Run("missing and wrong tokens", func(t *testing.T) {
		routes := []struct{ method, path, body string }{
			{"GET", "/v1/node", ""},
			{"GET", "/v1/agents", ""},
			{"POST", "/v1/agents", `{"name":"intruder"}`},
			{"POST", "/v1/sessions", `{"to":"` + bob + `"}`},
			{"GET", "/v1/sessions/" + si.SessionID, ""},
			{"POST", msgs, `{"performative":"PROPOSE","terms":` + string(terms("2.40")) + `}`},
			{"GET", "/v1/commitments", ""},
			{"GET", "/v1/audit/entries", ""},
			{"GET", "/metrics", ""},
		}
		for _, rt := range routes {
			for _, tok := range []string{"", "wrong", strings.Repeat("0", 64), bobTok, tempTok} {
				refused(t, hb, bn, rt.method, rt.path, tok, rt.body, 401, "unauthorized")
			}
			// A token under another scheme.
			bb := fingerprint(t, bn)
			req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
			req.Header.Set("Authorization", "Basic "+adminB)
			rec := httptest.NewRecorder()
			hb.ServeHTTP(rec, req)
			if rec.Code != 401 || apiError(t, rec.Body.String()).Code != "unauthorized" {
				t.Errorf("%s %s with Basic auth: %d %s", rt.method, rt.path, rec.Code, rec.Body)
			}
			assertUnchanged(t, "Basic auth", bn, bb)
		}
	})
	t.Run("missing token on the real listener", func(t *testing.T) {
		resp, err := http.Get(bn.APIURL() + "/v1/agents")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 401 || apiError(t, string(out)).Code != "unauthorized" {
			t.Fatalf("GET /v1/agents without a token: %d %s", resp.StatusCode, out)
		}
	})
	t.Run("agent token on admin routes", func(t *testing.T) {
		refused(t, hb, bn, "POST", "/v1/agents", aliceTok, `{"name":"intruder"}`, 403, "unauthorized")
		refused(t, hb, bn, "GET", "/v1/agents", aliceTok, "", 403, "unauthorized")
		refused(t, hb, bn, "DELETE", "/v1/agents/"+url.PathEscape(carol), aliceTok, "", 403, "unauthorized")
		refused(t, hb, bn, "GET", "/v1/audit/entries", aliceTok, "", 403, "unauthorized")
		refused(t, hb, bn, "GET", "/metrics", aliceTok, "", 403, "unauthorized")
	})
	t.Run("admin token on agent routes", func(t *testing.T) {
		refused(t, hb, bn, "POST", "/v1/sessions", adminB, `{"to":"`+bob+`"}`, 403, "unauthorized")
		refused(t, hb, bn, "POST", msgs, adminB, `{"performative":"PROPOSE","terms":`+string(terms("2.40"))+`}`, 403, "unauthorized")
	})
	t.Run("agent acting on another agent's session", func(t *testing.T) {
		refused(t, hb, bn, "GET", "/v1/sessions/"+si.SessionID, carolTok, "", 404, "not_found")
		refused(t, hb, bn, "POST", msgs, carolTok, `{"performative":"PROPOSE","terms":`+string(terms("2.40"))+`}`, 404, "not_found")
		refused(t, hb, bn, "POST", msgs, carolTok, `{"performative":"CLOSE"}`, 404, "not_found")
		// The counterparty's agent cannot act through the other node either.
		refused(t, hb, bn, "POST", msgs, bobTok, `{"performative":"ACCEPT"}`, 401, "unauthorized")
		// Nor can the sender be named in the body.
		refused(t, hb, bn, "POST", msgs, carolTok, `{"performative":"CLOSE","sender":"`+alice+`"}`, 400, "bad_request")
		code, out := apiCall(t, hb, "GET", "/v1/sessions", carolTok, "")
		if code != 200 || strings.Contains(out, si.SessionID) {
			t.Fatalf("carol's session list: %d %s", code, out)
		}
	})
	t.Run("numbers where decimal strings belong", func(t *testing.T) {
		cases := []struct{ name, terms, field string }{
			{"unitPrice as a JSON number", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":2.55,"currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"unitPrice as an integer", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":3,"currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"quantity as a JSON number", `{"resource":"gpu-hours","quantity":1000,"unit":"hour","unitPrice":"2.55","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "quantity"},
			{"unitPrice in exponent form", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.55e0","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"unitPrice not a number", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.5.5","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"unitPrice NaN", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"NaN","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE","terms":`+tc.terms+`}`, 400, "bad_request")
				if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(tc.field)) {
					t.Errorf("message %q does not name %s", e.Message, tc.field)
				}
			})
		}
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE","terms":"2.55"}`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"BUY","terms":`+string(terms("2.55"))+`}`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE","terms":`+string(terms("2.55"))+`,"price":2.55}`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `[{"performative":"PROPOSE"}]`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE"`, 400, "bad_request")
	})
	t.Run("oversized and malformed admin input", func(t *testing.T) {
		big := `{"performative":"INFORM","body":{"text":"` + strings.Repeat("a", 8<<20) + `"}}`
		refused(t, hb, bn, "POST", msgs, aliceTok, big, 400, "bad_request")
		for _, name := range []string{"../admin", "a b", "", strings.Repeat("x", 65), "agent://x/y"} {
			b, _ := json.Marshal(map[string]any{"name": name})
			refused(t, hb, bn, "POST", "/v1/agents", adminB, string(b), 400, "bad_request")
		}
		refused(t, hb, bn, "POST", "/v1/agents", adminB, `{"name":"dave","capabilities":["UPPER CASE"]}`, 400, "bad_request")
		refused(t, hb, bn, "POST", "/v1/agents", adminB, `{"name":"alice"}`, 409, "duplicate")
		refused(t, hb, bn, "POST", "/v1/sessions", aliceTok, `{"to":"not an agent id"}`, 400, "bad_request")
		refused(t, hb, bn, "POST", "/v1/sessions", aliceTok, `{"to":"`+carol+`"}`, 400, "bad_request")
	})
	t.Run("illegal moves", func(t *testing.T) {
		// Nothing is on the table yet.
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"ACCEPT"}`, 409, "invalid_transition")
		refused(t, hv, vn, "POST", msgs, bobTok, `{"performative":"ACCEPT"}`, 409, "invalid_transition")
		refused(t, hv, vn, "POST", msgs, bobTok, `{"performative":"COUNTER","terms":`+string(terms("2.80"))+`}`, 409, "invalid_transition")
		// Alice cannot accept her own offer.
		refused(t, hb, bn, "POST", offeredMsgs, aliceTok, `{"performative":"ACCEPT"}`, 409, "invalid_transition")
		refused(t, hb, bn, "POST", offeredMsgs, aliceTok, `{"performative":"ACCEPT","referenceId":"`+offer.MessageID+`"}`, 409, "invalid_transition")
		// Bob cannot accept the invitation a second time.
		code, out := apiCall(t, hv, "GET", "/v1/sessions/"+offered.SessionID, bobTok, "")
		var sess api.SessionInfo
		if err := json.Unmarshal([]byte(out), &sess); code != 200 || err != nil || len(sess.Messages) != 3 {
			t.Fatalf("bob's session: %d %s", code, out)
		}
		var inv protocol.Envelope
		if err := json.Unmarshal(sess.Messages[0], &inv); err != nil {
			t.Fatal(err)
		}
		refused(t, hv, vn, "POST", offeredMsgs, bobTok, `{"performative":"ACCEPT","referenceId":"`+inv.MessageID+`"}`, 409, "invalid_transition")
		// An accepted offer cannot be accepted again, by either side.
		refused(t, hv, vn, "POST", agreedMsgs, bobTok, `{"performative":"ACCEPT","referenceId":"`+agreedOffer.MessageID+`"}`, 409, "invalid_transition")
		refused(t, hb, bn, "POST", agreedMsgs, aliceTok, `{"performative":"ACCEPT","referenceId":"`+agreedOffer.MessageID+`"}`, 409, "invalid_transition")
	})
	t.Run("commitments of other agents", func(t *testing.T) {
		refused(t, hb, bn, "GET", "/v1/commitments/"+acc.CommitmentID, carolTok, "", 404, "not_found")
		refused(t, hv, vn, "GET", "/v1/commitments/"+acc.CommitmentID, aliceTok, "", 401, "unauthorized")
		code, out := apiCall(t, hb, "GET", "/v1/commitments", carolTok, "")
		if code != 200 || strings.Contains(out, acc.CommitmentID) {
			t.Fatalf("carol's commitment list: %d %s", code, out)
		}
		if code, out := apiCall(t, hb, "GET", "/v1/commitments/"+acc.CommitmentID, aliceTok, ""); code != 200 {
			t.Fatalf("alice's commitment: %d %s", code, out)
		}
		for _, n := range []*Node{bn, vn} {
			c := awaitActive(t, n, acc.CommitmentID)
			if len(c.Receipts) != 2 {
				t.Errorf("commitment on %s has %d receipts", n.peerID, len(c.Receipts))
			}
		}
	})
}
