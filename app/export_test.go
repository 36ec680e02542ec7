package app

import "io"

// Run is run, for tests.
func Run(args []string, stdout, stderr io.Writer) int { return run(args, stdout, stderr) }
