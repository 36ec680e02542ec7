package contract

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/perpetuaflow/api/modules/activity"
)

// TestEveryActivityEntityTypeIsOneTheClientKnows reads the modules' source:
// every events.Entry the code builds must name its EntityType with a
// string constant (or literal) whose value is one of activity.EntityTypes,
// the seven the web client's schema accepts. A new event with another
// type, or a type the test cannot read, fails here rather than in the
// client.
func TestEveryActivityEntityTypeIsOneTheClientKnows(t *testing.T) {
	root := filepath.Join("..", "..", "modules")
	consts := map[string]map[string]string{} // package name -> constant -> value
	type use struct {
		pkg  string
		expr ast.Expr
		at   string
	}
	var uses []use
	fset := token.NewFileSet()
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(root, d.Name(), "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			name := f.Name.Name
			if consts[name] == nil {
				consts[name] = map[string]string{}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					for i, id := range n.Names {
						if i < len(n.Values) {
							if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								consts[name][id.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				case *ast.CompositeLit:
					sel, ok := n.Type.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "Entry" || !isIdent(sel.X, "events") {
						return true
					}
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "EntityType") {
							uses = append(uses, use{pkg: name, expr: kv.Value, at: fset.Position(kv.Pos()).String()})
						}
					}
				}
				return true
			})
		}
	}
	if len(uses) < 8 {
		t.Fatalf("found %d activity entries in the modules' code; the reader is broken", len(uses))
	}
	for _, u := range uses {
		var value string
		var ok bool
		switch e := u.expr.(type) {
		case *ast.BasicLit:
			value, _ = strconv.Unquote(e.Value)
			ok = e.Kind == token.STRING
		case *ast.Ident:
			value, ok = consts[u.pkg][e.Name]
		case *ast.SelectorExpr:
			if pkg, isPkg := e.X.(*ast.Ident); isPkg {
				value, ok = consts[pkg.Name][e.Sel.Name]
			}
		}
		switch {
		case !ok:
			t.Errorf("%s: the entity type is not a string constant of the modules (write one, so that it can be checked)", u.at)
		case !slices.Contains(activity.EntityTypes, value):
			t.Errorf("%s: entity type %q is not one of the client's %v", u.at, value, activity.EntityTypes)
		}
	}
	// The API documents the same seven.
	f, _ := reflect.TypeFor[activity.EntryDTO]().FieldByName("EntityType")
	if f.Tag.Get("enum") != strings.Join(activity.EntityTypes, ",") {
		t.Errorf("EntryDTO.EntityType's enum %q is not activity.EntityTypes", f.Tag.Get("enum"))
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
