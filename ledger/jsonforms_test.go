package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aspnode/asp/internal/strictjson"
)

// TestKeyCertificateStrictJSON: a certificate whose JSON names the
// checkpoint key twice (encoding/json alone keeps the last) or in another
// case is refused wherever it is read: from a receipt, the store or a
// bundle.
func TestKeyCertificateStrictJSON(t *testing.T) {
	_, c, _ := testKeys(t)
	good, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back KeyCertificate
	if err := json.Unmarshal(good, &back); err != nil || back.Key != c.Key || back.Verify() != nil {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for name, bad := range map[string][]byte{
		"duplicate key": bytes.Replace(good, []byte(`"key":"`), []byte(`"key":"evil+00000000+AAAA","key":"`), 1),
		"duplicate org": bytes.Replace(good, []byte(`"org":"`), []byte(`"org":"12D3KooWevil","org":"`), 1),
		"folded key":    bytes.Replace(good, []byte(`"key":`), []byte(`"Key":`), 1),
		"folded origin": bytes.Replace(good, []byte(`"origin":`), []byte(`"ORIGIN":`), 1),
	} {
		if bytes.Equal(bad, good) {
			t.Fatalf("%s: no change in %s", name, good)
		}
		var x KeyCertificate
		err := json.Unmarshal(bad, &x)
		if !errors.Is(err, strictjson.ErrDuplicateKey) && !errors.Is(err, strictjson.ErrKeyCase) {
			t.Errorf("%s: %v, want a refusal\n%s", name, err, bad)
		}
	}
}

// TestBundleStrictJSON: a bundle whose manifest or certificate carries a
// key twice, the genuine value last, does not verify.
func TestBundleStrictJSON(t *testing.T) {
	l := bundleLedger(t, 30, 10)
	orig := readTar(t, bundleBytes(t, l, BundleExtras{}))
	if _, err := VerifyBundleReader(bytes.NewReader(writeTar(orig)), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, member, what string
		old, new           string
	}{
		{"manifest size twice", memberManifest, "manifest", `"size": 30`, `"size": 29, "size": 30`},
		{"manifest Root", memberManifest, "manifest", `"root":`, `"Root":`},
		{"certificate key twice", memberCertificates, "certificate", `"key": "`, `"key": "evil+00000000+AAAA", "key": "`},
	} {
		ms := mutateMember(orig, tc.member, func(b []byte) []byte {
			out := bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1)
			if bytes.Equal(out, b) {
				t.Fatalf("%s: no %s in %s", tc.name, tc.old, b)
			}
			return out
		})
		_, err := VerifyBundleReader(bytes.NewReader(writeTar(ms)), VerifyOptions{})
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.What != tc.what {
			t.Errorf("%s: %v, want a refusal naming the %s", tc.name, err, tc.what)
		}
	}
}
