package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// mutations of a JSON form that encoding/json alone reads without a word:
// a key given twice (the last wins) and a key in another case (folded to
// the field). Each must be refused as malformed, at the top level and
// nested, so that no reader sees another value than the one signed.
func strictMutations(t *testing.T, j, key, dupValue string) map[string]string {
	t.Helper()
	k := `"` + key + `":`
	if !strings.Contains(j, k) {
		t.Fatalf("no %s in %s", k, j)
	}
	up := `"` + strings.ToUpper(key[:1]) + key[1:] + `":`
	return map[string]string{
		"duplicate " + key: strings.Replace(j, k, k+dupValue+","+k, 1),
		"case " + key:      strings.Replace(j, k, up, 1),
	}
}

func TestJSONFormsRefuseDuplicateAndFoldedKeys(t *testing.T) {
	d := seedDeal(t)
	env := d.Transcript[4] // buyer's PROPOSE 2.55: terms inside the body
	ej, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	bj, err := MarshalBodyJSON(env.Body)
	if err != nil {
		t.Fatal(err)
	}
	tj, err := json.Marshal(Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.55", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := SignCommitmentReceipt(FixtureParty("vendor", "vendor").OrgKey, d.Commitment, 42, []byte("example.org/log\n42\nAAAA\n"))
	if err != nil {
		t.Fatal(err)
	}
	rj, _ := json.Marshal(r)
	a := &Action{CommitmentID: d.Commitment.ID, Kind: ActionClaim, Actor: d.Vendor.String(), Time: t0.Add(24 * time.Hour)}
	if err := a.Sign(FixtureParty("vendor", "vendor").AgentKey, d.VendorCert); err != nil {
		t.Fatal(err)
	}
	aj, _ := json.Marshal(a)
	cj, _ := json.Marshal(d.VendorCert)

	readers := []struct {
		name string
		j    []byte
		keys map[string]string // key → another value to give it first
		read func([]byte) error
	}{
		{"envelope", ej, map[string]string{"sessionId": `"x"`, "unitPrice": `"0.01"`, "performative": `"ACCEPT"`},
			func(b []byte) error { var e Envelope; return json.Unmarshal(b, &e) }},
		{"body", bj, map[string]string{"unitPrice": `"0.01"`, "terms": `{}`},
			func(b []byte) error { _, err := DecodeBodyJSON(Propose, b); return err }},
		{"terms", tj, map[string]string{"unitPrice": `"0.01"`, "quantity": `"1"`},
			func(b []byte) error { var x Terms; return json.Unmarshal(b, &x) }},
		{"receipt", rj, map[string]string{"commitmentId": `"cmt_x"`},
			func(b []byte) error { var x Receipt; return json.Unmarshal(b, &x) }},
		{"action", aj, map[string]string{"kind": `"confirm"`},
			func(b []byte) error { var x Action; return json.Unmarshal(b, &x) }},
		{"certificate", cj, map[string]string{"agentId": `"agent://x/y"`},
			func(b []byte) error { var x Certificate; return json.Unmarshal(b, &x) }},
	}
	for _, rd := range readers {
		if err := rd.read(rd.j); err != nil {
			t.Fatalf("%s: the form itself: %v\n%s", rd.name, err, rd.j)
		}
		for key, other := range rd.keys {
			for what, bad := range strictMutations(t, string(rd.j), key, other) {
				err := rd.read([]byte(bad))
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s, %s: %v, want ErrMalformed\n%s", rd.name, what, err, bad)
				}
			}
		}
	}
}
