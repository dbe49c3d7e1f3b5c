package main

import (
	"context"
	"os"
	"strconv"
	"syscall"

	"github.com/gitfleet/gitfleet/agent/update"
)

// Fault injection for the power-cut tests (powercut_test.go), which run the
// real binary and need it to die at exact points. Both variables are read
// once at start; a device never sets them.
//
//	GITFLEET_FAULT_KILL_IN_STATE=writing  SIGKILL right after the journal
//	                                       enters the state, before its report
//	GITFLEET_FAULT_KILL_AT_BYTE=123456    SIGKILL once that many bytes were
//	                                       written to slots, mid-write
var (
	faultState  = update.State(os.Getenv("GITFLEET_FAULT_KILL_IN_STATE"))
	faultByte   = envInt("GITFLEET_FAULT_KILL_AT_BYTE")
	faultsArmed = faultState != "" || faultByte > 0
)

func envInt(name string) int64 {
	n, err := strconv.ParseInt(os.Getenv(name), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func die() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }

// faultReporter dies on entering faultState, after the transition is
// persisted and before it is reported: the hardest moment for reports.
type faultReporter struct{ update.Reporter }

func (f faultReporter) Report(ctx context.Context, r update.Report) error {
	if r.To == faultState {
		die()
	}
	return f.Reporter.Report(ctx, r)
}

// faultSlots counts bytes written to slots and dies mid-write at faultByte.
type faultSlots struct {
	update.Slots
	written *int64
}

func (f faultSlots) Open(group, class string, write bool) (update.Slot, error) {
	s, err := f.Slots.Open(group, class, write)
	if err != nil || !write {
		return s, err
	}
	return faultSlot{Slot: s, written: f.written}, nil
}

type faultSlot struct {
	update.Slot
	written *int64
}

func (f faultSlot) Write(p []byte) (int, error) {
	if left := faultByte - *f.written; left < int64(len(p)) {
		// Tear the write: part of it reaches the slot, then the power goes.
		n, _ := f.Slot.Write(p[:max(left, 0)])
		*f.written += int64(n)
		die()
	}
	n, err := f.Slot.Write(p)
	*f.written += int64(n)
	return n, err
}
