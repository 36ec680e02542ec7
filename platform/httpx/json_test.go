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
