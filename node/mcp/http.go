package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"sync"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Path is where Mount serves MCP on the node's API.
const Path = "/mcp"

// Authenticator resolves a bearer token as the API does
// (api.Backend.Authenticate).
type Authenticator func(token string) (api.Principal, error)

// Mount returns apiHandler with MCP over Streamable HTTP served at /mcp.
// Every request to /mcp needs an agent's bearer token (authenticate
// resolves it; the admin token is refused: tools act as an agent). The
// tools call apiHandler in the same process with that token, so they can
// do exactly what the agent can do through the API. An MCP session is
// bound to the token that opened it: a request carrying another token is
// refused (403), so a leaked session id is of no use without the token.
func Mount(apiHandler http.Handler, authenticate Authenticator) http.Handler {
	inproc := &http.Client{Transport: handlerTransport{apiHandler}}
	getServer := func(r *http.Request) *mcp.Server {
		ti := auth.TokenInfoFromContext(r.Context())
		if ti == nil {
			return nil
		}
		tok, _ := ti.Extra["token"].(string)
		c := client.New("http://asp.invalid", tok)
		c.HTTP = inproc
		return NewServer(c, ti.Extra["agent"].(string))
	}
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		p, err := authenticate(token)
		if err != nil || !p.IsAgent() {
			return nil, auth.ErrInvalidToken
		}
		sum := sha256.Sum256([]byte(token))
		return &auth.TokenInfo{
			// UserID binds the MCP session to the token (a digest: the
			// token itself is kept out of the session table).
			UserID: hex.EncodeToString(sum[:]),
			Extra:  map[string]any{"token": token, "agent": p.Agent},
		}, nil
	}
	mcpHandler := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		// Agent tokens do not expire; revoked ones fail verification.
		AllowMissingExpiration: true,
	})(mcp.NewStreamableHTTPHandler(getServer, nil))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path {
			mcpHandler.ServeHTTP(w, r)
			return
		}
		apiHandler.ServeHTTP(w, r)
	})
}

// handlerTransport serves a client's requests with an http.Handler in the
// same process: the tools of /mcp call the API without a socket. The body
// streams through a pipe, so an event stream works as over a socket; closing
// the body cancels the request.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	r = r.WithContext(ctx)
	pr, pw := io.Pipe()
	w := &pipeWriter{pw: pw, header: http.Header{}, started: make(chan struct{})}
	go func() {
		defer func() {
			w.WriteHeader(http.StatusOK)
			pw.Close()
		}()
		t.h.ServeHTTP(w, r)
	}()
	select {
	case <-w.started:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return &http.Response{
		Status:     http.StatusText(w.status),
		StatusCode: w.status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  w.sent,
		Body:    &cancelBody{ReadCloser: pr, cancel: cancel},
		Request: r,
	}, nil
}

// pipeWriter is the ResponseWriter of an in-process request.
type pipeWriter struct {
	pw      *io.PipeWriter
	header  http.Header
	sent    http.Header
	status  int
	once    sync.Once
	started chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.started)
	})
}

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(b)
}

// Flush lets the API's event stream flush (a pipe holds nothing back).
func (w *pipeWriter) Flush() {}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.ReadCloser.Close()
}
