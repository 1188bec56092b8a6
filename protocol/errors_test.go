package protocol

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// errorsFileNames returns, from errors.go's source, the names of the Err
// variables, of the Code constants, and the names used in codeTable and
// codes: so that a sentinel or code added without a table entry fails.
func errorsFileNames(t *testing.T) (errs, consts, inCodeTable, inCodes []string) {
	t.Helper()
	af, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range af.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, sp := range gd.Specs {
			vs, ok := sp.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, n := range vs.Names {
				switch {
				case gd.Tok == token.VAR && strings.HasPrefix(n.Name, "Err"):
					errs = append(errs, n.Name)
				case gd.Tok == token.CONST && strings.HasPrefix(n.Name, "Code"):
					consts = append(consts, n.Name)
				case n.Name == "codeTable" || n.Name == "codes":
					lit := vs.Values[i].(*ast.CompositeLit)
					for _, e := range lit.Elts {
						first := e.(*ast.CompositeLit).Elts[0].(*ast.Ident).Name
						if n.Name == "codeTable" {
							inCodeTable = append(inCodeTable, first)
						} else {
							inCodes = append(inCodes, first)
						}
					}
				}
			}
		}
	}
	return
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestCodeTable: every sentinel maps to a code of its own entry, every
// code is listed once, and the retryable set is the documented one.
func TestCodeTable(t *testing.T) {
	errs, consts, inCodeTable, inCodes := errorsFileNames(t)
	if len(errs) < 30 || len(consts) < 12 {
		t.Fatalf("parsed %d sentinels and %d codes from errors.go: parser out of step", len(errs), len(consts))
	}
	if a, b := sorted(errs), sorted(inCodeTable); !slices.Equal(a, b) {
		t.Errorf("sentinels %v\ncodeTable %v", a, b)
	}
	if a, b := sorted(consts), sorted(inCodes); !slices.Equal(a, b) {
		t.Errorf("Code constants %v\ncodes %v", a, b)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c.code] {
			t.Errorf("code %q listed twice", c.code)
		}
		seen[c.code] = true
	}
	for _, e := range codeTable {
		if got := ErrorCode(e.err); got != e.code {
			t.Errorf("ErrorCode(%v) = %q, table says %q", e.err, got, e.code)
		}
		if got := ErrorCode(fmt.Errorf("wrapped: %w", e.err)); got != e.code {
			t.Errorf("ErrorCode(wrapped %v) = %q, want %q", e.err, got, e.code)
		}
		if !seen[e.code] || e.code == CodeInternal {
			t.Errorf("%v maps to %q, not a listed code other than internal", e.err, e.code)
		}
	}
	var retryable []string
	for _, c := range codes {
		if Retryable(c.code) {
			retryable = append(retryable, c.code)
		}
	}
	if want := []string{CodeBusy, CodeCapacityUnavailable, CodePending, CodeTimeout, CodeUnavailable}; !slices.Equal(sorted(retryable), want) {
		t.Errorf("retryable codes %v, documented %v", sorted(retryable), want)
	}
	for _, c := range []string{"", "no_such_code"} {
		if Retryable(c) {
			t.Errorf("Retryable(%q) = true for an unknown code", c)
		}
	}
}

// TestCodeTableDocumented holds docs/protocol.md §7 to the code list: the
// same codes, and "yes" in the retryable column exactly where Retryable
// says so.
func TestCodeTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## 7. Error codes")
	if !ok {
		t.Fatal("docs/protocol.md has no section 7. Error codes")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (yes|no) \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(sec, -1) {
		documented[m[1]] = m[2] == "yes"
	}
	for _, c := range codes {
		r, ok := documented[c.code]
		if !ok {
			t.Errorf("code %q is not in docs/protocol.md §7", c.code)
			continue
		}
		if r != c.retryable {
			t.Errorf("code %q: documented retryable %v, table %v", c.code, r, c.retryable)
		}
		delete(documented, c.code)
	}
	for c := range documented {
		t.Errorf("docs/protocol.md §7 lists %q, which is not in the code table", c)
	}
}
