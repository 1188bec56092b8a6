package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// largeBundleEntries is the size of the ledger TestAuditVerifyLargeBundle
// exports: several scan batches, so that the per-entry hook runs on several
// workers at once. ASP_LARGE_BUNDLE overrides it.
const largeBundleEntries = 20_480

// writeDeals fills the ledger of a fresh node home with n entries, as a
// node records negotiations: per deal, a session-opened entry, the six
// signed messages of the seed deal and the commitment. Signing is the
// expensive part, so the deals are 64 distinct sessions recorded over and
// over (a ledger does not check that a session is new; the verifier checks
// every signature of every entry). The ledger is checkpointed every 1024
// entries and closed.
func writeDeals(t testing.TB, home string, n int) {
	t.Helper()
	l := initHomeLedger(t, home)
	ctx := context.Background()
	buyer, vendor := protocoltest.FixtureParty("b", "buyer"), protocoltest.FixtureParty("v", "vendor")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []ledger.Record
	for d := 0; len(recs) < n && d < 64; d++ {
		deal, err := protocoltest.SeedDeal(buyer, vendor, start.Add(time.Duration(d)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		sid := deal.Transcript[0].SessionID
		recs = append(recs, ledger.Record{Kind: ledger.KindSessionOpened, Session: sid, Body: []byte(sid)})
		for i, env := range deal.Transcript {
			raw, err := protocol.EncodeEnvelope(env)
			if err != nil {
				t.Fatal(err)
			}
			k := ledger.KindMessageSent
			if i%2 == 1 {
				k = ledger.KindMessageReceived
			}
			recs = append(recs, ledger.Record{Kind: k, Session: sid, Body: raw})
		}
		c, err := protocol.EncodeCommitment(deal.Commitment)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, ledger.Record{Kind: ledger.KindCommitment, Session: sid, Commitment: deal.Commitment.ID, Body: c})
	}
	for i := 0; len(recs) < n; i++ {
		recs = append(recs, recs[i])
	}
	recs = recs[:n]
	for len(recs) > 0 {
		m := min(1024, len(recs))
		if _, err := l.Append(ctx, recs[:m]...); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		recs = recs[m:]
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A bundle of real size verifies through the command line. Its entries
// span several scan batches, so the verifier's per-entry hook runs on
// several goroutines at once (run under -race in CI).
func TestAuditVerifyLargeBundle(t *testing.T) {
	n := largeBundleEntries
	if s := os.Getenv("ASP_LARGE_BUNDLE"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("ASP_LARGE_BUNDLE: %v", err)
		}
	}
	home := filepath.Join(t.TempDir(), "home")
	writeDeals(t, home, n)
	bundle := filepath.Join(t.TempDir(), "large.bundle")
	if code, _, stderr := run(t, "audit", "export", "--home", home, "--out", bundle); code != ExitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := run(t, "audit", "verify", bundle)
	if code != ExitOK {
		t.Fatalf("verify bundle: exit %d: %s%s", code, stdout, stderr)
	}
	// Every message and commitment entry (7 of each 8) was checked.
	signed := n / 8 * 7
	if r := n % 8; r > 1 {
		signed += r - 1
	}
	if want := fmt.Sprintf("%d entries", n); !strings.Contains(stdout, want) || !strings.Contains(stdout, fmt.Sprintf("%d signed entries checked", signed)) {
		t.Errorf("verify bundle: %q; want %s and %d signed entries", stdout, want, signed)
	}
}
