package cli

import (
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
)

// InitResult is the --json output of asp init.
type InitResult struct {
	Home           string `json:"home"`
	PeerID         string `json:"peerId"`
	Org            string `json:"org"`
	ConfigFile     string `json:"configFile"`
	AdminTokenFile string `json:"adminTokenFile"`
}

func (a *app) initCommand() *cobra.Command {
	var home, org, profile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init --home DIR [--org NAME] [--profile test]",
		Short: "Create a node home: identity key, config, admin token, data directories",
		Long: `Create a node home: identity key, config file, admin token and data directories.

It refuses to touch a directory that already holds a node. The test profile
listens on loopback only, with no bootstrap peers and no mDNS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			if profile != "" && profile != "default" && profile != "test" {
				return usageErrorf("--profile %q: want default or test", profile)
			}
			cfg, err := node.Init(home, org, profile)
			if err != nil {
				return err
			}
			key, err := node.LoadIdentity(home)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return err
			}
			res := InitResult{
				Home:           home,
				PeerID:         id.String(),
				Org:            cfg.Org,
				ConfigFile:     filepath.Join(home, node.ConfigFile),
				AdminTokenFile: filepath.Join(home, node.AdminTokenFile),
			}
			if asJSON {
				return printJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "initialized %s\n  peer id      %s\n  org          %s\n  config       %s\n  admin token  %s\nstart it with: asp node --home %s\n",
				res.Home, res.PeerID, res.Org, res.ConfigFile, res.AdminTokenFile, home)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home directory to create (required)")
	f.StringVar(&org, "org", "", "organization name (default: the home's base name)")
	f.StringVar(&profile, "profile", "", "config profile: default, or test (loopback only, no bootstrap, no mDNS)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
