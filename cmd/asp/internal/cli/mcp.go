package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node/client"
	aspmcp "github.com/aspnode/asp/node/mcp"
)

// agentTokenFile is where `asp agent add --save-token` keeps an agent's
// token in the node's home, and where `asp mcp` looks for it.
func agentTokenFile(home, name string) string {
	return filepath.Join(home, "agents", name+".token")
}

func (a *app) mcpCommand() *cobra.Command {
	var home, agent, tokenFile string
	cmd := &cobra.Command{
		Use:   "mcp --home DIR --agent NAME",
		Short: "Serve one agent of a running node to an LLM client as an MCP server over stdio",
		Long: `Serve one agent of a running node to an LLM client (Claude Desktop, an IDE,
LangChain's MCP adapter...) as a Model Context Protocol server over stdio: the
client starts this command and speaks JSON-RPC on its stdin and stdout.

The tools (discover_agents, get_trust, open_session, send_move, read_session,
list_commitments, act_on_commitment, read_events...) call the node's API as
the agent. The API's address comes from DIR/api (the node must be running);
the agent's token from --token-file, else $ASP_TOKEN, else
DIR/agents/NAME.token (written by: asp agent add NAME --save-token).

The same tools are served over Streamable HTTP at /mcp on the node's API,
with the agent's token as the bearer token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			if err := requireFlag("agent", agent); err != nil {
				return err
			}
			base, err := client.ReadAPIFile(home)
			if err != nil {
				return err
			}
			tok, err := agentToken(home, agent, tokenFile)
			if err != nil {
				return err
			}
			c := client.New(base, tok)
			info, err := c.Node(cmd.Context())
			if err != nil {
				return fmt.Errorf("reach the node as %s: %w", agent, err)
			}
			id := "agent://" + info.PeerID + "/" + agent
			in := a.stdin
			if in == nil {
				in = os.Stdin
			}
			t := &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{a.stdout}}
			a.log.Info("mcp: serving over stdio", "agent", id, "api", base)
			return aspmcp.NewServer(c, id).Run(cmd.Context(), t)
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "home of the running node (required)")
	f.StringVar(&agent, "agent", "", "name of the agent to act as (required)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the agent's token (default $ASP_TOKEN, else DIR/agents/NAME.token)")
	return cmd
}

// agentToken finds the agent's bearer token.
func agentToken(home, agent, file string) (string, error) {
	if file == "" {
		if tok := strings.TrimSpace(os.Getenv(tokenEnv)); tok != "" {
			return tok, nil
		}
		file = agentTokenFile(home, agent)
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no token for agent %s: %s does not exist (create the agent with: asp agent add %s --home %s --save-token, "+
			"or pass --token-file or $ASP_TOKEN)", agent, file, agent, home)
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return tok, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
