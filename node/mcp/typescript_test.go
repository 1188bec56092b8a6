package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// tsSDK is the official MCP TypeScript SDK version the test installs.
const tsSDK = "@modelcontextprotocol/sdk@1.32.2"

// installTSSDK installs the TypeScript SDK once into a cache directory
// ($ASP_TEST_CACHE, else the user's cache directory) and returns its
// node_modules. A fresh install goes to a temporary directory renamed into
// place, so concurrent runs never see half of one.
func installTSSDK(t *testing.T, npm string) string {
	t.Helper()
	base := os.Getenv("ASP_TEST_CACHE")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		base = filepath.Join(d, "asp-test")
	}
	dir := filepath.Join(base, "npm-"+strings.NewReplacer("@", "", "/", "-").Replace(tsSDK))
	mods := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(mods, "@modelcontextprotocol", "sdk", "package.json")); err == nil {
		return mods
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(base, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--loglevel=error", tsSDK)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm install %s failed (no registry?): %v\n%s", tsSDK, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !exists(filepath.Join(mods, "@modelcontextprotocol", "sdk", "package.json")) {
		t.Fatal(err)
	}
	return mods
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// The official TypeScript MCP client, over Streamable HTTP with the
// buyer's token, lists the tools, discovers the vendor, opens a session
// and proposes; the vendor's node holds the offer, and a move the session
// does not allow comes back as a tool error.
func TestTypeScriptSDKClient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the TypeScript MCP SDK and runs node")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("no npm")
	}
	mods := installTSSDK(t, npm)
	dir := t.TempDir()
	if err := os.Symlink(mods, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}

	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "client.mjs"))
	cmd.Env = append(os.Environ(),
		"ASP_MCP_URL="+net.Nodes[0].APIURL()+"/mcp",
		"ASP_TOKEN="+buyer.Token,
		"ASP_VENDOR="+vendor.ID,
		"ASP_CAPABILITY=compute.gpu-hours",
		"ASP_TERMS="+string(scenario.Terms("2.45", time.Now().UTC().AddDate(0, 1, 0))),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client.mjs: %v\n%s", err, stderr.String())
	}
	var got struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
		Tools []struct {
			Name        string         `json:"name"`
			Description string         `json:"description"`
			InputSchema map[string]any `json:"inputSchema"`
		} `json:"tools"`
		SessionID, MessageID string
		Refused              struct {
			IsError bool   `json:"isError"`
			Text    string `json:"text"`
		} `json:"refused"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client.mjs printed %q: %v", out, err)
	}
	if got.Server.Name != "asp" {
		t.Errorf("server name %q", got.Server.Name)
	}
	var names []string
	for _, tl := range got.Tools {
		names = append(names, tl.Name)
		if tl.Description == "" || tl.InputSchema["type"] != "object" {
			t.Errorf("tool %s: description %q, schema %v", tl.Name, tl.Description, tl.InputSchema)
		}
	}
	for _, want := range []string{"discover_agents", "open_session", "send_move", "read_session", "read_events", "act_on_commitment"} {
		if !slices.Contains(names, want) {
			t.Errorf("the TypeScript client sees no %s tool (%v)", want, names)
		}
	}
	if !got.Refused.IsError || !strings.Contains(got.Refused.Text, "invalid_transition") {
		t.Errorf("accepting one's own offer: %+v, want an invalid_transition tool error", got.Refused)
	}

	// The vendor's node holds the buyer's offer, at its price.
	vc := client.New(net.Nodes[1].APIURL(), vendor.Token)
	if err := scenario.AwaitMessages(ctx, vc, got.SessionID, 1); err != nil {
		t.Fatal(err)
	}
	s, err := vc.Session(ctx, got.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	var last client.Message
	if err := json.Unmarshal(s.Messages[len(s.Messages)-1], &last); err != nil {
		t.Fatal(err)
	}
	if tm, ok := last.Terms(); last.MessageID != got.MessageID || !ok || tm.UnitPrice != "2.45" {
		t.Fatalf("vendor's node holds %s %s %+v, want the buyer's offer %s at 2.45", last.Performative, last.MessageID, tm, got.MessageID)
	}
}
