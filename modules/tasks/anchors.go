package tasks

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perpetuaflow/api/platform/observability"
)

// A deep page asked for by offset (the completed list at offset 10,000)
// costs a walk over every row the offset skips, in the index. Positions
// found on the way are kept as anchors: the row at a position in one list
// (user, sort by creation, filters of state only) with the list's
// generation then, which task_counts raises with every insert, deletion
// and change of state of the user's tasks. While the generation holds, the
// rows before the anchor are the same, so the next request for that
// position, or for the page after it, starts at the anchor's row with a
// seek instead. The generation is read in the same statement as the page:
// a stale anchor is seen at once, and the page read again the long way.

// anchorMin is the least offset worth an anchor: shallower pages cost
// little to skip.
const anchorMin = 500

// anchorEntries bounds the anchors kept (about 100 bytes each).
const anchorEntries = 16_384

// anchorKey names a position in a list.
type anchorKey struct {
	user                        uuid.UUID
	sort                        string
	completed, hidden, archived int8 // 0 unfiltered, 1 false, 2 true
	position                    int
}

// anchor is the row at a position, and the generation it was seen at.
type anchor struct {
	generation int64
	createdAt  time.Time
	id         uuid.UUID
}

type anchors struct {
	cache *lru.Cache[anchorKey, anchor]
	// uses counts deep pages by how they were found: hit (from an anchor),
	// stale (an anchor whose generation had passed) or miss.
	uses *prometheus.CounterVec
}

func newAnchors(reg prometheus.Registerer) *anchors {
	c, err := lru.New[anchorKey, anchor](anchorEntries)
	if err != nil {
		panic(fmt.Sprintf("anchors: %v", err)) // only for a size below 1
	}
	a := &anchors{cache: c, uses: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: observability.Namespace, Name: "task_list_anchors_total",
		Help: "Deep pages of the task list (offset 500 or more, by creation, state filters only) by how their start was found: hit (a kept position), stale (a kept position the list had changed since) or miss (walked in the index).",
	}, []string{"result"})}
	reg.MustRegister(a.uses)
	return a
}

// anchorable tells whether f's pages can use anchors: a deep offset, no
// cursor, an order by creation, and filters of state only (those whose
// rows the generation follows).
func anchorable(f ListFilter, sort string) bool {
	return f.Offset >= anchorMin && f.Cursor == "" && (sort == "-created_at" || sort == "created_at") &&
		f.Priority == nil && f.DueBefore == nil && f.DueAfter == nil && f.Query == ""
}

func (a *anchors) key(userID uuid.UUID, f ListFilter, sort string, position int) anchorKey {
	tri := func(b *bool) int8 {
		switch {
		case b == nil:
			return 0
		case *b:
			return 2
		}
		return 1
	}
	return anchorKey{user: userID, sort: sort, completed: tri(f.Completed), hidden: tri(f.Hidden), archived: tri(f.Archived),
		position: position}
}
