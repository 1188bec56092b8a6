// Package client is the Go SDK of an ASP node: a client of the node's local
// HTTP API, the server of which is package node/api. It speaks the API as
// CONTRACT.md names it, with node/api's request and response types, so that
// the two cannot drift apart: a field added to api.SessionInfo is a field
// the client decodes.
//
// A Client acts with one bearer token: the node's admin token (FromHome
// reads it from the node's home) or an agent token (from CreateAgent), and
// WithToken switches between them. Every method takes a context and is one
// request, except Events (a stream that reconnects by itself) and
// AllEntries (an iterator that fetches page after page).
//
// # Errors
//
// An answer with a non-2xx status comes back as an *Error carrying the HTTP
// status, the ASP error code (api.CodeDuplicate, api.CodeInvalidTransition,
// ...) and whether the same request may succeed later unchanged
// (Retryable: busy, timeout, unavailable...). Test for a code with
// errors.Is and the sentinels, or take the fields with errors.As:
//
//	if errors.Is(err, client.ErrInvalidTransition) { ... }
//	var e *client.Error
//	if errors.As(err, &e) && e.Retryable { ... try again later ... }
//
// errors.As with an *api.Error (the server's own type) also works. The body
// of an answer that is not the API's JSON error (a proxy in the way)
// becomes the message, with the status text as the code. Transport failures
// (no node listening, a cancelled context) are returned wrapped as they
// are. The message of an error answer is the remote node's text: show it,
// do not parse it.
//
// # Events
//
// Events follows the agent's server-sent events. Each event has an id; when
// the connection breaks the stream reconnects by itself with backoff,
// sending the id of the last event it returned (Last-Event-ID), and the
// node replays what the agent missed. When the node no longer holds all of
// it (more than its buffer was published meanwhile, or it restarted) the
// stream returns an event of type "gap" (Event.Gap): read current state
// again. The stream ends only with its context, Close, or an answer that
// will not change (a revoked token).
//
// The asp command line, the test networks and the integration tests use
// this package; node/client/examples holds two small agents (a buyer with
// a budget, a vendor with a floor price) written with it alone.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	c.authorize(req)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return errorAnswer(method, path, resp.StatusCode, raw)
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

func (c *Client) authorize(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}
