package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/protocol"
)

const (
	adminToken = "admin-token"
	peerID     = "12D3KooWFake"
	vendor     = "agent://12D3KooWOther/vendor"
)

// backend is an in-memory api.Backend behind the real node/api handler,
// after node/api's own test fake. Methods the client does not call are
// left to the embedded nil interface: calling one panics, and the handler
// answers 500.
type backend struct {
	api.Backend

	mu       sync.Mutex
	tokens   map[string]api.Principal
	agents   map[string]api.AgentInfo
	sessions map[string]*api.SessionInfo
	lastSend api.SendMessageRequest

	lastDiscover api.DiscoverQuery
	lastAction   string
	busy         bool // SendMessage answers busy
	events       eventLog
}

func newBackend() *backend {
	return &backend{
		tokens:   map[string]api.Principal{adminToken: {Admin: true}},
		agents:   map[string]api.AgentInfo{},
		sessions: map[string]*api.SessionInfo{},
	}
}

func (b *backend) Authenticate(token string) (api.Principal, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.tokens[token]
	if !ok {
		return api.Principal{}, errors.New("unknown token")
	}
	return p, nil
}

func (b *backend) NodeInfo(context.Context) (api.NodeInfo, error) {
	return api.NodeInfo{PeerID: peerID, Org: "acme", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Version: "test"}, nil
}

func (b *backend) CreateAgent(_ context.Context, req api.CreateAgentRequest) (api.CreateAgentResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := "agent://" + peerID + "/" + req.Name
	if _, ok := b.agents[id]; ok {
		return api.CreateAgentResponse{}, api.Conflict(api.CodeDuplicate, "agent %s exists", id)
	}
	b.agents[id] = api.AgentInfo{AgentID: id, Name: req.Name, Capabilities: req.Capabilities}
	tok := "tok-" + req.Name
	b.tokens[tok] = api.Principal{Agent: id}
	return api.CreateAgentResponse{AgentID: id, Token: tok}, nil
}

func (b *backend) ListAgents(context.Context) ([]api.AgentInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var as []api.AgentInfo
	for _, a := range b.agents {
		as = append(as, a)
	}
	return as, nil
}

func (b *backend) OpenSession(_ context.Context, from string, req api.OpenSessionRequest) (api.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &api.SessionInfo{SessionID: fmt.Sprintf("ses_%d", len(b.sessions)+1), State: "OPEN",
		Participants: []string{from, req.To}, Messages: []json.RawMessage{}}
	b.sessions[s.SessionID] = s
	return *s, nil
}

func (b *backend) SendMessage(_ context.Context, from, sid string, req api.SendMessageRequest) (api.SendMessageResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[sid]
	if !ok || s.Participants[0] != from {
		return api.SendMessageResult{}, api.NotFound("no session %s", sid)
	}
	if b.busy {
		return api.SendMessageResult{}, api.Conflict(protocol.CodeBusy, "the counterparty is moving")
	}
	if req.Performative == "ACCEPT" && len(s.Messages) == 0 {
		return api.SendMessageResult{}, api.InvalidTransition("ACCEPT without an offer")
	}
	b.lastSend = req
	env, _ := json.Marshal(map[string]any{"performative": req.Performative, "sender": from, "terms": req.Terms})
	s.Messages = append(s.Messages, env)
	s.State = "NEGOTIATING"
	return api.SendMessageResult{MessageID: "msg_1", SequenceNumber: uint64(len(s.Messages)), Hash: "ab", State: s.State}, nil
}

func (b *backend) Session(_ context.Context, p api.Principal, sid string) (api.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[sid]
	if !ok || (!p.Admin && s.Participants[0] != p.Agent) {
		return api.SessionInfo{}, api.NotFound("no session %s", sid)
	}
	return *s, nil
}

func (b *backend) Commitments(_ context.Context, p api.Principal) ([]api.CommitmentInfo, error) {
	if p.Admin {
		return []api.CommitmentInfo{{CommitmentID: "cmt_1"}, {CommitmentID: "cmt_2"}}, nil
	}
	return []api.CommitmentInfo{}, nil
}

func (b *backend) Commitment(_ context.Context, p api.Principal, id string) (api.CommitmentInfo, error) {
	if id != "cmt_1" || !p.Admin {
		return api.CommitmentInfo{}, api.NotFound("no commitment %s", id)
	}
	return api.CommitmentInfo{CommitmentID: id, State: "ACTIVE", Terms: json.RawMessage(`{"unitPrice":"2.55"}`)}, nil
}

func (b *backend) Checkpoint(context.Context) ([]byte, error) {
	return []byte("asp.example/ledger\n3\nq1Tz0w==\n"), nil
}

func (b *backend) Entries(_ context.Context, from, limit uint64) (api.EntriesPage, error) {
	var es []api.EntryInfo
	for i := from; i < from+limit && i < 5; i++ {
		es = append(es, api.EntryInfo{Index: i, Kind: "agent", Hash: "00"})
	}
	return api.EntriesPage{Size: 5, Entries: es}, nil
}

var quiet = slog.New(slog.DiscardHandler)

// serve runs node/api's handler over b on a loopback HTTP server and
// returns an admin client of it.
func serve(t *testing.T, b api.Backend) *client.Client {
	t.Helper()
	srv := httptest.NewServer(api.New(b, api.WithLogger(quiet)))
	t.Cleanup(srv.Close)
	return client.New(srv.URL+"/", adminToken)
}

