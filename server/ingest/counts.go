package ingest

import "sync/atomic"

// Counts are an Ingest's counters since it was made: what arrived and what
// became of it. Each only grows, as a Prometheus counter does.
type Counts struct {
	// Statuses counts status messages received, Events event messages.
	Statuses, Events uint64
	// Stored counts statuses written; Superseded those not written because
	// a later status of the same device, by its clock, came in the same
	// batch; Stale those not written because the store held a later one;
	// Offline the last wills recorded.
	Stored, Superseded, Stale, Offline uint64
	// New counts events stored for the first time, Duplicates those stored
	// already and dropped, Late those that filled a gap. Gaps counts events
	// that came after a gap, and Missing the events those gaps left out.
	New, Duplicates, Late, Gaps, Missing uint64
	// Failures counts events recording a failed attempt at a release, which
	// the penalty box counts.
	Failures uint64
	// Malformed counts messages refused because their topic or payload
	// broke the protocol; Mismatched those whose device_id is not the
	// device of their topic: a device reporting as another.
	Malformed, Mismatched uint64
	// StoreErrors counts messages dropped after the store failed to take
	// them for about a minute.
	StoreErrors uint64
}

// Counts returns the counters now.
func (in *Ingest) Counts() Counts {
	c := &in.c
	return Counts{
		Statuses: c.statuses.Load(), Events: c.events.Load(),
		Stored: c.stored.Load(), Superseded: c.superseded.Load(), Stale: c.stale.Load(), Offline: c.offline.Load(),
		New: c.new.Load(), Duplicates: c.duplicates.Load(), Late: c.late.Load(), Gaps: c.gaps.Load(), Missing: c.missing.Load(),
		Failures: c.failures.Load(), Malformed: c.malformed.Load(), Mismatched: c.mismatched.Load(),
		StoreErrors: c.storeErrors.Load(),
	}
}

// counters are the live counters behind Counts.
type counters struct {
	statuses, events, stored, superseded, stale    atomic.Uint64
	offline                                        atomic.Uint64
	new, duplicates, late, gaps, missing, failures atomic.Uint64
	malformed, mismatched, storeErrors             atomic.Uint64
}
