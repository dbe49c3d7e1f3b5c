package ingest

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/store"
)

// A statusItem is a decoded status waiting to be stored.
type statusItem struct {
	msg      bus.Message
	fleet    string
	status   *gitfleetv1.DeviceStatus
	received time.Time
}

// will reports whether the status is a last will, or the offline status a
// device publishes when it stops: online is false only there.
func (it statusItem) will() bool { return !it.status.GetOnline() }

// receiveStatus checks a status message and queues it for its writer.
// It runs on the bus client's goroutines.
func (in *Ingest) receiveStatus(m bus.Message) {
	in.c.statuses.Add(1)
	t, ok := in.parse(m, topic.KindStatus)
	if !ok {
		return
	}
	st, err := gitfleetv1.DecodeDeviceStatus(m.Payload)
	if err != nil {
		in.refuse(m, &in.c.malformed, err)
		return
	}
	if err := gitfleetv1.MatchTopic(t, st); err != nil {
		in.refuse(m, &in.c.mismatched, err)
		return
	}
	select {
	case worker(in, in.status, st.GetDeviceId()) <- statusItem{msg: m, fleet: t.Fleet, status: st, received: time.Now()}:
	case <-in.done:
		// Unacknowledged: the broker delivers it again.
	}
}

// storeStatuses stores one batch and acknowledges its messages. Of several
// statuses of one device in the batch it keeps the latest by the device's
// clock, as the store does; a last will counts as later than what came
// before it.
func (in *Ingest) storeStatuses(ctx context.Context, batch []statusItem) {
	latest := make(map[string]int, len(batch)) // device → index in batch
	var order []string
	for i, it := range batch {
		id := it.status.GetDeviceId()
		j, ok := latest[id]
		switch {
		case !ok:
			order = append(order, id)
		case !it.will() && !batch[j].will() && it.status.GetTime().AsTime().Before(batch[j].status.GetTime().AsTime()):
			in.c.superseded.Add(1)
			continue
		default:
			in.c.superseded.Add(1)
		}
		latest[id] = i
	}
	var devices []store.Device
	var wills []statusItem
	kept := make([]statusItem, 0, len(order))
	// In id order, the rows and index entries of one batch are written in
	// one pass over each B-tree, not in the order devices happened to report.
	slices.Sort(order)
	for _, id := range order {
		it := batch[latest[id]]
		kept = append(kept, it)
		if it.will() {
			wills = append(wills, it)
			continue
		}
		devices = append(devices, device(it))
	}
	var stored, offline uint64
	var stale map[string]bool
	failed := false
	if len(devices) > 0 {
		var ids []string
		err := storeRetry.Retry(ctx, func() error {
			var err error
			ids, err = in.store.PutDevices(ctx, devices)
			return err
		})
		if err != nil {
			failed = true
			in.dropped(ctx, len(devices), err)
		} else {
			stored = uint64(len(devices) - len(ids))
			stale = make(map[string]bool, len(ids))
			for _, id := range ids {
				stale[id] = true
			}
		}
	}
	offlineOK := map[string]bool{}
	for _, it := range wills {
		id := it.status.GetDeviceId()
		err := storeRetry.Retry(ctx, func() error {
			err := in.store.SetOnline(ctx, id, false)
			if errors.Is(err, store.ErrNotFound) {
				return nil // a device that never reported a full status
			}
			return err
		})
		if err != nil {
			failed = true
			in.dropped(ctx, 1, err)
		} else {
			offline++
			offlineOK[id] = true
		}
	}
	if failed && ctx.Err() != nil {
		return // stopping: the broker delivers the batch again
	}
	for _, it := range batch {
		it.msg.Ack()
	}
	if in.cfg.OnUpdate != nil {
		for _, it := range kept {
			if id := it.status.GetDeviceId(); offlineOK[id] || !it.will() && stored > 0 && !stale[id] {
				in.cfg.OnUpdate(Update{Device: id, Status: it.status})
			}
		}
	}
	// Counted last, so that whoever sees the statuses counted sees all that
	// came of them.
	in.c.stored.Add(stored)
	in.c.stale.Add(uint64(len(stale)))
	in.c.offline.Add(offline)
}

// dropped counts n messages the store did not take, and logs why. When ctx
// ended, they are not counted: Run is stopping, and their messages will be
// delivered again.
func (in *Ingest) dropped(ctx context.Context, n int, err error) {
	if ctx.Err() != nil {
		return
	}
	in.c.storeErrors.Add(uint64(n))
	in.log.Error("ingest: store failed; messages dropped", "messages", n, "err", err)
}

// device returns the store's record of a status.
func device(it statusItem) store.Device {
	st := it.status
	d := store.Device{
		ID: st.GetDeviceId(), Fleet: it.fleet, DeviceType: st.GetDeviceType(), Channel: st.GetChannel(),
		AgentVersion: st.GetAgentVersion(), BootID: st.GetBootId(),
		BootedSlot: st.GetBootedSlot(), ActiveSlot: st.GetActiveSlot(),
		Version: st.GetVersion(), Tag: st.GetTag(), Commit: st.GetCommit(), BundleDigest: st.GetBundleDigest(),
		BootConfirmed: st.GetBootConfirmed(), UpdateState: st.GetUpdateState(),
		TargetVersion: st.GetTargetVersion(), TargetBundleDigest: st.GetTargetBundleDigest(),
		DoneBytes: clamp(st.GetProgress().GetDoneBytes()), TotalBytes: clamp(st.GetProgress().GetTotalBytes()),
		HealthOK: st.GetHealth().GetOk(), Online: st.GetOnline(), Labels: st.GetLabels(),
		LastSeen: it.received,
	}
	if st.GetTime() != nil {
		d.StatusTime = st.GetTime().AsTime()
	}
	for _, c := range st.GetHealth().GetChecks() {
		d.HealthChecks = append(d.HealthChecks, store.HealthCheck{Name: c.GetName(), OK: c.GetOk(), Message: c.GetMessage()})
	}
	if e := st.GetLastError(); e != nil {
		d.ErrorCode, d.ErrorMessage = e.GetCode().String(), e.GetMessage()
	}
	return d
}

// clamp fits a byte count into the store's signed column.
func clamp(n uint64) int64 {
	return int64(min(n, math.MaxInt64))
}
