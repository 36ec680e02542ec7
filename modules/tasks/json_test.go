package tasks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/httpx"
)

// hostile are strings encoding/json escapes in every way it can.
var hostile = []string{"", "plain", `quo"te back\slash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "\u2028\u2029", "\xff\xfe invalid", "caf\xc3", "emoji 😀 ok", "ünïcödé", "a\u0085b"}

func randomTask(r *rand.Rand) TaskDTO {
	str := func() string {
		if r.IntN(3) == 0 {
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return string(b)
		}
		return hostile[r.IntN(len(hostile))]
	}
	when := func() time.Time {
		t := time.Unix(r.Int64N(4_000_000_000), r.Int64N(1_000_000_000))
		if r.IntN(4) == 0 {
			t = t.Truncate(time.Second)
		}
		if r.IntN(4) == 0 {
			return t.In(time.FixedZone("x", 5*3600+1800))
		}
		return t.UTC()
	}
	t := TaskDTO{ID: uuid.New(), UserID: uuid.New(), Title: str(), Description: str(), Priority: str(),
		FocusTimeSeconds: r.IntN(100000), Completed: r.IntN(2) == 0, Hidden: r.IntN(2) == 0, Archived: r.IntN(2) == 0,
		SubtaskCount: r.IntN(10), SubtaskCompletedCount: r.IntN(10), Version: r.IntN(1000) - 1, CreatedAt: when(), UpdatedAt: when()}
	if r.IntN(2) == 0 {
		id := uuid.New()
		t.TemplateID = &id
	}
	if r.IntN(2) == 0 {
		d := when()
		t.DueDate = &d
	}
	if r.IntN(2) == 0 {
		n := r.IntN(600) - 10
		t.EstimatedDuration = &n
	}
	if r.IntN(2) == 0 {
		c := when()
		t.CompletedAt = &c
	}
	if r.IntN(2) == 0 {
		s := str()
		t.CompletedBy = &s
	}
	return t
}

// TestTaskJSONIsEncodingJSONs: the task list writes itself without
// reflection, and the bytes are encoding/json's, for every kind of value.
func TestTaskJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	format := httpx.NewJSONFormat([]httpx.ItemWriter{taskJSON()})
	for round := range 300 {
		list := httpx.List[TaskDTO]{Data: make([]TaskDTO, r.IntN(30)),
			Pagination: httpx.Pagination{Offset: r.IntN(100), Limit: 1 + r.IntN(100), Total: r.Int64N(1e6), HasMore: r.IntN(2) == 0}}
		for i := range list.Data {
			list.Data[i] = randomTask(r)
		}
		var fast, std bytes.Buffer
		if err := format.Marshal(&fast, list); err != nil {
			t.Fatal(err)
		}
		if err := json.NewEncoder(&std).Encode(list); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast.Bytes(), std.Bytes()) {
			t.Fatalf("round %d:\nfast %s\nstd  %s", round, fast.Bytes(), std.Bytes())
		}
	}
	// An empty list is [] (never null), as encoding/json writes a non-nil slice.
	var fast, std bytes.Buffer
	empty := httpx.List[TaskDTO]{Data: []TaskDTO{}}
	_ = format.Marshal(&fast, empty)
	_ = json.NewEncoder(&std).Encode(empty)
	if fast.String() != std.String() {
		t.Fatalf("empty list: %s vs %s", fast.String(), std.String())
	}
}

// TestCursorIsEncodingJSONs holds nextCursor to the bytes encoding/json
// writes for the same cursor, in every sort order, so that cursors handed
// out before stay valid and after() reads every one back.
func TestCursorIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	reference := func(sort string, task *Task) string {
		c := cursor{Sort: sort}
		for _, term := range sortOrders[sort] {
			b, _ := json.Marshal(term.value(task))
			c.Values = append(c.Values, b)
		}
		id, _ := json.Marshal(task.ID)
		b, _ := json.Marshal(append(c.Values, id))
		c.Values = nil
		whole, _ := json.Marshal(struct {
			Sort   string          `json:"s"`
			Values json.RawMessage `json:"v"`
		}{sort, b})
		return base64.RawURLEncoding.EncodeToString(whole)
	}
	priorities := []string{PriorityLow, PriorityMedium, PriorityHigh}
	for i := range 2000 {
		created := time.Unix(r.Int64N(4e9), 0).Add(time.Duration(r.IntN(3)) * time.Duration(r.Int64N(1e9)))
		task := &Task{ID: uuid.New(), CreatedAt: created.In(time.FixedZone("x", 3600)), Priority: priorities[i%3]}
		if i%2 == 0 {
			due := created.Add(time.Duration(r.Int64N(1e15)))
			task.DueDate = &due
		}
		for sort := range sortOrders {
			got, want := nextCursor(sort, task), reference(sort, task)
			if got != want {
				a, _ := base64.RawURLEncoding.DecodeString(got)
				b, _ := base64.RawURLEncoding.DecodeString(want)
				t.Fatalf("sort %s: cursor %s, encoding/json's %s", sort, a, b)
			}
			if _, _, err := after(sort, got); err != nil {
				t.Fatalf("sort %s: after() refuses its own cursor: %v", sort, err)
			}
		}
	}
}
