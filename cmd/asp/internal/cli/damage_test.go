package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
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
