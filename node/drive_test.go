package node

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyTheDriverWritesAndSends holds the package to the driver's rule
// (drive.go): only drive appends to the ledger or sends a request to
// another node, and only the install functions assign a session's state
// machine or a commitment's protocol value.
func TestOnlyTheDriverWritesAndSends(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			where := name + ": " + fn.Name.Name
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CallExpr:
					sel, ok := x.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					switch {
					case sel.Sel.Name == "Append" && isField(sel.X, "led") && fn.Name.Name != "drive":
						t.Errorf("%s appends to the ledger outside the driver", where)
					case (sel.Sel.Name == "request" || sel.Sel.Name == "requestWitness") && isIdent(sel.X, "n") && fn.Name.Name != "drive":
						t.Errorf("%s sends a request outside the driver", where)
					}
				case *ast.AssignStmt:
					for _, lhs := range x.Lhs {
						sel, ok := lhs.(*ast.SelectorExpr)
						if !ok {
							continue
						}
						switch {
						case sel.Sel.Name == "ps" && fn.Name.Name != "installSession" && fn.Name.Name != "recover":
							t.Errorf("%s assigns a session's state machine outside installSession", where)
						case sel.Sel.Name == "pc" && fn.Name.Name != "installCommitment" && fn.Name.Name != "formCommitment":
							t.Errorf("%s assigns a commitment's protocol value outside installCommitment", where)
						}
					}
				}
				return true
			})
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d files: the test runs in the wrong directory", checked)
	}
}

// TestEngineChoosesNoHTTPStatus: the node returns errors with ASP codes
// (errors.go); node/api alone maps them to HTTP statuses.
func TestEngineChoosesNoHTTPStatus(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	apiErrors := map[string]bool{"Errorf": true, "BadRequest": true, "Unauthorized": true, "Forbidden": true,
		"NotFound": true, "Conflict": true, "InvalidTransition": true, "Timeout": true, "Internal": true}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch {
			case isIdent(sel.X, "api") && apiErrors[sel.Sel.Name]:
				t.Errorf("%s: api.%s: the engine returns coded errors, not HTTP answers", fset.Position(sel.Pos()), sel.Sel.Name)
			case isIdent(sel.X, "http") && strings.HasPrefix(sel.Sel.Name, "Status"):
				t.Errorf("%s: http.%s: the engine chooses no HTTP status", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isField(e ast.Expr, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == name
}
