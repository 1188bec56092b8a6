package cli

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// A commitment update naming a commitment the ledger never recorded (an
// operator inventing a fulfilment) is refused by audit verify, on the
// home's ledger and on its bundle, naming the entry; with the commitment
// recorded, the same ledger verifies.
func TestAuditVerifyUpdateOfUnrecordedCommitment(t *testing.T) {
	for _, invent := range []bool{false, true} {
		home := filepath.Join(t.TempDir(), "home")
		l := initHomeLedger(t, home)
		deal, err := protocoltest.SeedDeal(protocoltest.FixtureParty("b", "buyer"), protocoltest.FixtureParty("v", "vendor"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := deal.Commitment
		cb, err := protocol.EncodeCommitment(c)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		recs := []ledger.Record{
			ledger.CommitmentRecord(now, c.SessionID, c.ID, cb),
			ledger.CommitmentUpdateRecord(now, c.SessionID, c.ID, ledger.CommitmentUpdate{State: protocol.CommitmentActive}),
		}
		if invent {
			recs[0] = ledger.EnvelopeRecord(ledger.KindMessageSent, deal.Transcript[0], mustEncode(t, deal.Transcript[0]))
		}
		ents, err := l.Append(context.Background(), recs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		bundle := filepath.Join(t.TempDir(), "b.bundle")
		if code, _, stderr := run(t, "audit", "export", "--home", home, "--out", bundle); code != ExitOK {
			t.Fatalf("export: exit %d: %s", code, stderr)
		}
		want := "entry " + strconv.FormatUint(ents[1].Index, 10)
		for _, args := range [][]string{{"audit", "verify", "--home", home}, {"audit", "verify", bundle}} {
			code, stdout, stderr := run(t, args...)
			switch {
			case !invent && code != ExitOK:
				t.Errorf("%v: exit %d: %s%s", args, code, stdout, stderr)
			case invent && (code != ExitFailure || !strings.Contains(stderr, want)):
				t.Errorf("%v with an invented commitment: exit %d, stderr %q; want exit 1 naming %q", args, code, stderr, want)
			}
		}
	}
}

func mustEncode(t *testing.T, env *protocol.Envelope) []byte {
	t.Helper()
	b, err := protocol.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
