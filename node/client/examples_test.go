package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
)

// The example agents, built as programs, negotiate through their own real
// nodes with the SDK alone: the buyer (budget 2.60) opens at 2.40, the
// vendor (floor 2.50) counters at 2.80, the buyer comes up halfway to
// 2.60, and the vendor accepts. Both print the deal, and both nodes hold
// it ACTIVE at that price.
func TestExampleAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs and starts two real nodes")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the examples")
	}
	bin := t.TempDir()
	build := exec.Command(goCmd, "build", "-o", bin+string(filepath.Separator), "./examples/buyer", "./examples/vendor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the examples: %v\n%s", err, out)
	}

	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var vendorErr bytes.Buffer
	v := exec.CommandContext(ctx, filepath.Join(bin, "vendor"), "-api", net.Nodes[1].APIURL(), "-token", vendor.Token,
		"-ask", "2.80", "-floor", "2.50", "-deals", "1")
	v.Stderr = &vendorErr
	vout, err := v.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	defer v.Process.Kill()
	vlines := bufio.NewScanner(vout)
	if !vlines.Scan() || vlines.Text() != "ready" {
		t.Fatalf("vendor did not get ready: %q\n%s", vlines.Text(), vendorErr.String())
	}

	b := exec.CommandContext(ctx, filepath.Join(bin, "buyer"), "-api", net.Nodes[0].APIURL(), "-token", buyer.Token,
		"-vendor", vendor.ID, "-open", "2.40", "-budget", "2.60")
	var buyerErr bytes.Buffer
	b.Stderr = &buyerErr
	bout, err := b.Output()
	t.Logf("buyer:\n%s", buyerErr.String())
	if err != nil {
		t.Fatalf("buyer: %v", err)
	}
	var vdeal string
	if vlines.Scan() {
		vdeal = vlines.Text()
	}
	if err := v.Wait(); err != nil {
		t.Fatalf("vendor: %v\n%s", err, vendorErr.String())
	}
	t.Logf("vendor:\n%s", vendorErr.String())

	var id, price string
	if _, err := fmt.Sscanf(string(bout), "deal %s %s", &id, &price); err != nil || price != "2.60" {
		t.Fatalf("buyer printed %q, want a deal at 2.60", bout)
	}
	if vdeal != "deal "+id+" 2.60" {
		t.Fatalf("vendor printed %q, want the buyer's deal %s at 2.60", vdeal, id)
	}
	for i, nd := range net.Nodes {
		cm, err := nd.Admin().Commitment(ctx, id)
		if err != nil {
			t.Fatalf("node-%d: %v", i, err)
		}
		var terms client.Terms
		if err := json.Unmarshal(cm.Terms, &terms); err != nil || cm.State != "ACTIVE" || terms.UnitPrice != "2.60" {
			t.Fatalf("node-%d holds %s %s (%v)", i, cm.State, strings.TrimSpace(string(cm.Terms)), err)
		}
	}
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
