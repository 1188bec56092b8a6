package procnet_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEOperating runs the README's "Operating a node" commands, as
// written, against a two-node network.
func TestREADMEOperating(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the section needs %s", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading, next = "## Operating a node", "\n## "
	sec := string(readme)
	i := strings.Index(sec, heading)
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	sec = sec[i+len(heading):]
	if j := strings.Index(sec, next); j >= 0 {
		sec = sec[:j]
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(sec, -1)
	if len(blocks) != 1 {
		t.Fatalf("section has %d shell blocks, want 1", len(blocks))
	}
	net := startNet(t, 2)
	tmp := t.TempDir()
	s := strings.NewReplacer(
		"go run ./cmd/asp", aspBinary(t),
		"/tmp/asp-curl", net.Dir,
		"/tmp/node-1.backup", filepath.Join(tmp, "node-1.backup"),
		"/tmp/node-1-restored", filepath.Join(tmp, "node-1-restored"),
	).Replace(blocks[0][1])
	if strings.Contains(s, "/tmp/") && !strings.Contains(net.Dir, "/tmp/") {
		t.Fatalf("the section names a path the test does not replace:\n%s", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", s).CombinedOutput()
	if err != nil {
		t.Fatalf("operating commands: %v\n%s\n--- script:\n%s", err, out, s)
	}
	for _, want := range []string{"running (pid", "ok    ledger", "backup of " + net.Nodes[1].PeerID(), "restored " + net.Nodes[1].PeerID(), "ok: ledger of", "asp_"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
