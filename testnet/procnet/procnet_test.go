package procnet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet/procnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// The asp binary, built once for every test of the package.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func aspBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the asp binary; skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "asp-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "asp")
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command(goTool, "build", "-o", binPath, "github.com/aspnode/asp/cmd/asp").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/asp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// workDir returns a directory for the network that is kept, and named in
// the test log, when the test fails.
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "asp-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept the node homes and logs in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// startNet starts n nodes and stops them when the test ends; when the test
// failed it prints the tail of every node's log.
func startNet(t *testing.T, n int) *procnet.Net {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net, err := procnet.Start(ctx, procnet.Config{Binary: aspBinary(t), Dir: workDir(t), Nodes: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := net.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			for _, nd := range net.Nodes {
				t.Logf("--- tail of %s:\n%s", nd.LogFile, tail(nd.LogFile, 40))
			}
		}
	})
	return net
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// asp runs the binary and returns its exit status, stdout and stderr.
func asp(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(aspBinary(t), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stdout.String(), stderr.String()
		}
		t.Fatalf("asp %v: %v", args, err)
	}
	return 0, stdout.String(), stderr.String()
}

func auditVerify(t *testing.T, home string) {
	t.Helper()
	code, out, errOut := asp(t, "audit", "verify", "--home", home)
	if code != 0 {
		t.Errorf("asp audit verify --home %s: exit %d\n%s%s", home, code, out, errOut)
	}
}

func newAgents(t *testing.T, ctx context.Context, net *procnet.Net) (buyer, vendor *scenario.Agent) {
	t.Helper()
	n0, n1 := net.Nodes[0], net.Nodes[1]
	buyer, err := scenario.CreateAgent(ctx, n0.Admin(), n0.Name, "buyer", []string{}, "buys GPU time")
	if err != nil {
		t.Fatal(err)
	}
	vendor, err = scenario.CreateAgent(ctx, n1.Admin(), n1.Name, "vendor", []string{"compute.gpu-hours"}, "sells GPU time")
	if err != nil {
		t.Fatal(err)
	}
	return buyer, vendor
}

