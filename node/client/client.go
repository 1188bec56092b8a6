// Package client is the Go SDK of an ASP node: a client of the node's local
// HTTP API, the server of which is package node/api. It speaks the API as
// CONTRACT.md names it, with node/api's request and response types, so that
// the two cannot drift apart: a field added to api.SessionInfo is a field
// the client decodes.
//
// A Client acts with one bearer token: the node's admin token (FromHome
// reads it from the node's home) or an agent token (from CreateAgent), and
// WithToken switches between them. Every method is one request.
//
// Errors. An answer with a non-2xx status comes back as an *api.Error, the
// server's own error type, carrying the HTTP status and the ASP error code
// (api.CodeDuplicate, api.CodeInvalidTransition, ...); the body of an
// answer that is not the API's JSON error becomes the message, with the
// status text as the code. Test with IsCode or errors.As:
//
//	var e *api.Error
//	if errors.As(err, &e) && e.Status == http.StatusConflict { ... }
//
// Transport failures (no node listening, a cancelled context) are returned
// wrapped as they are. The message of an error answer is the remote node's
// text: show it, do not parse it.
//
// The asp command line, the test networks and the integration tests use
// this package.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aspnode/asp/node/api"
)

// Files of a node's home the client reads (see node.APIFile and
// node.AdminTokenFile).
const (
	apiFile        = "api"
	adminTokenFile = "admin.token"
)

// Client calls one node's API with one bearer token. It is safe for
// concurrent use.
type Client struct {
	// BaseURL is the API base URL, for example http://127.0.0.1:41234.
	BaseURL string
	// Token is the bearer token sent with every request: the node's admin
	// token or an agent token.
	Token string
	// HTTP is the HTTP client used; nil means one with a 30 s timeout.
	HTTP *http.Client
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// New returns a client for baseURL acting with token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// ErrNotRunning is returned by FromHome when the home has no api file: the
// node is not serving. Test with errors.Is.
var ErrNotRunning = errors.New("node not running")

// FromHome returns an admin client for the node whose home is dir: the base
// URL comes from dir/api (present while the node serves) and the token from
// dir/admin.token.
func FromHome(dir string) (*Client, error) {
	base, err := ReadAPIFile(dir)
	if err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(dir, adminTokenFile))
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	return New(base, strings.TrimSpace(string(tok))), nil
}

// ReadAPIFile returns the API base URL a node wrote to dir/api, or an error
// wrapping ErrNotRunning when there is none.
func ReadAPIFile(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, apiFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: no %s (start it with: asp node --home %s)", ErrNotRunning, filepath.Join(dir, apiFile), dir)
	}
	if err != nil {
		return "", err
	}
	base := strings.TrimSpace(string(b))
	if base == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrNotRunning, filepath.Join(dir, apiFile))
	}
	return strings.TrimRight(base, "/"), nil
}

// WithToken returns a copy of c acting with another token.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.Token = token
	return &d
}

// Error is an error answer of the API: the HTTP status and the
// {"error":{"code","message"}} body, as node/api writes it. It is
// node/api's own type; Err is always nil on the client side.
type Error = api.Error

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == code
}

// Do sends a request with in (if not nil) as its JSON body and decodes a
// 2xx answer into out (if not nil). path starts with "/".
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	h := c.HTTP
	if h == nil {
		h = defaultHTTP
	}
	resp, err := h.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorResponse
		e := &api.Error{Status: resp.StatusCode}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		} else {
			e.Code, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("%s %s (HTTP %d): %w", method, path, resp.StatusCode, e)
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(raw)
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Node returns GET /v1/node.
func (c *Client) Node(ctx context.Context) (api.NodeInfo, error) {
	var v api.NodeInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/node", nil, &v)
}

// CreateAgent creates an agent (admin token).
func (c *Client) CreateAgent(ctx context.Context, req api.CreateAgentRequest) (api.CreateAgentResponse, error) {
	var v api.CreateAgentResponse
	return v, c.Do(ctx, http.MethodPost, "/v1/agents", req, &v)
}

// Agents lists the node's agents (admin token).
func (c *Client) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	var v api.AgentList
	return v.Agents, c.Do(ctx, http.MethodGet, "/v1/agents", nil, &v)
}

// OpenSession opens a session from the token's agent to the agent to.
func (c *Client) OpenSession(ctx context.Context, to string) (api.SessionInfo, error) {
	var v api.SessionInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/sessions", api.OpenSessionRequest{To: to}, &v)
}

// Send sends one message in a session as the token's agent.
func (c *Client) Send(ctx context.Context, sessionID string, req api.SendMessageRequest) (api.SendMessageResult, error) {
	var v api.SendMessageResult
	return v, c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/messages", req, &v)
}

// Session returns a session with its signed transcript.
func (c *Client) Session(ctx context.Context, id string) (api.SessionInfo, error) {
	var v api.SessionInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &v)
}

// Commitments lists the commitments the token may see.
func (c *Client) Commitments(ctx context.Context) ([]api.CommitmentInfo, error) {
	var v api.CommitmentList
	return v.Commitments, c.Do(ctx, http.MethodGet, "/v1/commitments", nil, &v)
}

// Commitment returns one commitment.
func (c *Client) Commitment(ctx context.Context, id string) (api.CommitmentInfo, error) {
	var v api.CommitmentInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/commitments/"+url.PathEscape(id), nil, &v)
}

// Checkpoint returns the node's latest signed checkpoint (signed note text).
func (c *Client) Checkpoint(ctx context.Context) (string, error) {
	var v string
	return v, c.Do(ctx, http.MethodGet, "/v1/audit/checkpoint", nil, &v)
}

// Entries returns a page of ledger entries (admin token).
func (c *Client) Entries(ctx context.Context, from, limit uint64) (api.EntriesPage, error) {
	var v api.EntriesPage
	return v, c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/audit/entries?from=%d&limit=%d", from, limit), nil, &v)
}
