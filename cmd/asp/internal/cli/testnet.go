package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/testnet/procnet"
	"github.com/aspnode/asp/testnet/scenario"
)

func (a *app) testnetCommand() *cobra.Command {
	var dir string
	var nodes int
	var demo, keep bool
	cmd := &cobra.Command{
		Use:   "testnet --nodes N --dir DIR [--demo] [--keep]",
		Short: "Run N real nodes on loopback as child processes; --demo plays the seed deal",
		Long: `Run N real nodes on loopback as child processes of this binary.

Homes are DIR/node-0 ... DIR/node-{N-1} (made on first use, reused after);
every node bootstraps off node-0. Each node's log is DIR/node-<i>/node.log.
Ctrl-C stops them all.

--demo creates a buyer agent on node-0 and a vendor agent on node-1, plays the
GPU-hours negotiation (PROPOSE 2.40, COUNTER 2.80, PROPOSE 2.55, ACCEPT) as a
live feed, waits until both nodes hold the commitment ACTIVE, verifies both
ledgers and exits; add --keep to leave the network running afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if nodes < 1 {
				return usageErrorf("--nodes must be at least 1")
			}
			if demo && nodes < 2 {
				return usageErrorf("--demo needs --nodes 2 or more")
			}
			return a.runTestnet(cmd.Context(), dir, nodes, demo, keep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory for the node homes (required)")
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.BoolVar(&demo, "demo", false, "create two agents and play the seed deal")
	f.BoolVar(&keep, "keep", false, "with --demo: keep the network running after the deal, until Ctrl-C")
	return cmd
}

func (a *app) runTestnet(ctx context.Context, dir string, n int, demo, keep bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	progress := newProgress(a.stderr)
	t0 := time.Now()
	starting := func(up, total int) {
		progress.update(fmt.Sprintf("starting %d nodes in %s: %d/%d up", total, dir, up, total))
	}
	starting(0, n)
	net, err := procnet.Start(ctx, procnet.Config{Dir: dir, Nodes: n, Progress: starting})
	if err != nil {
		progress.done()
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting nodes")
		}
		return err
	}
	progress.update(fmt.Sprintf("%d nodes up in %.1fs", n, time.Since(t0).Seconds()))
	progress.done()
	defer func() {
		fmt.Fprintf(a.stderr, "stopping %d nodes...\n", n)
		if err := net.Stop(); err != nil {
			a.log.Error("stop", "err", err)
		}
	}()
	exited := net.Exited()

	printTable(a.stdout, net)

	if demo {
		if err := a.runDemo(ctx, net); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted")
			}
			return err
		}
		if !keep {
			return nil
		}
	}
	fmt.Fprintf(a.stderr, "%d nodes running; logs in %s/node-*/node.log; Ctrl-C stops them\n", n, dir)
	select {
	case <-ctx.Done():
		stop()
		return nil
	case nd := <-exited:
		return fmt.Errorf("%s exited unexpectedly (%v); see %s", nd.Name, nd.ExitError(), nd.LogFile)
	}
}

func printTable(w io.Writer, net *procnet.Net) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPEER ID\tAPI\tADMIN TOKEN")
	for _, nd := range net.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", nd.Name, nd.PeerID(), nd.APIURL(), nd.AdminTokenFile)
	}
	_ = tw.Flush()
}

func (a *app) runDemo(ctx context.Context, net *procnet.Net) error {
	w := a.stdout
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n0, n1 := net.Nodes[0], net.Nodes[1]
	buyer, err := scenario.CreateAgent(ctx, n0.Admin(), n0.Name, "buyer", []string{"procurement.compute"}, "buys GPU time")
	if err != nil {
		return err
	}
	vendor, err := scenario.CreateAgent(ctx, n1.Admin(), n1.Name, "vendor", []string{"compute.gpu-hours"}, "sells GPU time")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nbuyer   %s  (on %s)\nvendor  %s  (on %s)\n\nnegotiation:\n", buyer.ID, n0.Name, vendor.ID, n1.Name)
	deal, err := scenario.PlaySeedDeal(ctx, buyer, vendor, func(m scenario.Move) { scenario.PrintMove(w, m) })
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(w, "\ncommitment %s ACTIVE on both nodes, %.1f ms after the first PROPOSE\n", deal.CommitmentID, float64(deal.Elapsed.Microseconds())/1000)
	fmt.Fprintf(w, "  session    %s\n", deal.SessionID)
	fmt.Fprintf(w, "  signatures\n")
	roles := map[string]string{buyer.ID: "buyer", vendor.ID: "vendor"}
	for _, s := range deal.BuyerView.Signatures {
		fmt.Fprintf(w, "    %-7s %s\n", roles[s.Agent], s.Signature)
	}
	fmt.Fprintf(w, "  receipts (ledger positions)\n")
	names := map[string]string{}
	for _, nd := range net.Nodes {
		names[nd.PeerID()] = nd.Name
	}
	for _, r := range deal.BuyerView.Receipts {
		fmt.Fprintf(w, "    %-7s %s  entry #%d\n", names[r.Org], r.Org, r.LedgerIndex)
	}

	fmt.Fprintf(w, "\nledger verify:\n")
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for _, nd := range []*procnet.Node{n0, n1} {
		var stderr strings.Builder
		c := exec.CommandContext(ctx, exe, "audit", "verify", "--json", "--home", nd.Home)
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			return fmt.Errorf("asp audit verify --home %s: %s", nd.Home, strings.TrimSpace(stderr.String()))
		}
		var res VerifyResult
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("asp audit verify --home %s: %v", nd.Home, err)
		}
		fmt.Fprintf(w, "  %s  ok  %d entries, %d signed messages, commitments and receipts checked, root %s\n", nd.Name, res.Size, res.Signed, res.Root)
	}
	return nil
}

// progress shows one status line on stderr: rewritten in place on a
// terminal, one line per update otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	last string
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
	} else if s != p.last {
		fmt.Fprintln(p.w, s)
	}
	p.last = s
}

func (p *progress) done() {
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
	}
	p.last = ""
}
