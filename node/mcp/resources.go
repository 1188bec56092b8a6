package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/aspnode/asp/node/client"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Resource URIs: a session's transcript and a commitment, as read_session
// and read_commitment answer them, for clients that attach resources to a
// model's context rather than call tools.
const (
	sessionURIPrefix    = "asp://sessions/"
	commitmentURIPrefix = "asp://commitments/"
)

func (t *tools) registerResources(s *mcp.Server) {
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "session", Title: "Session transcript", MIMEType: "application/json",
		URITemplate: sessionURIPrefix + "{sessionId}",
		Description: "A negotiation session you are a party to: its state, its signed messages in order, and the open offer.",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		uri := req.Params.URI
		id, err := resourceID(uri, sessionURIPrefix)
		if err != nil {
			return nil, err
		}
		s, err := t.c.Session(ctx, id)
		if err != nil {
			return nil, resourceError(uri, err)
		}
		return jsonResource(uri, t.session(s))
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "commitment", Title: "Commitment", MIMEType: "application/json",
		URITemplate: commitmentURIPrefix + "{commitmentId}",
		Description: "A commitment you are a party to: its terms, parties, state, signatures and receipts.",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		uri := req.Params.URI
		id, err := resourceID(uri, commitmentURIPrefix)
		if err != nil {
			return nil, err
		}
		c, err := t.c.Commitment(ctx, id)
		if err != nil {
			return nil, resourceError(uri, err)
		}
		return jsonResource(uri, c)
	})
}

func resourceID(uri, prefix string) (string, error) {
	rest, ok := strings.CutPrefix(uri, prefix)
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", mcp.ResourceNotFoundError(uri)
	}
	id, err := url.PathUnescape(rest)
	if err != nil {
		return "", mcp.ResourceNotFoundError(uri)
	}
	return id, nil
}

// resourceError answers not found for what the agent may not see or that
// does not exist, and the node's error otherwise.
func resourceError(uri string, err error) error {
	if errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrUnauthorized) {
		return mcp.ResourceNotFoundError(uri)
	}
	return toolError(err, "")
}

func jsonResource(uri string, v any) (*mcp.ReadResourceResult, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}
