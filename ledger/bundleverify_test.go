package ledger

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestBundleVerifierReuse: a BundleVerifier starts afresh on each bundle,
// so a bundle that failed leaves nothing behind, and two runs over the same
// bundle give the same report. The ledger is closed first: verifying needs
// only the bundle.
func TestBundleVerifierReuse(t *testing.T) {
	l := bundleLedger(t, 600, 200)
	good := bundleBytes(t, l, BundleExtras{Files: map[string][]byte{"a": []byte("x")}})
	ms := readTar(t, good)
	for i := range ms {
		if ms[i].name == memberProofs {
			ms[i].data = append(bytes.Clone(ms[i].data), 0)
		}
	}
	bad := writeTar(ms)
	l.Close()

	v := NewBundleVerifier(VerifyOptions{Org: testPeerID()})
	first, err := v.VerifyReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	kept := *first
	if _, err := v.VerifyReader(bytes.NewReader(bad)); !errors.Is(err, ErrInvalidBundle) {
		t.Fatalf("bundle with a trailing proof byte: %v", err)
	}
	again, err := v.VerifyReader(bytes.NewReader(good))
	if err != nil {
		t.Fatalf("the good bundle after a bad one: %v", err)
	}
	if !reflect.DeepEqual(first, again) || !reflect.DeepEqual(kept, *first) {
		t.Fatalf("reports differ: %+v, then %+v", first, again)
	}
	if again.Size != 600 || again.Checkpoints != 3 || len(again.Extra) != 1 {
		t.Fatalf("report %+v", again)
	}
}
