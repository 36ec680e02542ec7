package ai

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTheSplitterPassesTheTextAndKeepsTheActionsLine: however the answer
// is cut into pieces, the text comes out whole and only the text, and the
// ACTIONS line is kept apart.
func TestTheSplitterPassesTheTextAndKeepsTheActionsLine(t *testing.T) {
	for _, c := range []struct {
		name, answer, text, actions string
	}{
		{"text only", "Start with an outline.", "Start with an outline.", ""},
		{"text and actions", "Do it.\nACTIONS: [{\"type\": \"x\"}]", "Do it.", " [{\"type\": \"x\"}]"},
		{"actions only", "ACTIONS: []", "", " []"},
		{"a marker's start that is not one", "Line one\nACT two\nACTION", "Line one\nACT two\nACTION", ""},
		{"leading line breaks dropped", "\nHello", "Hello", ""},
		{"actions in the middle of a line are text", "say ACTIONS: now", "say ACTIONS: now", ""},
	} {
		for size := 1; size <= len(c.answer); size++ {
			s := newSplitter()
			var text strings.Builder
			for i := 0; i < len(c.answer); i += size {
				text.WriteString(s.feed(c.answer[i:min(i+size, len(c.answer))]))
			}
			text.WriteString(s.rest())
			if text.String() != c.text || s.actions() != c.actions {
				t.Fatalf("%s in pieces of %d: text %q, actions %q", c.name, size, text.String(), s.actions())
			}
		}
	}
}

// TestSuggestedTitlesAreCleanedOnce: trimmed, spaces collapsed, long ones
// shortened to the tasks module's limit, empty ones and repeats (of each
// other or of existing subtasks, in any case) dropped, at most n.
func TestSuggestedTitlesAreCleanedOnce(t *testing.T) {
	long := strings.Repeat("word ", 100)
	in := []titleOnly{{"  Book   a van "}, {""}, {"book a VAN"}, {"Pack"}, {"Clean"}, {long}, {"Party"}, {"Extra"}}
	got := cleanTitles(in, 4, []string{" clean "})
	if len(got) != 4 || got[0] != "Book a van" || got[1] != "Pack" || got[3] != "Party" {
		t.Fatalf("%q", got)
	}
	if n := utf8.RuneCountInString(got[2]); n != 200 || !strings.HasSuffix(got[2], "…") {
		t.Fatalf("a long title: %d characters, %q", n, got[2])
	}
	if got := cleanTitles(nil, 3, nil); got == nil || len(got) != 0 {
		t.Fatalf("no titles: %#v", got)
	}
}
