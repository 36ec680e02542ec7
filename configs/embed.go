// Package configs holds the default configuration shipped inside the binary.
package configs

import _ "embed"

// Default is configs/default.yaml: the lowest layer of configuration, below an
// optional config file and environment variables.
//
//go:embed default.yaml
var Default []byte
