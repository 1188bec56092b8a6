package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/aspnode/asp/node"
)

// runFor runs the command line with a deadline: a node that starts when it
// should not is stopped rather than left running.
func runFor(t *testing.T, d time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out, errOut bytes.Buffer
	code = Run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// flushLedger moves a stopped node's ledger from its write-ahead log into
// table files, as Pebble does once the memtable fills.
func flushLedger(t *testing.T, home string) []string {
	t.Helper()
	dir := filepath.Join(home, node.LedgerDir)
	db, err := pebble.Open(dir, &pebble.Options{ErrorIfNotExists: true, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file after flush")
	}
	return ssts
}

// A flipped byte in a table's data block fails verify and the node cleanly:
// exit 1, one line naming the file, no panic.
func TestDamagedTable(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	writeDeals(t, home, 2000)
	ssts := flushLedger(t, home)
	sst := ssts[len(ssts)-1]
	b, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/4] ^= 0x40 // inside the data blocks (the index and footer are at the end)
	if err := os.WriteFile(sst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(sst)
	for _, args := range [][]string{
		{"audit", "verify", "--home", home},
		{"node", "--home", home},
	} {
		code, stdout, stderr := runFor(t, 2*time.Minute, args...)
		t.Logf("asp %s: exit %d\n%s%s", args[0], code, stdout, stderr)
		if code != ExitFailure || !strings.Contains(stderr, name) || strings.Contains(stdout, "ok") || strings.Contains(stderr, "panic") {
			t.Errorf("asp %q: exit %d, stdout %q, stderr %q; want exit 1 naming %s", args, code, stdout, stderr, name)
		}
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// damageNewestLog overwrites 64 bytes in the middle of the ledger's newest
// write-ahead log, truncates it to half, or to 5 bytes.
func damageNewestLog(t *testing.T, home, how string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(home, node.LedgerDir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log")
	}
	slices.Sort(logs)
	path := logs[len(logs)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "overwrite-mid":
		for i := len(b) / 2; i < len(b)/2+64; i++ {
			b[i] ^= 0x5a
		}
	case "truncate-half":
		b = b[:len(b)/2]
	case "truncate-5":
		b = b[:5]
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Damage to the newest write-ahead log is a rollback: verify and the node
// refuse it naming the sizes; --allow-rollback starts the node, which
// records it, and the ledger verifies again.
func TestWALDamageRefused(t *testing.T) {
	const n = 4096
	orig := filepath.Join(t.TempDir(), "home")
	writeDeals(t, orig, n)
	for _, how := range []string{"overwrite-mid", "truncate-half", "truncate-5"} {
		t.Run(how, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if err := os.CopyFS(home, os.DirFS(orig)); err != nil {
				t.Fatal(err)
			}
			damageNewestLog(t, home, how)
			code, stdout, stderr := run(t, "audit", "verify", "--home", home)
			t.Logf("verify --home: exit %d: %s", code, stderr)
			if code != ExitFailure || strings.Contains(stdout, "ok") || !strings.Contains(stderr, "rolled back") ||
				!strings.Contains(stderr, "4096 entries acknowledged") || !strings.Contains(stderr, "--allow-rollback") {
				t.Fatalf("verify --home: exit %d, stdout %q, stderr %q; want exit 1 naming the rollback", code, stdout, stderr)
			}
			if how != "overwrite-mid" {
				return
			}
			code, _, stderr = runFor(t, 2*time.Minute, "node", "--home", home)
			if code != ExitFailure || !strings.Contains(stderr, "rolled back") {
				t.Fatalf("node: exit %d, stderr %q; want exit 1 naming the rollback", code, stderr)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errOut bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Run(ctx, []string{"node", "--home", home, "--allow-rollback"}, &out, &errOut) }()
			deadline := time.Now().Add(2 * time.Minute)
			for {
				if _, err := os.Stat(filepath.Join(home, node.APIFile)); err == nil {
					break
				}
				select {
				case code := <-done:
					t.Fatalf("node --allow-rollback exited %d: %s", code, errOut.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("node --allow-rollback not ready: %s", errOut.String())
				}
			}
			cancel()
			if code := <-done; code != ExitOK {
				t.Fatalf("node --allow-rollback: exit %d: %s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), "LEDGER ROLLED BACK") {
				t.Errorf("node --allow-rollback did not log the rollback: %s", errOut.String())
			}
			code, stdout, stderr = run(t, "audit", "verify", "--json", "--home", home)
			var res VerifyResult
			if err := json.Unmarshal([]byte(stdout), &res); code != ExitOK || err != nil || !res.OK || res.Kinds["rollback"] != 1 {
				t.Fatalf("verify after --allow-rollback: exit %d: %s%s", code, stdout, stderr)
			}
		})
	}
}
