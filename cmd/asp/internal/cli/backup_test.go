package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// A backup taken while deals are in flight restores into a new home whose
// ledger verifies; the restored home refuses to start while the original
// runs, and once the original is stopped it starts as the organisation and
// makes a deal.
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("plays deals and runs a node process")
	}
	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil); err != nil {
		t.Fatal(err)
	}

	// Deals in flight while the backup is taken.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil); err != nil {
					t.Errorf("deal: %v", err)
					return
				}
			}
		}()
	}
	home := net.Nodes[1].Home
	file := filepath.Join(t.TempDir(), "vendor.backup")
	code, stdout, stderr := run(t, "backup", "--home", home, "--out", file, "--json")
	close(done)
	wg.Wait()
	var out BackupOutput
	if err := json.Unmarshal([]byte(stdout), &out); code != ExitOK || err != nil || out.Size == 0 || out.Checkpoint == "" {
		t.Fatalf("backup of a running node: exit %d: %s %s (%v)", code, stdout, stderr, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := os.Stat(out.Dir); err == nil {
		t.Errorf("backup left its directory %s", out.Dir)
	}
	code, stdout, _ = run(t, "status", "--home", home)
	if code != ExitOK || strings.Contains(stdout, "last backup  none") {
		t.Errorf("status after a backup:\n%s", stdout)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	code, stdout, stderr = run(t, "restore", file, "--home", restored, "--json")
	var res RestoreResult
	if err := json.Unmarshal([]byte(stdout), &res); code != ExitOK || err != nil || res.Size != out.Size || res.PeerID != net.Nodes[1].PeerID() {
		t.Fatalf("restore: exit %d: %s %s (%v)", code, stdout, stderr, err)
	}
	code, stdout, stderr = run(t, "audit", "verify", "--home", restored)
	if code != ExitOK || !strings.Contains(stdout, "ok: ledger of") {
		t.Fatalf("audit verify of the restored home: exit %d: %s %s", code, stdout, stderr)
	}
	code, _, stderr = run(t, "restore", file, "--home", restored)
	if code != ExitFailure || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore over a home: exit %d, %q", code, stderr)
	}

	// The original runs: the restored home refuses to start.
	boot := net.Nodes[0].LoopbackAddr()
	early := startAsp(t, "node", "--home", restored, "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", boot)
	select {
	case <-early.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the restored home started while the original runs")
	}
	if b, _ := os.ReadFile(early.log); !strings.Contains(string(b), "its original node still runs as "+net.Nodes[1].PeerID()) {
		t.Fatalf("restored start while the original runs: %s", b)
	}

	// Stopped, the original gives way to the restored home.
	net.Nodes[1].Stop()
	startNodeProc(t, restored, "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", boot)
	if _, err := os.Stat(filepath.Join(restored, node.RestoredFile)); err == nil {
		t.Error("the restored marker outlived the first start")
	}
	url := apiURLOf(t, restored)
	moved := *vendor
	moved.Client = client.New(url, vendor.Token)
	moved.Admin, _ = client.FromHome(restored)
	if _, err := scenario.PlaySeedDeal(ctx, buyer, &moved, nil); err != nil {
		t.Fatalf("deal with the restored node: %v", err)
	}
}

// A stopped home backs up under its lock and restores.
func TestBackupStopped(t *testing.T) {
	home := filepath.Join(t.TempDir(), "org")
	if code, _, stderr := run(t, "init", "--home", home, "--profile", "test"); code != ExitOK {
		t.Fatal(stderr)
	}
	file := filepath.Join(t.TempDir(), "org.backup")
	if code, _, stderr := run(t, "backup", "--home", home, "--out", file); code != ExitOK {
		t.Fatalf("backup of a stopped home: %s", stderr)
	}
	code, _, stderr := run(t, "backup", "--home", home, "--out", file)
	if code != ExitFailure || !strings.Contains(stderr, "exists") {
		t.Errorf("backup over a file: exit %d, %q", code, stderr)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, _, stderr := run(t, "restore", file, "--home", restored); code != ExitOK {
		t.Fatalf("restore: %s", stderr)
	}
	for _, f := range []string{node.IdentityFile, node.AdminTokenFile, node.ConfigFile} {
		a, _ := os.ReadFile(filepath.Join(home, f))
		b, err := os.ReadFile(filepath.Join(restored, f))
		if err != nil || string(a) != string(b) {
			t.Errorf("restored %s differs (%v)", f, err)
		}
	}
	code, _, stderr = run(t, "restore", filepath.Join(t.TempDir(), "none"), "--home", filepath.Join(t.TempDir(), "x"))
	if code != ExitFailure || !strings.Contains(stderr, "no backup file") {
		t.Errorf("restore of a missing file: exit %d, %q", code, stderr)
	}
}
