package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	Name  string            `json:"name"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

type Embedded struct {
	Promoted string `json:"promoted"`
}

type sample struct {
	Embedded
	ID     string           `json:"id"`
	Count  int              `json:"count"`
	Inner  *inner           `json:"inner,omitempty"`
	List   []inner          `json:"list,omitempty"`
	ByKey  map[string]inner `json:"byKey,omitempty"`
	Raw    json.RawMessage  `json:"raw,omitempty"`
	Any    any              `json:"any,omitempty"`
	Plain  string           // no tag: the Go name
	Hidden string           `json:"-"`
	hidden string
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"id":"a","id":"b"}`, ErrDuplicateKey},
		{`{"id":"a","\u0069d":"b"}`, ErrDuplicateKey},
		{`{"inner":{"name":"a","name":"b"}}`, ErrDuplicateKey},
		{`{"inner":{"attrs":{"k":"1","k":"2"}}}`, ErrDuplicateKey},
		{`{"list":[{"name":"a"},{"name":"a","name":"b"}]}`, ErrDuplicateKey},
		{`{"byKey":{"x":{},"x":{}}}`, ErrDuplicateKey},
		{`{"raw":{"a":1,"a":2}}`, ErrDuplicateKey},
		{`{"any":[{"a":1,"a":2}]}`, ErrDuplicateKey},
		{`{"ID":"a"}`, ErrKeyCase},
		{`{"Id":"a"}`, ErrKeyCase},
		{`{"inner":{"NAME":"a"}}`, ErrKeyCase},
		{`{"list":[{"Name":"a"}]}`, ErrKeyCase},
		{`{"byKey":{"x":{"nAme":"a"}}}`, ErrKeyCase},
		{`{"Promoted":"a"}`, ErrKeyCase},
		{`{"plain":"a"}`, ErrKeyCase},
		{`{"id":"a","ID":"b"}`, ErrKeyCase},
		{"{\"\u212aey\":1}", ErrUnknownKey}, // Kelvin sign: no field "key"
		{`{"Hidden":"x"}`, ErrUnknownKey},
		{`{"hidden":"x"}`, ErrUnknownKey},
		{`{"other":1}`, ErrUnknownKey},
		{`{"id":"a"} {}`, ErrTrailing},
		{`{"any":` + strings.Repeat("[", MaxDepth+10) + strings.Repeat("]", MaxDepth+10) + `}`, ErrTooDeep},
	} {
		var v sample
		err := Decode([]byte(tc.in), &v)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.in, err, tc.want)
		}
		// encoding/json alone takes all but trailing data and unknown keys.
		if tc.want == ErrDuplicateKey || tc.want == ErrKeyCase {
			if err := json.Unmarshal([]byte(tc.in), new(sample)); err != nil {
				t.Errorf("%s: encoding/json refuses it too (%v): the case shows nothing", tc.in, err)
			}
		}
	}
}

func TestDecodeKelvinFolding(t *testing.T) {
	// encoding/json matches "\u212aind" (Kelvin sign) to a field "kind".
	type kinded struct {
		Kind string `json:"kind"`
	}
	in := []byte("{\"\u212aind\":\"x\"}")
	var lax kinded
	if err := json.Unmarshal(in, &lax); err != nil || lax.Kind != "x" {
		t.Skipf("encoding/json no longer folds the Kelvin sign (%v %q)", err, lax.Kind)
	}
	if err := Decode(in, new(kinded)); !errors.Is(err, ErrKeyCase) {
		t.Fatalf("Kelvin-sign key: %v, want ErrKeyCase", err)
	}
}

func TestDecodeAccepts(t *testing.T) {
	in := `{"promoted":"p","id":"a","count":3,"inner":{"name":"n","attrs":{"K":"1","k":"2"}},
		"list":[{"name":"x"}],"byKey":{"A":{"name":"y"},"a":{}},"raw":{"z":[1,{"q":2}]},"any":{"ID":1,"id":2},"Plain":"pl"}`
	var got, want sample
	if err := Decode([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	var e *KeyError
	err := Decode([]byte(`{"inner":{"name":"a","Name":"b"}}`), &got)
	if !errors.As(err, &e) || e.Path != "/inner" || e.Key != "Name" || e.Field != "name" {
		t.Fatalf("error %v (%+v)", err, e)
	}
}

// selfDecoder decodes itself, leniently: its own keys are its business,
// but duplicates inside it are still refused.
type selfDecoder struct{ M map[string]int }

func (s *selfDecoder) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &s.M) }

func TestDecodeCustomUnmarshaler(t *testing.T) {
	type outer struct {
		S selfDecoder `json:"s"`
	}
	var o outer
	if err := Decode([]byte(`{"s":{"Any":1,"any":2}}`), &o); err != nil || o.S.M["Any"] != 1 {
		t.Fatalf("%v %+v", err, o)
	}
	if err := Decode([]byte(`{"s":{"a":1,"a":2}}`), &o); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate inside a self-decoding value: %v", err)
	}
}

// FuzzDecode is differential: whatever Decode accepts, encoding/json
// decodes to the same value, and the value round-trips through Decode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","count":1,"inner":{"name":"n","attrs":{"a":"b"}}}`,
		`{"id":"a","id":"b"}`, `{"ID":"a"}`, `{"list":[{"name":"x"},{"name":"y"}],"byKey":{"k":{"name":"z"}}}`,
		`{"raw":{"a":[1,2,{"b":null}]},"any":[true,{"x":"y"}]}`, `{"promoted":"p","Plain":"q"}`,
		`{"id":"\u0061"}`, `{"inner":null}`, `[]`, `null`, `{"count":1e2}`, `{"id":"a"}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict sample
		if err := Decode(data, &strict); err != nil {
			return
		}
		var lax sample
		if err := json.Unmarshal(data, &lax); err != nil {
			t.Fatalf("Decode accepts %q, encoding/json refuses it: %v", data, err)
		}
		if !reflect.DeepEqual(strict, lax) {
			t.Fatalf("%q: Decode %+v, encoding/json %+v", data, strict, lax)
		}
		again, err := json.Marshal(strict)
		if err != nil {
			t.Fatal(err)
		}
		var back sample
		if err := Decode(again, &back); err != nil {
			t.Fatalf("re-encoded %s refused: %v", again, err)
		}
	})
}

var benchJSON = []byte(`{"promoted":"p","id":"ses_0123456789abcdef","count":3,"inner":{"name":"n","attrs":{"a":"1","b":"2"}},
	"list":[{"name":"x"},{"name":"y"},{"name":"z"}],"byKey":{"k":{"name":"v"}},"raw":{"z":[1,{"q":2}]},"any":{"w":1},"Plain":"pl"}`)

// BenchmarkDecode compares Decode with encoding/json on a small nested
// object: the price of the key scan.
func BenchmarkDecode(b *testing.B) {
	b.Run("strictjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v sample
			if err := Decode(benchJSON, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v sample
			if err := json.Unmarshal(benchJSON, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
