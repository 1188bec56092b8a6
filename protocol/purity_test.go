package protocol

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoForbiddenDeps checks with `go list` that the package stays pure:
// nothing of libp2p, the network or the node's I/O packages anywhere in
// its dependencies, and no direct import of os, net, syscall or io/fs
// (fmt and crypto pull os in transitively; only direct use is I/O).
func TestNoForbiddenDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	list := func(args ...string) []string {
		out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", args, err, out)
		}
		return strings.Fields(string(out))
	}
	var bad []string
	for _, p := range list("-deps", ".") {
		if p == "net" {
			bad = append(bad, p)
		}
		for _, pre := range []string{"net/", "github.com/libp2p/", "github.com/multiformats/go-multiaddr",
			"github.com/aspnode/asp/p2p", "github.com/aspnode/asp/ledger", "github.com/aspnode/asp/node",
			"github.com/aspnode/asp/registry", "github.com/cockroachdb/"} {
			if strings.HasPrefix(p, pre) {
				bad = append(bad, p)
			}
		}
	}
	for _, p := range list("-f", `{{join .Imports " "}}`, ".") {
		switch p {
		case "os", "os/exec", "net", "syscall", "io/fs", "io/ioutil", "unsafe", "crypto/rand", "math/rand":
			bad = append(bad, p+" (direct)")
		}
	}
	if len(bad) > 0 {
		t.Fatalf("protocol depends on %v", bad)
	}
}

// TestNoClockReads parses every non-test file and refuses calls that read
// the clock or wait on it.
func TestNoClockReads(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	banned := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		timeName := ""
		for _, imp := range af.Imports {
			if imp.Path.Value == `"time"` {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
			if imp.Path.Value == `"math/rand"` || imp.Path.Value == `"crypto/rand"` {
				t.Errorf("%s imports %s: randomness must come in as an argument", f, imp.Path.Value)
			}
		}
		ast.Inspect(af, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && banned[sel.Sel.Name] {
				t.Errorf("%s: %s.%s reads or waits on the clock", fset.Position(sel.Pos()), timeName, sel.Sel.Name)
			}
			return true
		})
		if strings.Contains(string(src), "go func") {
			t.Errorf("%s starts a goroutine", f)
		}
	}
}