// Each method sends the request CONTRACT.md names and decodes the answer
// into node/api's types.
func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := newBackend()
	admin := serve(t, b)

	info, err := admin.Node(ctx)
	if err != nil || info.PeerID != peerID || info.Org != "acme" {
		t.Fatalf("Node = %+v, %v", info, err)
	}
	created, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer", Capabilities: []string{"buy"}})
	if err != nil || created.AgentID != "agent://"+peerID+"/buyer" || created.Token != "tok-buyer" {
		t.Fatalf("CreateAgent = %+v, %v", created, err)
	}
	agents, err := admin.Agents(ctx)
	if err != nil || len(agents) != 1 || agents[0].Name != "buyer" {
		t.Fatalf("Agents = %+v, %v", agents, err)
	}

	buyer := admin.WithToken(created.Token)
	if admin.Token != adminToken {
		t.Fatal("WithToken changed the original client")
	}
	s, err := buyer.OpenSession(ctx, vendor)
	if err != nil || s.SessionID != "ses_1" || s.State != "OPEN" {
		t.Fatalf("OpenSession = %+v, %v", s, err)
	}
	terms := json.RawMessage(`{"quantity":"1000","unitPrice":"2.40"}`)
	res, err := buyer.Send(ctx, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms})
	if err != nil || res.SequenceNumber != 1 || res.State != "NEGOTIATING" {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if got := string(b.lastSend.Terms); got != string(terms) {
		t.Errorf("terms arrived as %s", got)
	}
	got, err := buyer.Session(ctx, s.SessionID)
	if err != nil || len(got.Messages) != 1 || got.Participants[1] != vendor {
		t.Fatalf("Session = %+v, %v", got, err)
	}

	cs, err := admin.Commitments(ctx)
	if err != nil || len(cs) != 2 {
		t.Fatalf("Commitments = %+v, %v", cs, err)
	}
	c, err := admin.Commitment(ctx, "cmt_1")
	if err != nil || c.State != "ACTIVE" || string(c.Terms) != `{"unitPrice":"2.55"}` {
		t.Fatalf("Commitment = %+v, %v", c, err)
	}
	cp, err := admin.Checkpoint(ctx)
	if err != nil || !strings.HasPrefix(cp, "asp.example/ledger\n3\n") {
		t.Fatalf("Checkpoint = %q, %v", cp, err)
	}
	page, err := admin.Entries(ctx, 3, 10)
	if err != nil || page.Size != 5 || len(page.Entries) != 2 || page.Entries[0].Index != 3 {
		t.Fatalf("Entries = %+v, %v", page, err)
	}
}

// An error answer comes back as node/api's *api.Error, with the status and
// code the server chose.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	admin := serve(t, newBackend())
	if _, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer", Capabilities: []string{}}); err != nil {
		t.Fatal(err)
	}
	buyer := admin.WithToken("tok-buyer")
	s, err := buyer.OpenSession(ctx, vendor)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"duplicate agent", func() error {
			_, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer", Capabilities: []string{}})
			return err
		}, http.StatusConflict, api.CodeDuplicate},
		{"illegal move", func() error {
			_, err := buyer.Send(ctx, s.SessionID, api.SendMessageRequest{Performative: "ACCEPT"})
			return err
		}, http.StatusConflict, api.CodeInvalidTransition},
		{"unknown session", func() error {
			_, err := buyer.Session(ctx, "ses_404")
			return err
		}, http.StatusNotFound, api.CodeNotFound},
		{"unknown token", func() error {
			_, err := admin.WithToken("nobody").Commitments(ctx)
			return err
		}, http.StatusUnauthorized, api.CodeUnauthorized},
		{"agent endpoint with the admin token", func() error {
			_, err := admin.OpenSession(ctx, vendor)
			return err
		}, http.StatusForbidden, api.CodeUnauthorized},
	} {
		err := tc.call()
		var e *api.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %v (%T), want an *api.Error", tc.name, err, err)
			continue
		}
		if e.Status != tc.status || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s: status %d code %q message %q, want %d %q", tc.name, e.Status, e.Code, e.Message, tc.status, tc.code)
		}
		if !client.IsCode(err, tc.code) || client.IsCode(err, api.CodeInternal) {
			t.Errorf("%s: IsCode disagrees with %v", tc.name, err)
		}
	}
}

// An error answer that is not the API's JSON (a proxy in the way, say)
// still comes back as an *api.Error, with the status text as its code.
func TestClientErrorNotJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, "").Node(context.Background())
	var e *api.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != "Bad Gateway" || e.Message != "upstream down" {
		t.Fatalf("err = %v (%+v)", err, e)
	}
}

// FromHome reads the base URL and admin token a running node left in its
// home, and says when the node is not running.
func TestFromHome(t *testing.T) {
	dir := t.TempDir()
	if _, err := client.FromHome(dir); !errors.Is(err, client.ErrNotRunning) {
		t.Fatalf("FromHome without an api file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.FromHome(dir); !errors.Is(err, client.ErrNotRunning) {
		t.Fatalf("FromHome with an empty api file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api"), []byte("http://127.0.0.1:41234/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.FromHome(dir); err == nil || errors.Is(err, client.ErrNotRunning) {
		t.Fatalf("FromHome without an admin token: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.FromHome(dir)
	if err != nil || c.BaseURL != "http://127.0.0.1:41234" || c.Token != adminToken {
		t.Fatalf("FromHome = %+v, %v", c, err)
	}
}
