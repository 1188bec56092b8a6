package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// httpCall makes one request to n's HTTP API with token and returns the
// status and body.
func httpCall(t *testing.T, n *Node, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.APIURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// TestCreateAgentRefusesOversizedCard creates agents through a real
// node's HTTP API: one whose card could not stay within the card limit
// (a 900 KB description, capabilities too long) is refused with 400
// bad_request and not created; the largest description that fits gives an
// agent whose card is served.
func TestCreateAgentRefusesOversizedCard(t *testing.T) {
	home := filepath.Join(t.TempDir(), "org")
	n := startNode(t, home)
	t.Cleanup(func() { n.Close() })
	admin, err := ReadAdminToken(home)
	if err != nil {
		t.Fatal(err)
	}
	var longCaps []string
	for i := 0; i < 32; i++ {
		longCaps = append(longCaps, fmt.Sprintf(`"%s.%s.%02d"`, strings.Repeat("a", 62), strings.Repeat("b", 60), i))
	}
	for name, body := range map[string]string{
		"huge":     `{"name":"huge","capabilities":["gpu"],"description":"` + strings.Repeat("x", 900<<10) + `"}`,
		"longcaps": `{"name":"longcaps","capabilities":[` + strings.Join(longCaps, ",") + `]}`,
	} {
		st, b := httpCall(t, n, "POST", "/v1/agents", admin, body)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if st != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Error.Code != "bad_request" || e.Error.Message == "" {
			t.Errorf("%s: %d %.200s, want 400 bad_request", name, st, b)
		}
		if a := n.localAgent("agent://" + n.PeerID() + "/" + name); a != nil {
			t.Errorf("%s: refused agent exists", name)
		}
	}
	st, b := httpCall(t, n, "POST", "/v1/agents", admin,
		`{"name":"full","capabilities":["compute.gpu-hours","storage"],"description":"`+strings.Repeat("d", 1024)+`"}`)
	if st != http.StatusCreated {
		t.Fatalf("fitting agent: %d %s", st, b)
	}
	var created struct{ AgentID string }
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	st, b = httpCall(t, n, "GET", "/v1/agents/"+url.PathEscape(created.AgentID)+"/card", admin, "")
	var card struct{ Description string }
	if st != http.StatusOK || json.Unmarshal(b, &card) != nil || len(card.Description) != 1024 {
		t.Fatalf("card of the fitting agent: %d %.300s", st, b)
	}
}
