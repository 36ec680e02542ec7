// Command createdb creates the PostgreSQL database a URL names when it is
// missing (make test-postgres runs it), connecting to the server's
// "postgres" database to do so.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: createdb postgres://user@host:port/name")
		os.Exit(2)
	}
	if err := create(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "createdb:", err)
		os.Exit(1)
	}
}

func create(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	name := u.Path[1:]
	if name == "" {
		return fmt.Errorf("%s names no database", raw)
	}
	admin := *u
	admin.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to %s:%s: %w (is PostgreSQL running?)", u.Hostname(), u.Port(), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	fmt.Printf("created database %s\n", name)
	return nil
}
