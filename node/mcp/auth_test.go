package mcp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aspnode/asp/testnet"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",` +
	`"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func post(t *testing.T, ctx context.Context, url, token, session, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// /mcp needs an agent's token: none, a wrong one and the admin token are
// refused before any MCP session exists, and a session opened with one
// agent's token cannot be used with another's.
func TestMCPNeedsTheAgentsToken(t *testing.T) {
	net := testnet.New(t, 1)
	a := net.CreateAgent(0, "buyer")
	other := net.CreateAgent(0, "auditor")
	ctx, cancel := net.Context()
	defer cancel()
	url := net.Nodes[0].APIURL() + "/mcp"

	for name, tok := range map[string]string{"no token": "", "unknown token": "nope", "admin token": net.Nodes[0].Admin().Token} {
		if resp, body := post(t, ctx, url, tok, "", initialize); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, resp.StatusCode, body)
		}
	}

	resp, body := post(t, ctx, url, a.Token, "", initialize)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" || !strings.Contains(body, `"serverInfo"`) {
		t.Fatalf("initialize with the agent's token: %d, session %q, %s", resp.StatusCode, sid, body)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if resp, body := post(t, ctx, url, other.Token, sid, list); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another agent's token on the session: %d %s, want 403", resp.StatusCode, body)
	}
	if resp, body := post(t, ctx, url, a.Token, sid, list); resp.StatusCode != http.StatusOK || !strings.Contains(body, "send_move") {
		t.Errorf("the session's own token: %d %s", resp.StatusCode, body)
	}
}
