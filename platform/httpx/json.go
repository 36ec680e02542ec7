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
)

// JSONAppender is a response body that writes its own JSON, byte for byte
// what encoding/json writes for it (HTML-safe escaping included), without
// reflection. Lists of the busiest items (tasks) are; a test holds each
// item writer to encoding/json's output.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// itemWriters holds, by exact item type, the writers RegisterJSONItem
// declared (a type that embeds a registered one is not affected).
var itemWriters sync.Map // reflect.Type -> func([]byte, *T) []byte

// RegisterJSONItem declares fn as the JSON writer of T: lists of T then
// write themselves. fn must write what encoding/json writes for a T.
func RegisterJSONItem[T any](fn func(b []byte, v *T) []byte) {
	itemWriters.Store(reflect.TypeFor[T](), fn)
}

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// MarshalJSON is the JSON response format: a JSONAppender writes itself,
// anything else goes through encoding/json's Encoder (which ends the
// document with a newline, as this does).
func MarshalJSON(w io.Writer, v any) error {
	a, ok := v.(JSONAppender)
	if c, generic := v.(interface{ canAppendJSON() bool }); ok && generic {
		ok = c.canAppendJSON()
	}
	if !ok {
		return json.NewEncoder(w).Encode(v)
	}
	bp := jsonBuffers.Get().(*[]byte)
	b := append(a.AppendJSON((*bp)[:0]), '\n')
	_, err := w.Write(b)
	if cap(b) <= 1<<20 { // a rare huge answer does not stay in the pool
		*bp = b
		jsonBuffers.Put(bp)
	}
	return err
}

// canAppendJSON reports whether the items write themselves; a list of
// anything else goes through encoding/json.
func (l List[T]) canAppendJSON() bool {
	_, ok := itemWriters.Load(reflect.TypeFor[T]())
	return ok
}

// AppendJSON implements JSONAppender (see canAppendJSON).
func (l List[T]) AppendJSON(b []byte) []byte {
	w, _ := itemWriters.Load(reflect.TypeFor[T]())
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
