package node

import (
	"net/http"

	"github.com/aspnode/asp/node/a2a"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/mcp"
)

// apiHandler is the node's HTTP API (node/api) with what is served beside
// it on the same listener: MCP at /mcp (node/mcp) and the A2A forms of the
// agent cards (node/a2a), both calling the API as their callers.
func (n *Node) apiHandler() http.Handler {
	h := api.New(n, api.WithRegisterer(n.reg), api.WithLogger(n.log))
	return a2a.Mount(mcp.Mount(h, n.Authenticate), n.ListAgents, n.AgentCard)
}
