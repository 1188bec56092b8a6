package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/api"
)

// DoctorCheck is one check of asp doctor.
type DoctorCheck struct {
	Name string `json:"name"`
	// Status is ok, warn, fail or skip.
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func (a *app) doctorCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor --home DIR [--json]",
		Short: "Check a node home: permissions, config, admin token, ports, ledger, clock",
		Long: `Check a node home, running or stopped, and say what to fix:

  permissions   identity key, admin token, config and stores readable by
                their owner only (0600 files, 0700 directories)
  config        config.yaml is valid
  admin token   not empty nor weak
  ports         the configured libp2p ports are free, or held by this
                home's own running node
  ledger        the ledger verifies (read-only, or a snapshot of a
                running node's)
  clock         the clock is not behind the ledger's last entry

Exit status 1 when a check fails; warnings do not fail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			if _, err := node.LoadIdentity(home); err != nil {
				return err
			}
			checks := doctor(cmd.Context(), home)
			failed := 0
			for _, c := range checks {
				if c.Status == "fail" {
					failed++
				}
			}
			if asJSON {
				if err := printJSON(a.stdout, checks); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					fmt.Fprintf(a.stdout, "%-4s  %-12s %s\n", c.Status, c.Name, c.Detail)
				}
			}
			if failed > 0 {
				return fmt.Errorf("doctor: %d check(s) failed in %s", failed, home)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home directory (required)")
	f.BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return cmd
}

func doctor(ctx context.Context, home string) []DoctorCheck {
	var out []DoctorCheck
	add := func(name, status, format string, args ...any) {
		out = append(out, DoctorCheck{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
	}

	if bad := loosePermissions(home); len(bad) > 0 {
		add("permissions", "fail", "readable or writable by others: %s (chmod 600 the files, 700 the directories)", strings.Join(bad, ", "))
	} else {
		add("permissions", "ok", "keys, token, config and stores are the owner's only")
	}

	cfg, cfgErr := node.LoadConfig(home)
	if cfgErr != nil {
		add("config", "fail", "%s", oneLine(cfgErr))
	} else {
		add("config", "ok", "%s is valid", filepath.Join(home, node.ConfigFile))
	}

	if err := node.CheckAdminToken(home); err != nil {
		add("admin token", "fail", "%s", oneLine(err))
	} else {
		add("admin token", "ok", "strong enough")
	}

	locked, pid := node.HomeLocked(home)
	var info api.NodeInfo
	running := false
	if locked {
		var err error
		info, err = runningNodeInfo(ctx, home)
		running = err == nil
		if err != nil {
			add("node", "warn", "pid %d holds the home but its API does not answer: %s", pid, oneLine(err))
		} else {
			add("node", "ok", "running (pid %d)", pid)
		}
	} else if _, err := os.Stat(filepath.Join(home, node.APIFile)); err == nil {
		add("node", "warn", "not running; the api file a killed node left is still there (the next start removes it)")
	} else {
		add("node", "ok", "not running")
	}

	switch {
	case cfgErr != nil:
		add("ports", "skip", "config invalid")
	case running:
		var foreign []string
		for _, l := range cfg.Listen {
			if port := fixedPort(l); port != "" && !holdsPort(info.Addrs, port) {
				foreign = append(foreign, l)
			}
		}
		if len(foreign) > 0 {
			add("ports", "fail", "the running node does not listen on %s: another process may hold it", strings.Join(foreign, ", "))
		} else {
			add("ports", "ok", "held by this home's node")
		}
	case locked:
		add("ports", "skip", "a node holds the home")
	default:
		if err := node.CheckPortsFree(cfg.Listen); err != nil {
			add("ports", "fail", "%s", oneLine(err))
		} else {
			add("ports", "ok", "the configured listen ports are free")
		}
	}

	res, err := verifyHome(ctx, home)
	var last time.Time
	switch {
	case errors.Is(err, errEmptyLedger):
		add("ledger", "ok", "empty: the node has not run yet")
	case err != nil:
		add("ledger", "fail", "%s (see asp audit verify --home %s)", oneLine(err), home)
	default:
		add("ledger", "ok", "%d entries verify, root %s", res.Size, res.Root)
		last = lastEntryTime(home)
	}

	now := time.Now()
	switch {
	case last.IsZero():
		add("clock", "ok", "%s (no ledger entry to compare)", now.UTC().Format(time.RFC3339))
	case last.After(now.Add(time.Minute)):
		add("clock", "fail", "the ledger's last entry is dated %s, %s ahead of this clock: the clock went back (fix NTP)", last.UTC().Format(time.RFC3339), last.Sub(now).Round(time.Second))
	default:
		add("clock", "ok", "not behind the ledger's last entry (%s)", last.UTC().Format(time.RFC3339))
	}
	if !running {
		add("clock skew", "skip", "against peers: the node is not running")
	} else {
		add("clock skew", "skip", "against peers: not measured (peers do not report their time)")
	}
	return out
}

// loosePermissions lists the home's secrets and stores that others than
// the owner may read or write.
func loosePermissions(home string) []string {
	var bad []string
	for _, f := range []string{node.IdentityFile, node.AdminTokenFile, node.ConfigFile} {
		if fi, err := os.Stat(filepath.Join(home, f)); err == nil && fi.Mode().Perm()&0o077 != 0 {
			bad = append(bad, fmt.Sprintf("%s (%o)", f, fi.Mode().Perm()))
		}
	}
	for _, d := range []string{"", node.StateDir} {
		root := filepath.Join(home, d)
		_ = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if e.IsDir() && path != root {
				if d == "" {
					return fs.SkipDir // only the home itself, and the secret store
				}
			}
			fi, err := e.Info()
			if err != nil || (d == "" && !e.IsDir()) {
				return nil
			}
			if fi.Mode().Perm()&0o077 != 0 {
				rel, _ := filepath.Rel(home, path)
				if rel == "." {
					rel = "the home " + home
				}
				bad = append(bad, fmt.Sprintf("%s (%o)", rel, fi.Mode().Perm()))
			}
			return nil
		})
	}
	return bad
}

// fixedPort is the TCP or UDP port of a listen multiaddr, "" for port 0.
func fixedPort(addr string) string {
	parts := strings.Split(addr, "/")
	for i := 0; i+1 < len(parts); i++ {
		if (parts[i] == "tcp" || parts[i] == "udp") && parts[i+1] != "0" {
			return parts[i] + "/" + parts[i+1]
		}
	}
	return ""
}

func holdsPort(addrs []string, port string) bool {
	for _, a := range addrs {
		if strings.Contains(a+"/", "/"+port+"/") {
			return true
		}
	}
	return false
}

// lastEntryTime is the time of the ledger's last entry, zero if unknown.
func lastEntryTime(home string) time.Time {
	h, err := openHomeLedger(home, false)
	if err != nil {
		return time.Time{}
	}
	defer h.Close()
	size := h.Size()
	if size == 0 {
		return time.Time{}
	}
	e, err := h.Entry(size - 1)
	if err != nil {
		return time.Time{}
	}
	return e.Time
}
