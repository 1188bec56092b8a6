package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/aspnode/asp/protocol"
)

// The sources whose doc comments describe the JSON types in the document.
//
//go:embed api.go backend.go routes.go
var sources embed.FS

// openAPIVersion is the version of the API described (not of OpenAPI).
const openAPIVersion = "1.0.0"

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
	errorRespType  = reflect.TypeFor[ErrorResponse]()
)

// openAPI builds the OpenAPI 3.1 document for the route table.
func openAPI(rs []*route) ([]byte, error) {
	d, err := loadDocs()
	if err != nil {
		return nil, err
	}
	g := &schemaGen{schemas: map[string]any{}, docs: d}
	errRef := g.schema(errorRespType)
	paths := map[string]map[string]any{}
	for _, rt := range rs {
		p := openAPIPath(rt.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		method := strings.ToLower(rt.Method)
		if _, dup := paths[p][method]; dup {
			return nil, fmt.Errorf("duplicate route %s %s", rt.Method, p)
		}
		paths[p][method] = g.operation(rt, errRef)
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "ASP node API",
			"version":     openAPIVersion,
			"description": "The local HTTP API of an ASP node. Every request carries Authorization: Bearer TOKEN (the admin token or an agent token). Errors are {\"error\":{\"code\",\"message\"}}. Agent ids in paths are URL-encoded.",
		},
		"paths":    paths,
		"security": []any{map[string]any{"bearerAuth": []any{}}},
		"components": map[string]any{
			"schemas": g.schemas,
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// openAPIPath turns a route pattern into an OpenAPI path template.
func openAPIPath(p string) string { return strings.ReplaceAll(p, "...}", "}") }

func (g *schemaGen) operation(rt *route, errRef map[string]any) map[string]any {
	op := map[string]any{
		"operationId":  operationID(rt),
		"summary":      rt.Summary,
		"x-asp-access": rt.Access.String(),
	}
	var params []any
	for _, s := range rt.segs {
		if s.param == "" {
			continue
		}
		p := map[string]any{
			"name": s.param, "in": "path", "required": true,
			"schema": map[string]any{"type": "string"},
		}
		if s.param == "agentId" {
			p["description"] = "An agent id (agent://<peerId>/<name>), URL-encoded."
		}
		params = append(params, p)
	}
	for _, h := range rt.Headers {
		params = append(params, map[string]any{
			"name": h[0], "in": "header", "required": false,
			"schema": map[string]any{"type": "string"}, "description": h[1],
		})
	}
	if rt.Query != nil {
		for _, f := range jsonFields(rt.Query) {
			p := map[string]any{
				"name": f.name, "in": "query", "required": !f.optional,
				"schema": g.schema(f.typ),
			}
			if d := g.docs.fields[rt.Query.Name()+"."+f.goName]; d != "" {
				p["description"] = d
			}
			params = append(params, p)
		}
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.Description != "" {
		op["description"] = rt.Description
	}
	if rt.Events != nil {
		evs := map[string]any{}
		for typ, t := range rt.Events {
			evs[typ] = g.schema(t)
		}
		op["x-asp-events"] = evs
	}
	if rt.Request != nil {
		op["requestBody"] = map[string]any{
			"required": !rt.OptionalBody,
			"content":  map[string]any{"application/json": map[string]any{"schema": g.schema(rt.Request)}},
		}
	}
	resp := map[string]any{}
	switch {
	case rt.Status == http.StatusNoContent:
		resp["204"] = map[string]any{"description": "Done."}
	case rt.Response != nil:
		resp[fmt.Sprint(rt.Status)] = map[string]any{
			"description": http.StatusText(rt.Status),
			"content":     map[string]any{"application/json": map[string]any{"schema": g.schema(rt.Response)}},
		}
	default:
		var schema map[string]any
		if strings.HasPrefix(rt.ContentType, "application/json") {
			schema = map[string]any{"type": "object"}
		} else {
			schema = map[string]any{"type": "string"}
		}
		mt := strings.TrimSpace(strings.Split(rt.ContentType, ";")[0])
		resp["200"] = map[string]any{
			"description": "OK",
			"content":     map[string]any{mt: map[string]any{"schema": schema}},
		}
	}
	errs := append([]int{http.StatusUnauthorized, http.StatusInternalServerError}, rt.Errors...)
	if rt.Access == accessAgent || rt.Access == accessAdmin {
		errs = append(errs, http.StatusForbidden)
	}
	if rt.Request != nil {
		errs = append(errs, http.StatusRequestTimeout) // a body sent too slowly
	}
	for _, st := range errs {
		resp[fmt.Sprint(st)] = map[string]any{
			"description": http.StatusText(st),
			"content":     map[string]any{"application/json": map[string]any{"schema": errRef}},
		}
	}
	op["responses"] = resp
	return op
}

// operationID derives a unique id: method, literal segments, then "By" and
// each parameter, in path order, e.g. getSessionsBySessionId.
func operationID(rt *route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, s := range rt.segs {
		switch {
		case s.param != "":
			b.WriteString("By")
			b.WriteString(upperFirst(s.param))
		case s.lit == "v1":
		default:
			for _, w := range strings.FieldsFunc(s.lit, func(r rune) bool { return r == '.' || r == '-' || r == '_' }) {
				b.WriteString(upperFirst(w))
			}
		}
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

type jsonField struct {
	name, goName string
	typ          reflect.Type
	optional     bool
}

// jsonFields lists the JSON fields of struct type t, as encoding/json sees
// its tags.
func jsonFields(t reflect.Type) []jsonField {
	var fs []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		optional := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		fs = append(fs, jsonField{name: name, goName: f.Name, typ: f.Type, optional: optional})
	}
	return fs
}

type schemaGen struct {
	schemas map[string]any
	docs    docs
}

// schema returns the JSON Schema of t; named structs of this package become
// components referenced with $ref.
func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch t {
	case rawMessageType:
		return map[string]any{"description": "Any JSON value."}
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		name := t.Name()
		if _, ok := g.schemas[name]; !ok {
			g.schemas[name] = nil // reserve: recursive types terminate
			g.schemas[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	panic(fmt.Sprintf("api: no schema for %v", t))
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range jsonFields(t) {
		var s map[string]any
		if typed, ok := fieldSchemas[t.Name()+"."+f.goName]; ok {
			s = typed(g)
		} else {
			s = g.schema(f.typ)
		}
		if d := g.docs.fields[t.Name()+"."+f.goName]; d != "" {
			if _, isRef := s["$ref"]; isRef {
				// 3.1 allows siblings of $ref; keep the ref map shared-free.
				s = map[string]any{"$ref": s["$ref"], "description": d}
			} else {
				s = copyWith(s, "description", d)
			}
		}
		props[f.name] = s
		if !f.optional {
			required = append(required, f.name)
		}
	}
	o := map[string]any{"type": "object", "properties": props}
	if required != nil {
		o["required"] = required
	}
	if d := g.docs.types[t.Name()]; d != "" {
		o["description"] = d
	}
	return o
}

// fieldSchemas type the fields the Go types leave open (JSON passed
// through to the protocol): terms, with their decimal, currency, time and
// period forms, and performatives.
var fieldSchemas = map[string]func(*schemaGen) map[string]any{
	"SendMessageRequest.Terms":        (*schemaGen).terms,
	"CommitmentInfo.Terms":            (*schemaGen).terms,
	"SendMessageRequest.Performative": func(*schemaGen) map[string]any { return performativeSchema() },
}

func performativeSchema() map[string]any {
	var enum []any
	for _, p := range protocol.Performatives {
		enum = append(enum, string(p))
	}
	return map[string]any{"type": "string", "enum": enum}
}

// terms is the Terms component: the protocol's terms in their JSON form.
func (g *schemaGen) terms() map[string]any {
	if _, ok := g.schemas["Terms"]; !ok {
		dec := func(d string) map[string]any {
			return map[string]any{"type": "string", "pattern": protocol.DecimalPattern, "description": d + " A decimal written as a string, never a JSON number."}
		}
		str := func(d string) map[string]any { return map[string]any{"type": "string", "description": d} }
		when := func(d string) map[string]any {
			return map[string]any{"type": "string", "format": "date-time", "description": d + " RFC 3339, normalised to UTC with milliseconds."}
		}
		g.schemas["Terms"] = map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"description": "The terms of an offer (docs/protocol.md §4). An offer's terms are complete; a counter-offer may give only what " +
				"it changes, the rest is taken from the offer it answers.",
			"properties": map[string]any{
				"resource":  str("What is offered, e.g. gpu-hours."),
				"quantity":  dec("How much."),
				"unit":      str("The unit of quantity, e.g. hour."),
				"unitPrice": dec("The price of one unit."),
				"currency":  map[string]any{"type": "string", "pattern": protocol.CurrencyPattern, "description": "The currency code, e.g. USD."},
				"deliverBy": when("When the provider must have delivered."),
				"payBy":     when("When the buyer must have paid (or payWithin)."),
				"payWithin": map[string]any{"type": "string", "pattern": protocol.PeriodPattern,
					"description": "How long after the acceptance the buyer must pay, ISO 8601 (P30D, PT36H is written P1DT12H)."},
				"penalty":    str("A penalty computed when late: \"5% per day late\", \"50.00 USD per day late\" or \"100.00 USD\"."),
				"arbiter":    str("The agent id of the arbiter of disputes: an agent of a third organisation."),
				"provider":   str("The agent id of the party that delivers (default: the acceptor)."),
				"attributes": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "Other terms, as text."},
			},
		}
	}
	return map[string]any{"$ref": "#/components/schemas/Terms"}
}

func copyWith(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for mk, mv := range m {
		c[mk] = mv
	}
	c[k] = v
	return c
}

// docs are the doc comments of the package's types and fields.
type docs struct {
	types  map[string]string // type name → doc
	fields map[string]string // "Type.Field" → doc
}

func loadDocs() (docs, error) {
	d := docs{types: map[string]string{}, fields: map[string]string{}}
	fset := token.NewFileSet()
	ents, err := sources.ReadDir(".")
	if err != nil {
		return d, err
	}
	for _, e := range ents {
		src, err := sources.ReadFile(e.Name())
		if err != nil {
			return d, err
		}
		f, err := parser.ParseFile(fset, e.Name(), src, parser.ParseComments)
		if err != nil {
			return d, err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if doc != nil {
					d.types[ts.Name.Name] = cleanDoc(doc.Text())
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					cg := fld.Doc
					if cg == nil {
						cg = fld.Comment
					}
					if cg == nil {
						continue
					}
					for _, n := range fld.Names {
						d.fields[ts.Name.Name+"."+n.Name] = cleanDoc(cg.Text())
					}
				}
			}
		}
	}
	return d, nil
}

// cleanDoc joins a doc comment into one paragraph and drops INVARIANT lines.
func cleanDoc(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "INVARIANT:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " ")
}
