package procnet_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEWalkthrough runs the README's curl walkthrough, as written,
// against a two-node network, so that the README stays true.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the walkthrough needs %s", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading, next = "## The seed deal with curl", "\n## "
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
	if len(blocks) < 3 {
		t.Fatalf("walkthrough has %d shell blocks, want the testnet command and the rest", len(blocks))
	}
	const readmeDir = "/tmp/asp-curl"
	if !strings.Contains(blocks[0][1], "testnet --nodes 2 --dir "+readmeDir) {
		t.Fatalf("first block %q does not start the testnet in %s", blocks[0][1], readmeDir)
	}

	net := startNet(t, 2)
	var script strings.Builder
	for _, b := range blocks[1:] {
		script.WriteString(b[1])
	}
	bin := aspBinary(t)
	s := strings.NewReplacer("go run ./cmd/asp", bin, readmeDir, net.Dir, "/tmp/node-0.bundle", t.TempDir()+"/node-0.bundle").Replace(script.String())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", s)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough: %v\n%s\n--- script:\n%s", err, out, s)
	}
	for _, want := range []string{`"state": "ACTIVE"`, `"unitPrice": "2.55"`, "ok: ledger of", "ok: bundle"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
}
