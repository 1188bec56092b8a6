// Package a2a serves the node's agent cards in the form of the A2A
// protocol's AgentCard (registry.Card.A2A), for A2A clients:
//
//   - GET /v1/agents/{agentId}/card?format=a2a: any agent's card, local or
//     remote, with the same token and answers as the card route itself;
//   - GET /.well-known/agent-card.json: the card of one of the node's own
//     agents, without a token (A2A's well-known URI): ?agent=NAME chooses
//     it, else the first by name.
//
// The signed ASP card rides inside (the registry.A2ACardExtension params):
// an A2A client that verifies it checks the organization's signature and
// the agent's certificate, the same key that signs the agent's
// commitments. The A2A document around it is not signed: a proxy could
// change its name or skills, not the embedded card.
package a2a

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/registry"
)

// WellKnownPath is A2A's well-known URI of an agent card.
const WellKnownPath = "/.well-known/agent-card.json"

// Agents lists the node's own agents (api.Backend.ListAgents).
type Agents func(ctx context.Context) ([]api.AgentInfo, error)

// Card returns an agent's signed card (api.Backend.AgentCard).
type Card func(ctx context.Context, agentID string) (json.RawMessage, error)

// Mount returns apiHandler with the A2A forms of the cards served beside
// it.
func Mount(apiHandler http.Handler, agents Agents, card Card) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == WellKnownPath:
			wellKnown(w, r, agents, card)
		case r.Method == http.MethodGet && r.URL.Query().Get("format") == "a2a" &&
			strings.HasPrefix(r.URL.Path, "/v1/agents/") && strings.HasSuffix(r.URL.Path, "/card"):
			cardRoute(w, r, apiHandler)
		default:
			apiHandler.ServeHTTP(w, r)
		}
	})
}

// cardRoute asks the API for the signed card (its token check, its errors)
// and answers its A2A form.
func cardRoute(w http.ResponseWriter, r *http.Request, apiHandler http.Handler) {
	in := r.Clone(r.Context())
	q := in.URL.Query()
	q.Del("format")
	in.URL.RawQuery = q.Encode()
	in.RequestURI = ""
	rec := httptest.NewRecorder()
	apiHandler.ServeHTTP(rec, in)
	if rec.Code != http.StatusOK {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	answer(w, rec.Body.Bytes())
}

func wellKnown(w http.ResponseWriter, r *http.Request, agents Agents, card Card) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, api.CodeBadRequest, "use GET")
		return
	}
	list, err := agents(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the node cannot list its agents")
		return
	}
	slices.SortFunc(list, func(a, b api.AgentInfo) int { return strings.Compare(a.Name, b.Name) })
	name := r.URL.Query().Get("agent")
	i := slices.IndexFunc(list, func(a api.AgentInfo) bool { return name == "" || a.Name == name })
	if i < 0 {
		writeError(w, http.StatusNotFound, api.CodeNotFound, "no such agent on this node")
		return
	}
	raw, err := card(r.Context(), list[i].AgentID)
	if err != nil {
		writeError(w, http.StatusNotFound, api.CodeNotFound, "the agent has no card yet")
		return
	}
	answer(w, raw)
}

// answer renders a signed card (the API's JSON form) as an A2A AgentCard.
func answer(w http.ResponseWriter, raw []byte) {
	var c registry.Card
	if err := json.Unmarshal(raw, &c); err != nil {
		writeError(w, http.StatusBadGateway, api.CodeInternal, "the card could not be read")
		return
	}
	b, err := json.Marshal(c.A2A(""))
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "the card could not be rendered")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
