package contract

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestTransactionClosuresCanRunAgain reads the code: database.DB.Tx runs
// its closure again after a deadlock or a serialization failure, so a
// closure must not accumulate into variables declared outside it (n++,
// total += x, list = append(list, ...)): a second run would count twice.
// Assigning a result (out = x) is fine; a closure that must count resets
// its counter first (made = 0).
func TestTransactionClosuresCanRunAgain(t *testing.T) {
	fset := token.NewFileSet()
	var found int
	for _, root := range []string{"../../modules", "../../platform"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Tx" && sel.Sel.Name != "TxOrJoin") || len(call.Args) != 2 {
					return true
				}
				fn, ok := call.Args[1].(*ast.FuncLit)
				if !ok {
					return true
				}
				found++
				for _, problem := range accumulations(fn) {
					t.Errorf("%s: %s accumulates into a variable declared outside the transaction's closure, "+
						"which runs again after a deadlock", fset.Position(problem.Pos()), name(problem))
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found < 20 {
		t.Fatalf("found %d transaction closures; the reader is broken", found)
	}
}

// accumulations are the statements of fn that add to a variable fn does
// not declare, unless fn sets that variable first.
func accumulations(fn *ast.FuncLit) []ast.Node {
	declared := map[string]bool{}
	reset := map[string]bool{}
	for _, p := range fn.Type.Params.List {
		for _, n := range p.Names {
			declared[n.Name] = true
		}
	}
	var out []ast.Node
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.ValueSpec:
			for _, id := range s.Names {
				declared[id.Name] = true
			}
		case *ast.AssignStmt:
			for i, l := range s.Lhs {
				id, ok := l.(*ast.Ident)
				if !ok {
					continue
				}
				outer := !declared[id.Name] && !reset[id.Name]
				switch {
				case s.Tok == token.DEFINE:
					declared[id.Name] = true
				case s.Tok == token.ASSIGN && len(s.Rhs) == len(s.Lhs) && isAppendTo(s.Rhs[i], id.Name):
					if outer {
						out = append(out, s)
					}
				case s.Tok == token.ASSIGN:
					reset[id.Name] = true
				case outer: // +=, -=, ...
					out = append(out, s)
				}
			}
		case *ast.IncDecStmt:
			if id, ok := s.X.(*ast.Ident); ok && !declared[id.Name] && !reset[id.Name] {
				out = append(out, s)
			}
		}
		return true
	})
	return out
}

func isAppendTo(e ast.Expr, name string) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || !isIdent(call.Fun, "append") || len(call.Args) == 0 {
		return false
	}
	return isIdent(call.Args[0], name)
}

func name(n ast.Node) string {
	switch s := n.(type) {
	case *ast.IncDecStmt:
		return s.X.(*ast.Ident).Name + s.Tok.String()
	case *ast.AssignStmt:
		return s.Lhs[0].(*ast.Ident).Name + " " + s.Tok.String()
	}
	return "a statement"
}
