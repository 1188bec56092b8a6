package api

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/aspnode/asp/protocol"
)

// The OpenAPI document types what the Go types leave open: terms, with
// the protocol's own patterns for decimals, currencies and periods and
// every field the protocol's JSON form has, and performatives as the
// protocol's enumeration.
func TestOpenAPITermsAndPerformatives(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/v1/openapi.json", buyerToken, "")
	h.expect(r, 200, "")
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties           map[string]map[string]any `json:"properties"`
				AdditionalProperties any                       `json:"additionalProperties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	terms := doc.Components.Schemas["Terms"]
	// Every field of the protocol's JSON form of terms, and no other.
	var want []string
	var tm map[string]any
	full := protocol.Terms{Resource: "r", Quantity: "1", Unit: "u", UnitPrice: "1", Currency: "USD", Penalty: "x",
		Arbiter: "a", Provider: "p", Attributes: map[string]string{"k": "v"}, PayWithin: 86400e9}
	b, err := json.Marshal(full)
	if err != nil || json.Unmarshal(b, &tm) != nil {
		t.Fatalf("terms JSON: %s %v", b, err)
	}
	for k := range tm {
		want = append(want, k)
	}
	want = append(want, "deliverBy", "payBy") // times, absent when zero
	var got []string
	for k := range terms.Properties {
		got = append(got, k)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Terms properties %v, the protocol's JSON form has %v", got, want)
	}
	if terms.AdditionalProperties != false {
		t.Errorf("Terms allows other properties")
	}
	for field, good := range map[string][2]string{
		"unitPrice": {"2.55", "2.5e0"}, "quantity": {"1000", "-1"}, "currency": {"USD", "usd"}, "payWithin": {"P30D", "30 days"},
	} {
		re := regexp.MustCompile(terms.Properties[field]["pattern"].(string))
		if !re.MatchString(good[0]) || re.MatchString(good[1]) {
			t.Errorf("%s pattern %s: %q should match, %q should not", field, re, good[0], good[1])
		}
	}
	// The message request names performatives by the protocol's list, and
	// refers to the terms.
	msg := doc.Components.Schemas["SendMessageRequest"].Properties
	var enum []string
	for _, p := range msg["performative"]["enum"].([]any) {
		enum = append(enum, p.(string))
	}
	var perfs []string
	for _, p := range protocol.Performatives {
		perfs = append(perfs, string(p))
	}
	if !reflect.DeepEqual(enum, perfs) {
		t.Errorf("performative enum %v, protocol %v", enum, perfs)
	}
	if msg["terms"]["$ref"] != "#/components/schemas/Terms" || doc.Components.Schemas["CommitmentInfo"].Properties["terms"]["$ref"] != "#/components/schemas/Terms" {
		t.Errorf("terms not typed: %v %v", msg["terms"], doc.Components.Schemas["CommitmentInfo"].Properties["terms"])
	}
}
