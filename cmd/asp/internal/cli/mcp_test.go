package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// readmeMCP returns the README's commands for an LLM client ("Connect
// your agent"): the agent add command and the MCP server's args from the
// client configuration, with the README's home replaced by home.
func readmeMCP(t *testing.T, home string) (add, serve []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const readmeHome = "/srv/asp/acme"
	text := strings.ReplaceAll(string(b), readmeHome, home)
	addRe := regexp.MustCompile("(?m)^asp (agent add buyer .*)$")
	m := addRe.FindStringSubmatch(text)
	if m == nil {
		t.Fatal("README has no asp agent add line for the MCP client")
	}
	cfg := regexp.MustCompile("(?s)```json\\n(\\{\\n  \"mcpServers\".*?)```").FindStringSubmatch(text)
	if cfg == nil {
		t.Fatal("README has no MCP client configuration")
	}
	var c struct {
		MCPServers map[string]struct {
			Command string   `json:"command"`
			Args    []string `json:"args"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(cfg[1]), &c); err != nil {
		t.Fatalf("README's MCP configuration: %v", err)
	}
	srv, ok := c.MCPServers["asp-buyer"]
	if !ok || srv.Command != "asp" {
		t.Fatalf("README's MCP configuration: %+v", c)
	}
	return strings.Fields(m[1]), srv.Args
}

// asp mcp serves an agent over stdio, started as the README configures an
// LLM client: the go-sdk's MCP client, speaking to it through pipes as a
// desktop LLM client does through the process's stdin and stdout,
// discovers the vendor, opens a session and proposes; the vendor accepts;
// the buyer reads the session with its commitment.
func TestMCPStdio(t *testing.T) {
	net := testnet.New(t, 2)
	home0, home1 := net.Nodes[0].Home, net.Nodes[1].Home
	addArgs, serveArgs := readmeMCP(t, home0)
	if code, _, stderr := run(t, addArgs...); code != ExitOK {
		t.Fatalf("%v: %s", addArgs, stderr)
	}
	code, stdout, stderr := run(t, "agent", "add", "vendor", "--home", home1, "--capability", "compute.gpu-hours", "--save-token", "--json")
	if code != ExitOK {
		t.Fatalf("agent add vendor: %s", stderr)
	}
	var vendor api.CreateAgentResponse
	if err := json.Unmarshal([]byte(stdout), &vendor); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(agentTokenFile(home1, "vendor")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved token file: %v %v", fi, err)
	}

	ctx, cancel := net.Context()
	defer cancel()
	// The command, in process, on pipes.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errOut bytes.Buffer
	a := &app{stdin: inR, stdout: outW, stderr: &errOut}
	root := a.rootCommand()
	root.SetArgs(serveArgs)
	root.SetContext(ctx)
	done := make(chan error, 1)
	go func() {
		err := root.Execute()
		outW.Close()
		done <- err
	}()

	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	s, err := c.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatalf("connect: %v (stderr: %s)", err, errOut.String())
	}
	callTool := func(name string, args map[string]any, out any) {
		t.Helper()
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		if res.IsError {
			t.Fatalf("%s: %s", name, text)
		}
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s: %q: %v", name, text, err)
		}
	}
	net.Await("the buyer discovers the vendor", func() bool {
		var r api.DiscoverResult
		callTool("discover_agents", map[string]any{"capability": "compute.gpu-hours"}, &r)
		return slices.ContainsFunc(r.Agents, func(d api.DiscoveredAgent) bool { return d.AgentID == vendor.AgentID })
	})
	var sess struct {
		SessionID    string   `json:"sessionId"`
		Participants []string `json:"participants"`
		CommitmentID string   `json:"commitmentId"`
	}
	callTool("open_session", map[string]any{"to": vendor.AgentID}, &sess)
	if !slices.Contains(sess.Participants, vendor.AgentID) || !strings.HasSuffix(sess.Participants[0], "/buyer") {
		t.Fatalf("open_session: %+v", sess)
	}
	var terms map[string]any
	_ = json.Unmarshal(scenario.Terms("2.50", time.Now().UTC().AddDate(0, 1, 0)), &terms)
	var sent api.SendMessageResult
	callTool("send_move", map[string]any{"session_id": sess.SessionID, "performative": "PROPOSE", "terms": terms}, &sent)

	vc := client.New(net.Nodes[1].APIURL(), vendor.Token)
	if err := scenario.AwaitMessages(ctx, vc, sess.SessionID, 1); err != nil {
		t.Fatal(err)
	}
	acc, err := vc.Accept(ctx, sess.SessionID, sent.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	net.Await("the buyer reads the commitment in its session", func() bool {
		callTool("read_session", map[string]any{"session_id": sess.SessionID}, &sess)
		return sess.CommitmentID == acc.CommitmentID
	})

	s.Close()
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("asp mcp ended with %v (stderr: %s)", err, errOut.String())
	}
}

// asp mcp says where the agent's token should be when it has none.
func TestMCPWithoutToken(t *testing.T) {
	net := testnet.New(t, 1)
	t.Setenv(tokenEnv, "")
	code, _, stderr := run(t, "mcp", "--home", net.Nodes[0].Home, "--agent", "ghost")
	if code != ExitFailure || !strings.Contains(stderr, "--save-token") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
