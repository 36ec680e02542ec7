// Command perpetua is the Perpetua Flow API: one binary that runs as the HTTP
// API, the background worker, or both (see package app).
package main

import (
	"os"
	_ "time/tzdata" // IANA zones even on images without /usr/share/zoneinfo

	"github.com/perpetuaflow/api/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
