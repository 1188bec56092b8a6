package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// BackupOutput is the --json output of asp backup.
type BackupOutput struct {
	File string `json:"file"`
	api.BackupResult
}

func (a *app) backupCommand() *cobra.Command {
	var home, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backup --home DIR --out FILE",
		Short: "Write a consistent backup of a node home, running or stopped, to FILE",
		Long: `Write a consistent backup of a node home to FILE (a gzipped tar, mode 0600).

It holds the identity key, admin token and config, a snapshot of the ledger
and of the secret store (agent keys), the signed checkpoint of exactly the
snapshot's size, and a manifest. A running node takes the snapshots itself
(POST /v1/admin/backup with the admin token) while it goes on recording; a
stopped home is copied under its lock.

The file holds the organization's keys: keep it as safe as the home.
Restore it with asp restore FILE --home NEWDIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			if err := requireFlag("out", out); err != nil {
				return err
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s exists: give a new file", out)
			}
			if _, err := node.LoadIdentity(home); err != nil {
				return err
			}
			res, err := takeBackup(cmd.Context(), home)
			if err != nil {
				return err
			}
			defer os.RemoveAll(res.Dir)
			if err := node.WriteBackupArchive(res.Dir, out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, BackupOutput{File: out, BackupResult: res})
			}
			fmt.Fprintf(a.stdout, "backup of %s written to %s: %d ledger entries, checkpoint signed at size %d\nrestore it with: asp restore %s --home NEWDIR\n",
				res.PeerID, out, res.Size, res.Size, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home directory (required)")
	f.StringVar(&out, "out", "", "backup file to write; must not exist (required)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// takeBackup asks the running node for a backup, or backs up the stopped
// home itself.
func takeBackup(ctx context.Context, home string) (api.BackupResult, error) {
	if locked, _ := node.HomeLocked(home); !locked {
		res, err := node.BackupHome(ctx, home)
		var le *node.HomeLockedError
		if !errors.As(err, &le) {
			return res, err
		}
		// A node started meanwhile: ask it.
	}
	c, err := client.FromHome(home)
	if err != nil {
		return api.BackupResult{}, err
	}
	var res api.BackupResult
	if err := c.Do(ctx, "POST", "/v1/admin/backup", struct{}{}, &res); err != nil {
		return api.BackupResult{}, fmt.Errorf("backup through the running node: %w", err)
	}
	return res, nil
}

// RestoreResult is the --json output of asp restore.
type RestoreResult struct {
	Home   string `json:"home"`
	PeerID string `json:"peerId"`
	Size   uint64 `json:"size"`
	Root   string `json:"root,omitempty"`
}

func (a *app) restoreCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore FILE --home NEWDIR",
		Short: "Restore a backup into a new home and verify its ledger",
		Long: `Restore a backup written by asp backup into a new home, and verify the
whole ledger and the backup's signed checkpoint; a backup that does not
verify leaves nothing behind.

The restored home refuses to start while its original node still answers
at the addresses the backup recorded: two nodes with one identity would
fork the organization's ledger. Stop the original first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			if ents, err := os.ReadDir(home); err == nil && len(ents) > 0 {
				return fmt.Errorf("%s is not empty: restore into a new directory", home)
			}
			res, err := restore(cmd.Context(), args[0], home)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "restored %s into %s: %d ledger entries verify, root %s\nstart it, once the original node is stopped, with: asp node --home %s\n",
				res.PeerID, home, res.Size, res.Root, home)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "new home directory to restore into; must not exist or be empty (required)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func restore(ctx context.Context, file, home string) (_ RestoreResult, err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return RestoreResult{}, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(home)
		}
	}()
	if err := extractArchive(file, home); err != nil {
		return RestoreResult{}, err
	}
	m, err := node.ReadBackupManifest(home)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("%s: %w", file, err)
	}
	v, err := verifyHome(ctx, home)
	if err != nil && !errors.Is(err, errEmptyLedger) {
		return RestoreResult{}, fmt.Errorf("the restored ledger does not verify: %w", err)
	}
	if v.Org != "" && v.Org != m.PeerID {
		return RestoreResult{}, fmt.Errorf("the backup's identity is %s, its manifest says %s", v.Org, m.PeerID)
	}
	if v.Size != m.Size {
		return RestoreResult{}, fmt.Errorf("the restored ledger holds %d entries, the backup's manifest %d", v.Size, m.Size)
	}
	if m.Size > 0 {
		cp, err := os.ReadFile(filepath.Join(home, node.BackupCheckpointFile))
		if err != nil {
			return RestoreResult{}, fmt.Errorf("backup checkpoint: %w", err)
		}
		l, err := openHomeLedger(home, false)
		if err != nil {
			return RestoreResult{}, err
		}
		stored, err := l.CheckpointAt(m.Size)
		l.Close()
		if err != nil || !bytes.Equal(stored, cp) {
			return RestoreResult{}, fmt.Errorf("the backup's checkpoint is not the one its ledger signed at size %d (%v)", m.Size, err)
		}
	}
	if err := node.WriteRestoredMarker(home, m.Addrs); err != nil {
		return RestoreResult{}, err
	}
	return RestoreResult{Home: home, PeerID: m.PeerID, Size: v.Size, Root: v.Root}, nil
}

// extractArchive unpacks a backup into home: regular files and
// directories only, every path inside home.
func extractArchive(file, home string) error {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no backup file %s", file)
		}
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s is not a backup (not gzip): %w", file, err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if !filepath.IsLocal(name) || strings.HasPrefix(name, node.BackupsDir) {
			return fmt.Errorf("%s: entry %q is outside the home", file, hdr.Name)
		}
		path := filepath.Join(home, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: entry %q is not a file or directory", file, hdr.Name)
		}
	}
}
