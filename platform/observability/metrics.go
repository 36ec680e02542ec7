package observability

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric this service exports.
const Namespace = "perpetua"

// NewRegistry returns the process registry with Go runtime and process
// collectors. A private registry (not the global one) keeps tests that start
// several apps in one process independent.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}
