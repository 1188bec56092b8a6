// Package strictjson decodes JSON that is signed or authoritative, so that
// every reader sees the one value that was meant.
//
// encoding/json is lenient in two ways that let two readers of the same
// bytes disagree: it keeps the last of duplicate object keys (other
// decoders keep the first, or refuse), and it matches object keys to
// struct fields case-insensitively, with Unicode folding ("AGENTID",
// "agentİd" and "agentId" all fill the same field, while a reader that
// matches exactly sees an unknown key). Whoever could send such bytes —
// an agent, a counterparty, a forger of a bundle — could show a checker
// one value and a later reader another. Decode refuses both before it
// decodes.
//
// Decode is pure: no I/O, no clock, no goroutines.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Sentinel errors; test with errors.Is. Decode wraps them in a *KeyError.
var (
	// ErrDuplicateKey: an object holds the same key twice (after JSON
	// unescaping, so "a" and "\u0061" are the same key).
	ErrDuplicateKey = errors.New("duplicate object key")
	// ErrKeyCase: an object key names a struct field only when case is
	// ignored.
	ErrKeyCase = errors.New("object key matches a field only in another case")
	// ErrUnknownKey: an object key names no field of the struct it fills.
	ErrUnknownKey = errors.New("unknown field")
	// ErrTooDeep: arrays and objects nest deeper than MaxDepth.
	ErrTooDeep = errors.New("JSON nested too deeply")
	// ErrTrailing: data follows the JSON value.
	ErrTrailing = errors.New("data after the JSON value")
)

// MaxDepth is the deepest nesting of arrays and objects Decode reads, as
// encoding/json's own limit: json.Decoder.Token has none, and the key scan
// must not let a body of a million "[" take a million stack frames.
const MaxDepth = 10000

// KeyError is a refused object key.
type KeyError struct {
	// Path is where the object sits, as a JSON Pointer (RFC 6901): "" for
	// the top level, "/terms" for the object under key "terms".
	Path string
	// Key is the key refused.
	Key string
	// Field is, for ErrKeyCase, the field's exact name.
	Field string
	// Err is ErrDuplicateKey, ErrKeyCase or ErrUnknownKey.
	Err error
}

func (e *KeyError) Error() string {
	at := e.Path
	if at == "" {
		at = "the top level"
	}
	if errors.Is(e.Err, ErrKeyCase) {
		return fmt.Sprintf("key %q at %s: %v (the field is %q)", e.Key, at, e.Err, e.Field)
	}
	return fmt.Sprintf("key %q at %s: %v", e.Key, at, e.Err)
}

// Unwrap returns ErrDuplicateKey, ErrKeyCase or ErrUnknownKey.
func (e *KeyError) Unwrap() error { return e.Err }

// Decode decodes data, which must hold exactly one JSON value, into v (a
// non-nil pointer) as encoding/json does with DisallowUnknownFields, after
// refusing:
//
//   - a duplicate key in any object at any depth (ErrDuplicateKey), inside
//     json.RawMessage values and values a type decodes itself too;
//   - a key that names a field of the struct it fills in other than the
//     field's exact spelling (ErrKeyCase), or no field (ErrUnknownKey); a
//     type with its own UnmarshalJSON checks its own keys (by calling
//     Decode);
//   - anything after the value (ErrTrailing).
//
// Other errors are encoding/json's (*json.SyntaxError,
// *json.UnmarshalTypeError, unknown fields...). What Decode accepts,
// encoding/json decodes to the same value.
func Decode(data []byte, v any) error {
	if err := Check(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

// Check reports the first duplicate key, or key that is not exactly the
// name of a field of t (the type decoded into; nil: any), in the first
// JSON value of data. It does not decode; a syntax error is reported as
// encoding/json's.
func Check(data []byte, t reflect.Type) error {
	c := checker{dec: json.NewDecoder(bytes.NewReader(data))}
	c.dec.UseNumber() // numbers are skipped: no need to parse them
	return c.value(target(t))
}

// checker walks the tokens of one JSON value. path holds the keys and
// indexes leading to the current value; it is formatted only for an
// error.
type checker struct {
	dec  *json.Decoder
	path []step
}

// step is one object key, or one array index (key "" and index >= 0).
type step struct {
	key   string
	index int
}

// pointer formats the current path as a JSON Pointer.
func (c *checker) pointer() string {
	var b strings.Builder
	for _, p := range c.path {
		b.WriteByte('/')
		if p.index >= 0 {
			b.WriteString(strconv.Itoa(p.index))
		} else {
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p.key))
		}
	}
	return b.String()
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// target returns the type whose keys matter when a JSON value is decoded
// into t: pointers are followed; nil for a type that decodes itself or
// takes any key (interfaces).
func target(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
			t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

func (c *checker) value(t reflect.Type) error {
	tok, err := c.dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if len(c.path) >= MaxDepth {
		return ErrTooDeep
	}
	switch d {
	case '{':
		return c.object(t)
	case '[':
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = target(t.Elem())
		}
		c.path = append(c.path, step{})
		for i := 0; c.dec.More(); i++ {
			c.path[len(c.path)-1].index = i
			if err := c.value(et); err != nil {
				return err
			}
		}
		c.path = c.path[:len(c.path)-1]
		_, err := c.dec.Token() // ']'
		return err
	}
	return fmt.Errorf("unexpected %v", d)
}

func (c *checker) object(t reflect.Type) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = structFields(t)
		case reflect.Map:
			elem = target(t.Elem())
		}
	}
	// Objects are small: a list finds a repeated key as fast as a map
	// would, without allocating one per object.
	var seenBuf [16]string
	seen := seenBuf[:0]
	var seenMap map[string]struct{}
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key %v is not a string", tok)
		}
		dup := false
		if seenMap != nil {
			_, dup = seenMap[key]
			seenMap[key] = struct{}{}
		} else {
			dup = slices.Contains(seen, key)
			seen = append(seen, key)
			if len(seen) > len(seenBuf) {
				seenMap = make(map[string]struct{}, 2*len(seen))
				for _, k := range seen {
					seenMap[k] = struct{}{}
				}
			}
		}
		if dup {
			return &KeyError{Path: c.pointer(), Key: key, Err: ErrDuplicateKey}
		}
		vt := elem
		if fields != nil {
			ft, exact := fields[key]
			if !exact {
				// encoding/json would match a folded key, or refuse an
				// unknown one: refuse both here, whatever its folding.
				for name := range fields {
					if strings.EqualFold(name, key) {
						return &KeyError{Path: c.pointer(), Key: key, Field: name, Err: ErrKeyCase}
					}
				}
				return &KeyError{Path: c.pointer(), Key: key, Err: ErrUnknownKey}
			}
			vt = target(ft)
		}
		c.path = append(c.path, step{key: key, index: -1})
		if err := c.value(vt); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
	}
	_, err := c.dec.Token() // '}'
	return err
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// structFields returns the JSON names of t's fields, as encoding/json
// sees them (tags, embedded structs promoted), with their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := make(map[string]reflect.Type)
	collectFields(t, out, map[reflect.Type]bool{})
	fieldCache.Store(t, out)
	return out
}

func collectFields(t reflect.Type, out map[string]reflect.Type, visiting map[reflect.Type]bool) {
	if visiting[t] {
		return
	}
	visiting[t] = true
	defer delete(visiting, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				// Promoted fields; a field of t itself wins over them.
				promoted := make(map[string]reflect.Type)
				collectFields(ft, promoted, visiting)
				for k, v := range promoted {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}
