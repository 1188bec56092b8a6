package node

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// BackupConfig schedules backups (config.yaml `backup:`). Off unless Every
// is set.
type BackupConfig struct {
	// Every is the time between two backups, at least a second (hours in
	// production). Zero: no scheduled backup.
	Every time.Duration `yaml:"every"`
	// Dir receives the backup files, asp-backup-<time>.tar.gz; a relative
	// path is under the home. Required with Every; best on another disk.
	Dir string `yaml:"dir"`
	// Keep is how many backup files to keep in Dir (the newest). Default 7.
	Keep int `yaml:"keep"`
}

const (
	defaultBackupKeep  = 7
	backupFilePrefix   = "asp-backup-"
	backupFileSuffix   = ".tar.gz"
	minBackupEvery     = time.Second
	backupFileTimeForm = "20060102T150405.000000000Z"
)

func (b *BackupConfig) validate() error {
	if b.Every == 0 && b.Dir == "" && b.Keep == 0 {
		return nil
	}
	switch {
	case b.Every < minBackupEvery:
		return fmt.Errorf("config: backup.every %v: want a duration of at least %v (e.g. 6h)", b.Every, minBackupEvery)
	case b.Dir == "":
		return fmt.Errorf("config: backup.dir: required with backup.every (a directory for the backup files, best on another disk)")
	case b.Keep < 0:
		return fmt.Errorf("config: backup.keep %d: want a positive number of files to keep", b.Keep)
	}
	return nil
}

// validateMore runs the checks kept out of Validate's own body.
func (c *Config) validateMore() error {
	if err := c.validateAddrs(); err != nil {
		return err
	}
	return c.Backup.validate()
}

// startBackupSchedule runs scheduled backups until the node closes.
func (n *Node) startBackupSchedule() {
	b := n.cfg.Backup
	if b.Every <= 0 {
		return
	}
	dir := b.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(n.cfg.Home, dir)
	}
	keep := b.Keep
	if keep == 0 {
		keep = defaultBackupKeep
	}
	n.every(b.Every, func() {
		if path, err := n.scheduledBackup(dir, keep); err != nil {
			n.log.Error("scheduled backup failed", "dir", dir, "err", err)
		} else {
			n.log.Info("scheduled backup", "file", path)
		}
	})
}

// scheduledBackup writes one backup file into dir and keeps the newest
// keep files there.
func (n *Node) scheduledBackup(dir string, keep int) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	res, err := n.Backup(n.ctx)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(res.Dir)
	path := filepath.Join(dir, backupFilePrefix+res.Time.Format(backupFileTimeForm)+backupFileSuffix)
	if err := WriteBackupArchive(res.Dir, path); err != nil {
		return "", err
	}
	n.ops.mu.Lock()
	n.ops.scheduled++
	n.ops.mu.Unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return path, err
	}
	var files []string
	for _, e := range ents {
		if name := e.Name(); strings.HasPrefix(name, backupFilePrefix) && strings.HasSuffix(name, backupFileSuffix) {
			files = append(files, name)
		}
	}
	sort.Strings(files) // the names sort by time
	for len(files) > keep {
		if err := os.Remove(filepath.Join(dir, files[0])); err != nil {
			return path, err
		}
		files = files[1:]
	}
	return path, nil
}