// ledgerEntries reads a node's whole ledger through its API.
func ledgerEntries(t *testing.T, ctx context.Context, c *client.Client) []api.EntryInfo {
	t.Helper()
	var all []api.EntryInfo
	for {
		page, err := c.Entries(ctx, uint64(len(all)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if len(page.Entries) == 0 || uint64(len(all)) >= page.Size {
			return all
		}
	}
}

// TestSeedDeal: two nodes as processes close the seed deal over HTTP; both
// ledgers hold the commitment and the receipts, and verify.
func TestSeedDeal(t *testing.T) {
	net := startNet(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buyer, vendor := newAgents(t, ctx, net)

	var moves []string
	deal, err := scenario.PlaySeedDeal(ctx, buyer, vendor, func(m scenario.Move) {
		moves = append(moves, m.Performative+" "+m.UnitPrice)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(moves, ","), "PROPOSE 2.40,COUNTER 2.80,PROPOSE 2.55,ACCEPT "; got != want {
		t.Errorf("moves %q, want %q", got, want)
	}

	peers := map[string]bool{net.Nodes[0].PeerID(): true, net.Nodes[1].PeerID(): true}
	for i, view := range []api.CommitmentInfo{deal.BuyerView, deal.VendorView} {
		nd := net.Nodes[i]
		if view.State != "ACTIVE" {
			t.Errorf("%s: state %s", nd.Name, view.State)
		}
		var terms struct{ UnitPrice, Quantity string }
		if err := json.Unmarshal(view.Terms, &terms); err != nil || terms.UnitPrice != "2.55" || terms.Quantity != "1000" {
			t.Errorf("%s: terms %s (%v), want 1000 at 2.55", nd.Name, view.Terms, err)
		}
		signers := map[string]bool{}
		for _, s := range view.Signatures {
			if s.Signature != "" {
				signers[s.Agent] = true
			}
		}
		if !signers[buyer.ID] || !signers[vendor.ID] {
			t.Errorf("%s: signatures from %v, want buyer and vendor", nd.Name, signers)
		}
		orgs := map[string]bool{}
		for _, r := range view.Receipts {
			if r.Signature == "" || r.Checkpoint == "" {
				t.Errorf("%s: receipt of %s lacks a signature or checkpoint", nd.Name, r.Org)
			}
			orgs[r.Org] = true
		}
		if len(orgs) != 2 || !orgs[net.Nodes[0].PeerID()] || !orgs[net.Nodes[1].PeerID()] {
			t.Errorf("%s: receipts from %v, want both nodes %v", nd.Name, orgs, peers)
		}

		// The ledger holds the commitment and the counterparty's receipt.
		kinds := map[string]int{}
		for _, e := range ledgerEntries(t, ctx, nd.Admin()) {
			if e.Commitment == deal.CommitmentID {
				kinds[e.Kind]++
			}
		}
		if kinds["commitment"] == 0 || kinds["receipt"] == 0 {
			t.Errorf("%s: ledger entries for %s by kind: %v; want a commitment and a receipt", nd.Name, deal.CommitmentID, kinds)
		}
	}

	// Verify both ledgers while the nodes run, then once they stopped.
	for _, nd := range net.Nodes {
		auditVerify(t, nd.Home)
	}
	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range net.Nodes {
		auditVerify(t, nd.Home)
		bundle := filepath.Join(t.TempDir(), nd.Name+".bundle")
		if code, _, errOut := asp(t, "audit", "export", "--home", nd.Home, "--out", bundle); code != 0 {
			t.Fatalf("audit export %s: exit %d: %s", nd.Name, code, errOut)
		}
		if code, out, errOut := asp(t, "audit", "verify", bundle); code != 0 {
			t.Errorf("audit verify %s: exit %d: %s%s", bundle, code, out, errOut)
		}
	}
}

// TestCrashDuringNegotiations kills the vendor's node with SIGKILL in the
// middle of many concurrent negotiations, restarts it, and checks that no
// commitment is lost or half-recorded: every commitment either API reported
// ACTIVE is ACTIVE on both nodes after they reconcile, none is ACTIVE on one
// node only, and both ledgers verify.
func TestCrashDuringNegotiations(t *testing.T) {
	const negotiators, killAfter = 20, 30
	net := startNet(t, 2)
	n0, n1 := net.Nodes[0], net.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	buyer, vendor := newAgents(t, ctx, net)

	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // commitment ids an ACCEPT answer named
		active   = map[string]bool{} // commitment ids either API reported ACTIVE
	)
	// Watch both nodes for commitments reported ACTIVE.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	for _, nd := range net.Nodes {
		watch.Add(1)
		go func() {
			defer watch.Done()
			for watchCtx.Err() == nil {
				if list, err := nd.Admin().Commitments(watchCtx); err == nil {
					mu.Lock()
					for _, c := range list {
						if c.State == "ACTIVE" {
							active[c.CommitmentID] = true
						}
					}
					mu.Unlock()
				}
				select {
				case <-watchCtx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
	}

	// 20 negotiators each play seed deals back to back, so that at any
	// moment the sessions are at every stage; node-1 is killed once 30
	// commitments formed. Then the negotiations cannot finish: stop them.
	dealCtx, stopDeals := context.WithCancel(ctx)
	defer stopDeals()
	killed := make(chan struct{})
	var killOnce sync.Once
	var crashing atomic.Bool // errors are expected from now on
	var wg sync.WaitGroup
	for i := 0; i < negotiators; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dealCtx.Err() == nil {
				deal, err := scenario.PlaySeedDeal(dealCtx, buyer, vendor, nil)
				if deal != nil && deal.CommitmentID != "" {
					mu.Lock()
					accepted[deal.CommitmentID] = true
					n := len(accepted)
					mu.Unlock()
					if n >= killAfter {
						killOnce.Do(func() {
							crashing.Store(true)
							if err := n1.Kill(); err != nil {
								t.Errorf("kill: %v", err)
							}
							stopDeals()
							close(killed)
						})
					}
				}
				if err != nil && !crashing.Load() {
					t.Errorf("negotiator %d before the crash: %v", i, err)
					return
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-ctx.Done():
		t.Fatal("no commitment formed before the deadline")
	}
	wg.Wait()
	if err := n1.Restart(ctx, mustLoopback(t, n0)); err != nil {
		t.Fatal(err)
	}
	stopWatch()
	watch.Wait()

	// Reconcile: every commitment an ACCEPT answer named or an API reported
	// ACTIVE becomes ACTIVE on both nodes; none stays ACTIVE on one only.
	mu.Lock()
	t.Logf("%d ACCEPTs answered, %d commitments seen ACTIVE until node-1 was back", len(accepted), len(active))
	want := map[string]bool{}
	for id := range accepted {
		want[id] = true
	}
	for id := range active {
		want[id] = true
	}
	mu.Unlock()
	var problems []string
	err := scenario.Await(ctx, func() bool {
		problems = problems[:0]
		var states [2]map[string]string
		for i, nd := range net.Nodes {
			list, err := nd.Admin().Commitments(ctx)
			if err != nil {
				problems = append(problems, err.Error())
				return false
			}
			states[i] = map[string]string{}
			for _, c := range list {
				states[i][c.CommitmentID] = c.State
			}
		}
		for id := range want {
			if states[0][id] != "ACTIVE" || states[1][id] != "ACTIVE" {
				problems = append(problems, fmt.Sprintf("%s: %q on node-0, %q on node-1", id, states[0][id], states[1][id]))
			}
		}
		for i := range states {
			for id, s := range states[i] {
				if other := states[1-i][id]; s == "ACTIVE" && other != "ACTIVE" {
					problems = append(problems, fmt.Sprintf("%s: ACTIVE on node-%d, %q on node-%d", id, i, other, 1-i))
				}
			}
		}
		return len(problems) == 0
	})
	if err != nil {
		t.Fatalf("after reconcile: %v:\n%s", err, strings.Join(problems, "\n"))
	}

	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range net.Nodes {
		auditVerify(t, nd.Home)
	}
}

func mustLoopback(t *testing.T, nd *procnet.Node) string {
	t.Helper()
	a, err := nd.LoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
