package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

func (a *app) statusCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --home DIR [--json]",
		Short: "Show a running node's identity, addresses, peers, agents, sessions, commitments and ledger",
		Long: `Show a running node at a glance: identity, API and listen addresses, peers
and DHT routing table, agents, sessions and commitments by state, ledger size
and last signed checkpoint, last backup.

It asks the node's API with the admin token. Exit status 1, with the reason,
when the node is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			info, err := runningNodeInfo(cmd.Context(), home)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, info)
			}
			printStatus(a.stdout, info)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home directory (required)")
	f.BoolVar(&asJSON, "json", false, "print the status as JSON (GET /v1/node with the admin token)")
	return cmd
}

// runningNodeInfo asks the node running on home for its info and status,
// or says why it cannot.
func runningNodeInfo(ctx context.Context, home string) (api.NodeInfo, error) {
	if _, err := node.LoadIdentity(home); err != nil {
		return api.NodeInfo{}, err
	}
	locked, pid := node.HomeLocked(home)
	c, err := client.FromHome(home)
	if err != nil {
		if locked {
			return api.NodeInfo{}, fmt.Errorf("node (pid %d) is starting or serves no API: %v", pid, err)
		}
		return api.NodeInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := c.Node(ctx)
	if err != nil {
		var ae *client.Error
		switch {
		case errors.As(err, &ae):
			return api.NodeInfo{}, err
		case !locked:
			return api.NodeInfo{}, fmt.Errorf("%w: the api file names a node that is gone (killed?): %v", client.ErrNotRunning, err)
		default:
			return api.NodeInfo{}, fmt.Errorf("node (pid %d) runs on %s but its API does not answer: %v", pid, home, err)
		}
	}
	if info.Status == nil {
		return api.NodeInfo{}, errors.New("the node answered without its status: is the admin token in " + home + " the node's?")
	}
	return info, nil
}

func printStatus(w io.Writer, info api.NodeInfo) {
	st := info.Status
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "node\trunning (pid %d) since %s, version %s\n", st.PID, st.Started.UTC().Format(time.RFC3339), info.Version)
	fmt.Fprintf(tw, "peer id\t%s\n", info.PeerID)
	fmt.Fprintf(tw, "org\t%s\n", info.Org)
	fmt.Fprintf(tw, "home\t%s\n", st.Home)
	fmt.Fprintf(tw, "api\t%s\n", st.API)
	for i, a := range info.Addrs {
		label := ""
		if i == 0 {
			label = "addresses"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, a)
	}
	fmt.Fprintf(tw, "peers\t%d connected, %d in the DHT routing table\n", info.Peers, st.DHTPeers)
	fmt.Fprintf(tw, "agents\t%d\n", st.Agents)
	fmt.Fprintf(tw, "sessions\t%s\n", byState(st.Sessions))
	fmt.Fprintf(tw, "commitments\t%s\n", byState(st.Commitments))
	cp := "none signed yet"
	if st.Checkpoint != "" {
		cp = fmt.Sprintf("signed at size %d", st.CheckpointSize)
	}
	fmt.Fprintf(tw, "ledger\t%d entries, last checkpoint %s\n", st.LedgerSize, cp)
	if len(st.Witnesses) == 0 {
		fmt.Fprintf(tw, "witnesses\tnone yet\n")
	}
	for i, w := range st.Witnesses {
		label := ""
		if i == 0 {
			label = "witnesses"
		}
		line := fmt.Sprintf("%s cosigned size %d", w.Org, w.Size)
		if !w.CosignedAt.IsZero() {
			line += " at " + w.CosignedAt.UTC().Format(time.RFC3339)
		}
		if w.LastError != "" {
			line += "; last round failed: " + w.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, line)
	}
	if st.LastBackup != nil {
		fmt.Fprintf(tw, "last backup\t%s\n", st.LastBackup.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(tw, "last backup\tnone since the node started\n")
	}
	for _, warn := range info.Warnings {
		fmt.Fprintf(tw, "warning\t%s\n", warn)
	}
	tw.Flush()
}

// byState prints counts by state, "none" for none.
func byState(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
