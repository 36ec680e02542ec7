package httpx

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzAppendJSONStringIsEncodingJSONs(f *testing.F) {
	for b := range 256 {
		f.Add(string([]byte{byte(b)}) + "x")
	}
	for _, s := range []string{"", `"\`, "<>&", "\u2028\u2029", "\xed\xa0\x80", "\xf4\x90\x80\x80", "😀", "\u00e9",
		string(utf8.RuneError), strings.Repeat("a<", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

type point struct {
	X int `json:"x"`
}

type namedPoint struct {
	point
	Name string `json:"name"`
}

// TestAListWritesItselfOnlyForItsOwnItemType: a writer serves a List of
// exactly its type; a type embedding it, a lone item and anything else go
// through encoding/json.
func TestAListWritesItselfOnlyForItsOwnItemType(t *testing.T) {
	f := NewJSONFormat([]ItemWriter{JSONItem(func(b []byte, p *point) []byte {
		return append(b, `{"x":"written"}`...)
	})})
	for _, c := range []struct {
		v    any
		want string
	}{
		{List[point]{Data: []point{{1}, {2}}}, `{"data":[{"x":"written"},{"x":"written"}],"pagination":{"offset":0,"limit":0,"total":0,"has_more":false,"next_cursor":null}}`},
		{List[namedPoint]{Data: []namedPoint{{point{1}, "a"}}}, `{"data":[{"x":1,"name":"a"}],"pagination":{"offset":0,"limit":0,"total":0,"has_more":false,"next_cursor":null}}`},
		{point{3}, `{"x":3}`},
		{[]point{{4}}, `[{"x":4}]`},
	} {
		var b strings.Builder
		if err := f.Marshal(&b, c.v); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want+"\n" {
			t.Errorf("%T: %s, want %s", c.v, b.String(), c.want)
		}
	}
}
