package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitfleet/gitfleet/server/ingest"
)

// ingestCollector exports the counters of an Ingest (ingest.Counts) to
// Prometheus, read at each scrape.
type ingestCollector struct{ in *ingest.Ingest }

var (
	ingestMessages = prometheus.NewDesc("gitfleet_ingest_messages_total",
		"Messages received from devices, by kind: status or event.", []string{"kind"}, nil)
	ingestStatuses = prometheus.NewDesc("gitfleet_ingest_statuses_total",
		"Statuses by what became of them: stored; superseded by a later one of the device in the same batch; "+
			"stale, the store holding a later one by the device's clock; offline, a last will.", []string{"result"}, nil)
	ingestEvents = prometheus.NewDesc("gitfleet_ingest_events_total",
		"Events by how they stood to their stream: new (late ones included), duplicate, late (filled a gap).", []string{"result"}, nil)
	ingestGaps = prometheus.NewDesc("gitfleet_ingest_event_gaps_total",
		"Events that came after a gap in their stream.", nil, nil)
	ingestMissing = prometheus.NewDesc("gitfleet_ingest_events_missing_total",
		"Events that gaps left out.", nil, nil)
	ingestFailures = prometheus.NewDesc("gitfleet_ingest_failures_total",
		"Failed attempts at a release recorded for the penalty box.", nil, nil)
	ingestRefused = prometheus.NewDesc("gitfleet_ingest_refused_total",
		"Messages refused, by reason: malformed topic or payload, or mismatched (a device reporting as another).", []string{"reason"}, nil)
	ingestStoreErrors = prometheus.NewDesc("gitfleet_ingest_store_errors_total",
		"Messages dropped after the store failed to take them for about a minute.", nil, nil)
)

func (c ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ingestMessages, ingestStatuses, ingestEvents, ingestGaps, ingestMissing,
		ingestFailures, ingestRefused, ingestStoreErrors} {
		ch <- d
	}
}

func (c ingestCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.in.Counts()
	counter := func(d *prometheus.Desc, v uint64, label ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label...)
	}
	counter(ingestMessages, n.Statuses, "status")
	counter(ingestMessages, n.Events, "event")
	counter(ingestStatuses, n.Stored, "stored")
	counter(ingestStatuses, n.Superseded, "superseded")
	counter(ingestStatuses, n.Stale, "stale")
	counter(ingestStatuses, n.Offline, "offline")
	counter(ingestEvents, n.New, "new")
	counter(ingestEvents, n.Duplicates, "duplicate")
	counter(ingestEvents, n.Late, "late")
	counter(ingestGaps, n.Gaps)
	counter(ingestMissing, n.Missing)
	counter(ingestFailures, n.Failures)
	counter(ingestRefused, n.Malformed, "malformed")
	counter(ingestRefused, n.Mismatched, "mismatched")
	counter(ingestStoreErrors, n.StoreErrors)
}
