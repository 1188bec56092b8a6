package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

func (a *app) agentCommand() *cobra.Command {
	cmd := groupCommand("agent", "Manage a running node's agents (add, list)")
	cmd.AddCommand(a.agentAddCommand(), a.agentListCommand())
	return cmd
}

// adminClient returns a client for the running node whose home is dir.
func adminClient(home string) (*client.Client, error) {
	if err := requireFlag("home", home); err != nil {
		return nil, err
	}
	c, err := client.FromHome(home)
	if err != nil {
		return nil, err
	}
	if locked, _ := node.HomeLocked(home); !locked {
		// A node holds its home's lock while it runs: this api file was
		// left by one that was killed.
		return nil, fmt.Errorf("%w: %s was left by a node that is gone (killed?); start it with: asp node --home %s", client.ErrNotRunning, filepath.Join(home, node.APIFile), home)
	}
	return c, nil
}

func (a *app) agentAddCommand() *cobra.Command {
	var home, desc string
	var caps []string
	var asJSON, save bool
	cmd := &cobra.Command{
		Use:   "add NAME --home DIR [--capability C]... [--description TEXT]",
		Short: "Create an agent on a running node and print its id and token",
		Long: `Create an agent on a running node and print its id and bearer token.

The token is shown once: the agent uses it for every call to the node's API.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(home)
			if err != nil {
				return err
			}
			if caps == nil {
				caps = []string{}
			}
			res, err := c.CreateAgent(cmd.Context(), api.CreateAgentRequest{Name: args[0], Capabilities: caps, Description: desc})
			if err != nil {
				return err
			}
			if save {
				if err := saveAgentToken(home, args[0], res.Token); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "agent  %s\ntoken  %s\n", res.AgentID, res.Token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "home of the running node (required)")
	f.StringSliceVar(&caps, "capability", nil, "a capability the agent offers, e.g. compute.gpu-hours (repeatable)")
	f.StringVar(&desc, "description", "", "what the agent does")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON: {agentId, token}")
	f.BoolVar(&save, "save-token", false, "also keep the token in DIR/agents/NAME.token (0600), where asp mcp finds it")
	return cmd
}

// saveAgentToken writes an agent's token to the node's home, readable by
// its owner only, as the admin token is.
func saveAgentToken(home, name, token string) error {
	p := agentTokenFile(home, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(token+"\n"), 0o600)
}

func (a *app) agentListCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --home DIR",
		Short: "List a running node's agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(home)
			if err != nil {
				return err
			}
			agents, err := c.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if agents == nil {
					agents = []api.AgentInfo{}
				}
				return printJSON(a.stdout, api.AgentList{Agents: agents})
			}
			if len(agents) == 0 {
				fmt.Fprintln(a.stdout, "no agents (add one with: asp agent add NAME --home "+home+")")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tAGENT ID\tCAPABILITIES")
			for _, ag := range agents {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", ag.Name, ag.AgentID, strings.Join(ag.Capabilities, ","))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "home of the running node (required)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON: {agents: [...]}")
	return cmd
}
