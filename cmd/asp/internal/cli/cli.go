// Package cli is the asp command line: flags and config files turned into
// calls on node, ledger and testnet.
//
// Conventions, for every subcommand:
//   - exit status 0 on success, 1 on failure (one line on stderr saying what
//     went wrong and what to do), 2 on a usage error;
//   - results go to stdout, logs (slog) and progress to stderr;
//   - --json prints a stable machine-readable result: fields may be added,
//     never renamed or removed.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Run runs the asp command line with args (without the program name) and
// returns the exit status. It does not call os.Exit, so tests can call it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetContext(ctx)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) || !a.ran {
		// Flag, argument and unknown-command errors come from cobra before
		// any command runs.
		fmt.Fprintf(stderr, "asp: %s\n", oneLine(err))
		if cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return ExitUsage
	}
	fmt.Fprintf(stderr, "asp: %s\n", oneLine(err))
	return ExitFailure
}

// app holds what every subcommand shares.
type app struct {
	stdout, stderr io.Writer
	// stdin is read by asp mcp; nil means os.Stdin.
	stdin io.Reader

	logLevel  string
	logFormat string
	log       *slog.Logger

	// ran is set once a command's RunE starts: errors before that are
	// usage errors.
	ran bool
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "asp",
		Short: "ASP node: agents of different organizations negotiate, commit and keep an audit trail",
		Long: `asp runs an ASP node and the tools around it.

An organization runs one node; its agents talk to it over a local HTTP API,
and nodes talk to each other over libp2p.

Start with:  asp testnet --nodes 3 --dir /tmp/asp-testnet --demo`,
		Version:       node.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			cmd.SetOut(a.stderr)
			_ = cmd.Help()
			return usageErrorf("missing command")
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn or error (default info, or the node's config)")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")

	root.AddCommand(
		a.initCommand(),
		a.nodeCommand(),
		a.testnetCommand(),
		a.agentCommand(),
		a.auditCommand(),
		a.sessionCommand(),
		a.commitmentCommand(),
		a.discoverCommand(),
		a.trustCommand(),
		a.eventsCommand(),
		a.mcpCommand(),
		a.statusCommand(),
		a.doctorCommand(),
		a.backupCommand(),
		a.restoreCommand(),
	)
	a.wrap(root)
	return root
}

// wrap makes every command's RunE mark the start of the run and set up
// logging first, so that errors returned before are usage errors.
func (a *app) wrap(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			a.ran = true
			if err := a.setupLog(a.logLevel); err != nil {
				return &usageError{err}
			}
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		a.wrap(sub)
	}
}

func (a *app) setupLog(level string) error {
	var l slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		l = slog.LevelInfo
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch a.logFormat {
	case "text", "":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return fmt.Errorf("log format %q: want text or json", a.logFormat)
	}
	return nil
}

// groupCommand is a noun with verbs below it (asp agent, asp audit).
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("%s: missing subcommand", cmd.CommandPath())
		},
	}
}

// printJSON writes v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// requireFlag returns a usage error when a flag was left empty.
func requireFlag(name, value string) error {
	if value == "" {
		return usageErrorf("--%s is required", name)
	}
	return nil
}
