package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/aspnode/asp/internal/strictjson"
)

// b64 is a byte string: a CBOR byte string, and in JSON a base64url
// string without padding (RFC 8949 §6.1).
type b64 []byte

func (b b64) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

func (b *b64) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: byte string: %v", ErrMalformed, err)
	}
	v, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: byte string %q is not unpadded base64url", ErrMalformed, s)
	}
	*b = v
	return nil
}

// strictJSON decodes one JSON value into v, refusing unknown fields,
// duplicate keys at any depth, keys that name a field in another case,
// trailing data (all ErrMalformed), and numbers where strings belong
// (ErrFloat). encoding/json alone keeps the last of duplicate keys and
// folds case, so a signer's software and a verifier's could read two
// values from one signed form; strictjson leaves one reading.
func strictJSON(data []byte, v any) error {
	if len(data) > MaxEnvelopeSize*2 {
		return fmt.Errorf("%w: %d bytes of JSON", ErrTooLarge, len(data))
	}
	if err := strictjson.Decode(data, v); err != nil {
		if errors.Is(err, strictjson.ErrTrailing) {
			return fmt.Errorf("%w: trailing data after JSON value", ErrMalformed)
		}
		return classifyJSONError(err)
	}
	return nil
}

func classifyJSONError(err error) error {
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrFloat) || errors.Is(err, ErrBadDecimal) ||
		errors.Is(err, ErrTooLarge) {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Value == "number" {
		return fmt.Errorf("%w: field %q: %v", ErrFloat, te.Field, err)
	}
	return fmt.Errorf("%w: json: %v", ErrMalformed, err)
}

// Text limits.
const (
	maxShort = 256  // ids, names, codes, units
	maxText  = 4096 // free text
	maxMap   = 64   // attributes and data entries
	maxList  = 64   // obligations, penalties, schemas
)

var tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)

func checkText(field, s string, max int, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s is required", ErrMalformed, field)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, field, max)
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("%w: %s is not valid text", ErrMalformed, field)
	}
	return nil
}

func checkToken(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if !tokenRE.MatchString(s) {
		return fmt.Errorf("%w: %s %q is not a token [a-z0-9][a-z0-9_.:-]{0,63}", ErrMalformed, field, s)
	}
	return nil
}

func checkMap(field string, m map[string]string) error {
	if len(m) > maxMap {
		return fmt.Errorf("%w: %s has more than %d entries", ErrMalformed, field, maxMap)
	}
	for k, v := range m {
		if err := checkText(field+" key", k, maxShort, true); err != nil {
			return err
		}
		if err := checkText(field+"["+k+"]", v, maxText, false); err != nil {
			return err
		}
	}
	return nil
}

func checkAgent(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if _, err := ParseAgentID(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func checkDecimal(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if err := ValidDecimal(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}
