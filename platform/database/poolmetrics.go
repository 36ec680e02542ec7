package database

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perpetuaflow/api/platform/observability"
)

// poolCollector exports the pgx pool's statistics: on PostgreSQL every
// query goes through that pool (database/sql borrows its connections and
// keeps none idle, so its own go_sql_* figures say little).
type poolCollector struct {
	pool  *pgxpool.Pool
	descs map[string]*prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(observability.Namespace, "db_pool", name), help, nil, nil)
	}
	return &poolCollector{pool: pool, descs: map[string]*prometheus.Desc{
		"max":         d("max_connections", "Connections the pool may open (database.max_open_conns)."),
		"total":       d("connections", "Connections open now (in use, idle or being opened)."),
		"acquired":    d("connections_in_use", "Connections lent out now."),
		"idle":        d("connections_idle", "Connections idle in the pool now."),
		"acquires":    d("acquires_total", "Connections lent out."),
		"waited":      d("acquire_waits_total", "Loans that waited because no connection was idle."),
		"waitSeconds": d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
		"canceled":    d("acquires_canceled_total", "Loans given up (their context ended) while waiting."),
		"opened":      d("connections_opened_total", "Connections opened."),
		"lifetime":    d("connections_closed_lifetime_total", "Connections closed for reaching database.conn_max_lifetime."),
		"idleClosed":  d("connections_closed_idle_total", "Connections closed for idling too long."),
	}}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.GaugeValue, v) }
	counter := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.CounterValue, v) }
	gauge("max", float64(s.MaxConns()))
	gauge("total", float64(s.TotalConns()))
	gauge("acquired", float64(s.AcquiredConns()))
	gauge("idle", float64(s.IdleConns()))
	counter("acquires", float64(s.AcquireCount()))
	counter("waited", float64(s.EmptyAcquireCount()))
	counter("waitSeconds", s.EmptyAcquireWaitTime().Seconds())
	counter("canceled", float64(s.CanceledAcquireCount()))
	counter("opened", float64(s.NewConnsCount()))
	counter("lifetime", float64(s.MaxLifetimeDestroyCount()))
	counter("idleClosed", float64(s.MaxIdleDestroyCount()))
}
