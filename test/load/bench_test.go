package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/test/testkit"
)

// The benchmarks run the composed app in-process on the test database
// (SQLite unless TEST_DATABASE_URL is set) and measure whole requests over
// loopback HTTP: middleware, authentication, rate limiting, the service and
// the database.

func BenchmarkAuthenticatedRead(b *testing.B) {
	app := testkit.Start(b)
	alice := app.SignIn(b, "alice@example.com")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		app.Do(b, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(b, http.StatusOK)
	}
}

func BenchmarkCreateTask(b *testing.B) {
	app := testkit.Start(b, testkit.WithConfig("limits.free.max_tasks", 1<<30))
	alice := app.SignIn(b, "alice@example.com")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		app.Send(b, alice, testkit.Request{Method: http.MethodPost, Path: "/api/v1/tasks",
			Body:    map[string]any{"title": fmt.Sprintf("task %d", i), "priority": "high"},
			Headers: map[string]string{"Idempotency-Key": uuid.NewString()}}).Expect(b, http.StatusCreated)
	}
}

func BenchmarkListHundredTasks(b *testing.B) {
	app := testkit.Start(b, testkit.WithConfig("limits.free.max_tasks", 1000))
	alice := app.SignIn(b, "alice@example.com")
	for i := range 100 {
		app.Do(b, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": fmt.Sprintf("task %d", i)}).
			Expect(b, http.StatusCreated)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		app.Do(b, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(b, http.StatusOK)
	}
}

func BenchmarkCompleteTaskLifecycle(b *testing.B) {
	app := testkit.Start(b)
	alice := app.SignIn(b, "alice@example.com")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		id := app.Do(b, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).
			Expect(b, http.StatusCreated).Data(b)["id"].(string)
		app.Do(b, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(b, http.StatusOK)
		app.Do(b, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(b, http.StatusOK)
	}
}
