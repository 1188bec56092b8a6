package cli

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// writeLedger fills the ledger of a fresh node home with the seed deal's
// transcript as message entries; with forge, the first offer's price is
// changed after it was signed (the ledger's hashes and checkpoints are
// computed over the forged bytes, as a forger rewriting history would).
func writeLedger(t *testing.T, forge bool) (home string, forged uint64) {
	t.Helper()
	home = filepath.Join(t.TempDir(), "home")
	l := initHomeLedger(t, home)
	deal, err := protocoltest.SeedDeal(protocoltest.FixtureParty("b", "buyer"), protocoltest.FixtureParty("v", "vendor"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var recs []ledger.Record
	for i, env := range deal.Transcript {
		raw, err := protocol.EncodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		if forge && i == 2 {
			f := *env
			body := *f.Body.(*protocol.ProposeBody)
			terms := *body.Terms
			terms.UnitPrice = "1.00"
			body.Terms = &terms
			f.Body = &body
			if raw, err = protocol.EncodeEnvelope(&f); err != nil {
				t.Fatal(err)
			}
		}
		recs = append(recs, ledger.Record{Kind: ledger.KindMessageSent, Session: env.SessionID, Body: raw})
	}
	ents, err := l.Append(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return home, ents[2].Index
}

func TestAuditVerify(t *testing.T) {
	home, _ := writeLedger(t, false)
	code, stdout, stderr := run(t, "audit", "verify", "--home", home)
	if code != ExitOK || !strings.Contains(stdout, "6 signed entries checked") {
		t.Fatalf("verify --home: exit %d: %s%s", code, stdout, stderr)
	}
	bundle := filepath.Join(t.TempDir(), "b.bundle")
	if code, _, stderr := run(t, "audit", "export", "--home", home, "--out", bundle); code != ExitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := run(t, "audit", "verify", bundle); code != ExitOK {
		t.Fatalf("verify bundle: exit %d: %s%s", code, stdout, stderr)
	}
}

// A forged message is caught by its signature, though every hash and
// checkpoint of the ledger is consistent with it.
func TestAuditVerifyForgedMessage(t *testing.T) {
	home, bad := writeLedger(t, true)
	want := "entry " + strconv.FormatUint(bad, 10)
	code, _, stderr := run(t, "audit", "verify", "--home", home)
	if code != ExitFailure || !strings.Contains(stderr, want) {
		t.Errorf("verify --home: exit %d, stderr %q; want exit 1 naming %q", code, stderr, want)
	}
	bundle := filepath.Join(t.TempDir(), "b.bundle")
	if code, _, stderr := run(t, "audit", "export", "--home", home, "--out", bundle); code != ExitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := run(t, "audit", "verify", "--json", bundle)
	if code != ExitFailure || !strings.Contains(stderr, want) || !strings.Contains(stdout, `"entry": `+strconv.FormatUint(bad, 10)) {
		t.Errorf("verify bundle: exit %d, stdout %s stderr %q; want exit 1 naming %q", code, stdout, stderr, want)
	}
}

// initHomeLedger makes a fresh node home and opens its ledger with the
// home's checkpoint signer, as the node does.
func initHomeLedger(t testing.TB, home string) *ledger.Ledger {
	t.Helper()
	if _, err := node.Init(home, "acme", "test"); err != nil {
		t.Fatal(err)
	}
	key, err := node.LoadIdentity(home)
	if err != nil {
		t.Fatal(err)
	}
	orgKey, err := p2p.Ed25519Key(key)
	if err != nil {
		t.Fatal(err)
	}
	origin := ledger.OriginFor(protocol.PeerIDFromPublicKey(orgKey.Public().(ed25519.PublicKey)))
	signer, cert, err := ledger.NewCheckpointSigner(orgKey, origin)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(home, node.LedgerDir), ledger.Options{Origin: origin, Signer: signer, KeyCertificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
