package ai

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perpetuaflow/api/platform/observability"
)

type metrics struct {
	requests       *prometheus.CounterVec
	credits        *prometheus.CounterVec
	transcriptions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "ai_requests_total",
			Help: "AI requests by kind (chat, chat_stream, subtasks, convert, transcribe) and outcome (ok, or the error code).",
		}, []string{"kind", "outcome"}),
		credits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "ai_credits_spent_total",
			Help: "AI credits charged by kind of request.",
		}, []string{"kind"}),
		transcriptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "voice_transcriptions_total",
			Help: "Voice note transcriptions by outcome (completed, failed, unpaid).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.credits, m.transcriptions)
	for _, o := range []string{"completed", "failed", "unpaid"} {
		m.transcriptions.WithLabelValues(o) // exported at 0 from the start
	}
	return m
}
