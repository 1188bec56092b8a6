package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
)

func (a *app) nodeCommand() *cobra.Command {
	var home, apiAddr string
	var listen, bootstrap []string
	var allowRollback bool
	cmd := &cobra.Command{
		Use:   "node --home DIR [--api HOST:PORT] [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--allow-rollback]",
		Short: "Run a node until SIGINT or SIGTERM",
		Long: `Run a node until SIGINT or SIGTERM.

Settings come from DIR/config.yaml; flags override them. Once the API serves,
the node writes its base URL to DIR/api (removed on exit) and logs "ready".
On SIGINT or SIGTERM it closes its sessions, syncs its ledger and exits; a
second signal exits at once. On SIGHUP it reads config.yaml again and puts
its invitation policy (consent, allow, deny, minTrust) in force, replacing
what was set at run time through the API.

A node refuses to start on a ledger that holds fewer entries than it has
acknowledged (a damaged write-ahead log, an older backup restored): restore
the ledger from a backup that holds them. --allow-rollback starts anyway, on
purpose: the node logs it as an error and records the rollback in its ledger
(an entry of kind rollback naming the acknowledged and the found size).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			cfg, err := node.LoadConfig(home)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("api") {
				cfg.API = apiAddr
			}
			if cmd.Flags().Changed("listen") {
				cfg.Listen = listen
			}
			if cmd.Flags().Changed("bootstrap") {
				cfg.Bootstrap = bootstrap
			}
			cfg.AllowRollback = allowRollback
			if a.logLevel == "" {
				if err := a.setupLog(cfg.LogLevel); err != nil {
					return err
				}
			}
			return a.runNode(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home directory, made by asp init (required)")
	f.StringVar(&apiAddr, "api", "", "local HTTP API address (default from config: 127.0.0.1:0, a free port); an address beyond loopback is logged as a warning: the API carries bearer tokens over plain HTTP")
	f.StringArrayVar(&listen, "listen", nil, "libp2p listen multiaddr (repeatable; replaces the config's)")
	f.StringArrayVar(&bootstrap, "bootstrap", nil, "bootstrap peer multiaddr with /p2p/<peer id> (repeatable; replaces the config's)")
	f.BoolVar(&allowRollback, "allow-rollback", false, "start even if the ledger holds fewer entries than it acknowledged (restored backup, damaged log); recorded in the ledger")
	return cmd
}

// runNode starts a node and runs it until ctx ends or a signal arrives.
func (a *app) runNode(ctx context.Context, cfg node.Config) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := node.New(cfg, node.WithLogger(a.log))
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		_ = n.Close()
		return err
	}
	// SIGHUP reads config.yaml again and puts its invitation policy in
	// force (consent, allow, deny, minTrust), replacing what was set at
	// run time.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := n.ReloadConsent(ctx); err != nil {
					a.log.Error("reload config.yaml", "err", err)
				}
			}
		}
	}()
	<-ctx.Done()
	stop() // a second signal kills the process at once
	a.log.Info("shutting down")
	if err := n.Close(); err != nil {
		return err
	}
	a.log.Info("stopped")
	return nil
}
