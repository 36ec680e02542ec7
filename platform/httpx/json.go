package httpx

import (
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.uber.org/fx"
)

// Lists of the busiest items (tasks) write their own JSON, byte for byte
// what encoding/json writes for them (HTML-safe escaping included), without
// reflection: the module that owns the item type provides its writer
// (JSONItem, through the "json_items" group) and the response format
// (JSONFormat) uses it for a List of that exact type. A test of the module
// holds each writer to encoding/json's output.

// ItemWriter is the JSON writer of one list item type.
type ItemWriter struct {
	typ   reflect.Type
	write any // func([]byte, *T) []byte
}

// JSONItem declares fn as the JSON writer of T: a List[T] then writes
// itself (a type that embeds T is not affected). fn must write what
// encoding/json writes for a T.
func JSONItem[T any](fn func(b []byte, v *T) []byte) ItemWriter {
	return ItemWriter{typ: reflect.TypeFor[T](), write: fn}
}

// AsJSONItem annotates a constructor returning an ItemWriter so that it
// joins the "json_items" group.
func AsJSONItem(f any) any {
	return fx.Annotate(f, fx.ResultTags(`group:"json_items"`))
}

// JSONFormat is the JSON response format, with the list item writers it
// knows.
type JSONFormat struct {
	items map[reflect.Type]any
}

// NewJSONFormat returns the format that writes lists of the items of ws
// itself and anything else through encoding/json.
func NewJSONFormat(ws []ItemWriter) *JSONFormat {
	f := &JSONFormat{items: make(map[reflect.Type]any, len(ws))}
	for _, w := range ws {
		f.items[w.typ] = w.write
	}
	return f
}

// itemList is a List whose item writer may be known.
type itemList interface {
	itemType() reflect.Type
	appendJSON(b []byte, write any) []byte
	written()
}

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// Marshal writes v as JSON; encoding/json's Encoder ends the document with
// a newline, and so does a list that writes itself.
func (f *JSONFormat) Marshal(w io.Writer, v any) error {
	l, ok := v.(itemList)
	var write any
	if ok {
		write, ok = f.items[l.itemType()]
	}
	if !ok {
		return json.NewEncoder(w).Encode(v)
	}
	bp := jsonBuffers.Get().(*[]byte)
	b := append(l.appendJSON((*bp)[:0], write), '\n')
	l.written()
	_, err := w.Write(b)
	if cap(b) <= 1<<20 { // a rare huge answer does not stay in the pool
		*bp = b
		jsonBuffers.Put(bp)
	}
	return err
}

func (l List[T]) itemType() reflect.Type { return reflect.TypeFor[T]() }

func (l List[T]) written() {
	if l.release != nil {
		l.release()
	}
}

func (l List[T]) appendJSON(b []byte, w any) []byte {
	write := w.(func([]byte, *T) []byte)
	b = append(b, `{"data":[`...)
	for i := range l.Data {
		if i > 0 {
			b = append(b, ',')
		}
		b = write(b, &l.Data[i])
	}
	b = append(b, `],"pagination":{"offset":`...)
	b = strconv.AppendInt(b, int64(l.Pagination.Offset), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(l.Pagination.Limit), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, l.Pagination.Total, 10)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, l.Pagination.HasMore)
	b = append(b, `,"next_cursor":`...)
	if l.Pagination.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, *l.Pagination.NextCursor)
	}
	return append(b, "}}"...)
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it: quotes, backslashes, control characters, <, > and &, U+2028
// and U+2029, and invalid UTF-8 as U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// as many fractional digits as needed).
func AppendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		// Outside what RFC 3339 can say (encoding/json fails the whole
		// answer); our times are validated long before, so this is null.
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// AppendJSONUUID appends u as a JSON string.
func AppendJSONUUID(b []byte, u uuid.UUID) []byte {
	b = append(b, '"')
	var buf [36]byte
	hexEncode(buf[:], u)
	b = append(b, buf[:]...)
	return append(b, '"')
}

func hexEncode(dst []byte, u uuid.UUID) {
	const hex = "0123456789abcdef"
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hex[c>>4], hex[c&0xF]
		j += 2
	}
}
