package live_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/live"
	"github.com/perpetuaflow/api/test/testkit"
)

// state is a client's copy: entity → id → the entity's JSON (normalised).
type state map[string]map[string]any

func syncOnce(t *testing.T, a *testkit.App, u *testkit.User, token string) map[string]any {
	t.Helper()
	path := "/api/v1/sync"
	if token != "" {
		path += "?since=" + token
	}
	return a.Do(t, u, http.MethodGet, path, nil).Expect(t, http.StatusOK).Data(t)
}

// apply applies a sync answer to st (from scratch when it is full) and
// returns the next token.
func (st state) apply(t *testing.T, d map[string]any) string {
	t.Helper()
	if d["full"] == true {
		clear(st)
	}
	for entity, list := range d["changed"].(map[string]any) {
		if st[entity] == nil {
			st[entity] = map[string]any{}
		}
		for _, v := range list.([]any) {
			m := v.(map[string]any)
			id := fmt.Sprint(m["id"])
			if entity == "stats" {
				id = "stats"
			}
			st[entity][id] = m
		}
	}
	for _, tomb := range d["deleted"].([]any) {
		m := tomb.(map[string]any)
		delete(st[m["entity"].(string)], m["id"].(string))
	}
	return d["sync_token"].(string)
}

// TestSyncSendsWhatChangedSinceAToken: a full sync, then only the changes
// and deletions since its token; a token of another account or a made-up
// one is a 400; past the retained window a 410.
func TestSyncSendsWhatChangedSinceAToken(t *testing.T) {
	t.Parallel()
	var svc *live.Service
	a := testkit.Start(t, testkit.WithFx(fx.Populate(&svc)))
	alice := a.SignIn(t, "alice@example.com")
	bob := a.SignIn(t, "bob@example.com")
	due := a.Clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	task := a.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "one", "due_date": due}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	a.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+task+"/subtasks", map[string]any{"title": "step"}).Expect(t, http.StatusCreated)
	a.Do(t, alice, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": task, "type": "before", "offset_minutes": -60}).
		Expect(t, http.StatusCreated)
	note := a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "n"}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	a.Do(t, bob, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "bob's"}).Expect(t, http.StatusCreated)

	full := syncOnce(t, a, alice, "")
	ch := full["changed"].(map[string]any)
	for entity, n := range map[string]int{"task": 1, "subtask": 1, "reminder": 1, "note": 1, "template": 0, "notification": 0} {
		if got := len(ch[entity].([]any)); got != n {
			t.Errorf("full sync: %d %s, want %d", got, entity, n)
		}
	}
	if full["full"] != true || len(full["deleted"].([]any)) != 0 {
		t.Fatalf("full sync %v", full)
	}
	token := full["sync_token"].(string)
	if d := syncOnce(t, a, alice, token); d["full"] != false || len(d["deleted"].([]any)) != 0 ||
		len(d["changed"].(map[string]any)["task"].([]any)) != 0 || d["sync_token"] != token {
		t.Fatalf("nothing changed, yet: %v", d)
	}

	a.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+task, map[string]any{"title": "one, renamed", "version": 1}).Expect(t, http.StatusOK)
	a.Do(t, alice, http.MethodDelete, "/api/v1/notes/"+note, nil).Expect(t, http.StatusOK)
	d := syncOnce(t, a, alice, token)
	tasks := d["changed"].(map[string]any)["task"].([]any)
	if len(tasks) != 1 || tasks[0].(map[string]any)["title"] != "one, renamed" {
		t.Fatalf("delta tasks %v", tasks)
	}
	if del := d["deleted"].([]any); len(del) != 1 || del[0].(map[string]any)["id"] != note || del[0].(map[string]any)["entity"] != "note" {
		t.Fatalf("delta deletions %v", del)
	}

	bobs := syncOnce(t, a, bob, "")["sync_token"].(string)
	a.Do(t, alice, http.MethodGet, "/api/v1/sync?since="+bobs, nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	a.Do(t, alice, http.MethodGet, "/api/v1/sync?since=made-up", nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")

	a.Clock.Advance(25 * time.Hour)
	if err := svc.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	alice = a.SignIn(t, "alice@example.com")
	a.Do(t, alice, http.MethodGet, "/api/v1/sync?since="+token, nil).ExpectError(t, http.StatusGone, live.CodeSyncTokenExpired)
	// A token that is up to date stays good: nothing was missed.
	latest := d["sync_token"].(string)
	syncOnce(t, a, alice, latest)
}

// TestDeltasAppliedInOrderEqualAFullSync: from random sequences of changes
// (creations, edits, completions, deletions, recoveries; on PostgreSQL also
// bursts of concurrent writes), a client that applies every delta in order
// to an empty state holds what a fresh full sync answers.
func TestDeltasAppliedInOrderEqualAFullSync(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t, testkit.WithConfig("live.max_sync_changes", 100),
		testkit.WithConfig("limits.free.max_tasks", 1000), testkit.WithConfig("limits.free.max_notes", 1000))
	for seed := range uint64(3) {
		u := a.SignIn(t, fmt.Sprintf("user%d@example.com", seed))
		rng := rand.New(rand.NewPCG(seed, 42))
		st := state{}
		token := st.apply(t, syncOnce(t, a, u, ""))
		var tasks, notes, subtasks, tombs []string
		pick := func(list []string) string { return list[rng.IntN(len(list))] }
		for step := range 120 {
			switch op := rng.IntN(10); {
			case op < 2 || len(tasks) == 0:
				tasks = append(tasks, a.Do(t, u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": fmt.Sprint("t", step)}).
					Expect(t, http.StatusCreated).Data(t)["id"].(string))
			case op == 2:
				id := pick(tasks)
				cur := a.Do(t, u, http.MethodGet, "/api/v1/tasks/"+id, nil)
				if cur.Status == http.StatusOK {
					a.Do(t, u, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": fmt.Sprint("edit", step),
						"version": cur.Data(t)["version"]})
				}
			case op == 3:
				a.Do(t, u, http.MethodPost, "/api/v1/tasks/"+pick(tasks)+"/complete", nil)
			case op == 4:
				res := a.Do(t, u, http.MethodDelete, "/api/v1/tasks/"+pick(tasks), nil)
				if res.Status == http.StatusOK {
					tombs = append(tombs, res.Data(t)["tombstone_id"].(string))
				}
			case op == 5 && len(tombs) > 0:
				a.Do(t, u, http.MethodPost, "/api/v1/recovery/"+pick(tombs)+"/recover", nil)
			case op == 6:
				res := a.Do(t, u, http.MethodPost, "/api/v1/tasks/"+pick(tasks)+"/subtasks", map[string]any{"title": fmt.Sprint("s", step)})
				if res.Status == http.StatusCreated {
					subtasks = append(subtasks, res.Data(t)["id"].(string))
				}
			case op == 7 && len(subtasks) > 0:
				if rng.IntN(2) == 0 {
					a.Do(t, u, http.MethodPut, "/api/v1/subtasks/"+pick(subtasks), map[string]any{"completed": true})
				} else {
					a.Do(t, u, http.MethodDelete, "/api/v1/subtasks/"+pick(subtasks), nil)
				}
			case op == 8:
				notes = append(notes, a.Do(t, u, http.MethodPost, "/api/v1/notes", map[string]any{"content": fmt.Sprint("n", step)}).
					Expect(t, http.StatusCreated).Data(t)["id"].(string))
			default:
				if testkit.Postgres() {
					// A burst of concurrent writes to the same account.
					reqs := make([]testkit.Racer, 6)
					for i := range reqs {
						reqs[i] = testkit.Racer{User: u, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/notes",
							Body: map[string]any{"content": fmt.Sprint("burst", step, i)}}}
					}
					a.Burst(t, reqs)
				} else if len(notes) > 0 {
					a.Do(t, u, http.MethodDelete, "/api/v1/notes/"+pick(notes), nil)
				}
			}
			if rng.IntN(5) == 0 {
				for {
					d := syncOnce(t, a, u, token)
					token = st.apply(t, d)
					if d["has_more"] != true {
						break
					}
				}
			}
		}
		for {
			d := syncOnce(t, a, u, token)
			token = st.apply(t, d)
			if d["has_more"] != true {
				break
			}
		}
		fresh := state{}
		fresh.apply(t, syncOnce(t, a, u, ""))
		if !reflect.DeepEqual(normalise(t, st), normalise(t, fresh)) {
			a, _ := json.MarshalIndent(st, "", " ")
			b, _ := json.MarshalIndent(fresh, "", " ")
			t.Fatalf("seed %d: the deltas' state differs from a full sync:\n%s\n---\n%s", seed, a, b)
		}
	}
}

func normalise(t *testing.T, st state) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for e, m := range st {
		if len(m) == 0 {
			continue
		}
		out[e] = m
	}
	b, _ := json.Marshal(out)
	var back map[string]map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}
