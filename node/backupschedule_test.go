package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Scheduled backups land in backup.dir and only the newest backup.keep
// files stay.
func TestScheduledBackups(t *testing.T) {
	out := t.TempDir()
	n := startNodeWith(t, filepath.Join(t.TempDir(), "org"), func(c *Config) {
		c.Backup = BackupConfig{Every: time.Second, Dir: out, Keep: 2}
	})
	defer n.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n.ops.mu.Lock()
		made := n.ops.scheduled
		n.ops.mu.Unlock()
		if made >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scheduled backups written, want 3", made)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.Close()
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tar.gz") {
			files = append(files, e.Name())
		}
	}
	if len(files) != 2 {
		t.Fatalf("backup dir holds %v, want the newest 2", files)
	}
	if ents, _ := os.ReadDir(filepath.Join(n.cfg.Home, BackupsDir)); len(ents) != 0 {
		t.Fatalf("backup work directories left: %v", ents)
	}
}

func TestBackupConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"backup: {every: 10ms, dir: b}\n", "backup.every 10ms"},
		{"backup: {every: 6h}\n", "backup.dir: required"},
		{"backup: {every: 6h, dir: b, keep: -1}\n", "backup.keep -1"},
	} {
		home := t.TempDir()
		writeFile(t, filepath.Join(home, ConfigFile), tc.yaml)
		if _, err := LoadConfig(home); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v; want %q", tc.yaml, err, tc.want)
		}
	}
}
