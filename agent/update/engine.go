package update

import (
	"context"

	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"

	"github.com/gitfleet/gitfleet/firmware/bundle"
)

// A Source serves one bundle: its signed envelope, and each image's bytes
// from an offset (for resuming).
type Source interface {
	Envelope(ctx context.Context) ([]byte, error)
	Image(ctx context.Context, im *bundle.Image, offset int64) (io.ReadCloser, error)
	Close() error
}

// Slots are the device's A/B slot groups, each holding one slot per class
// (rootfs, boot, …).
type Slots interface {
	// Booted returns the group the running system booted from.
	Booted() (string, error)
	// Other returns the group that is not group.
	Other(group string) (string, error)
	// Open opens the slot of class in group; for writing it must refuse the
	// booted group.
	Open(group, class string, write bool) (Slot, error)
}

// A Slot is one partition or file.
type Slot interface {
	io.ReadWriteSeeker
	Sync() error
	Close() error
	Size() (int64, error)
}

// A Bootloader switches slot groups.
type Bootloader interface {
	// Arm makes the next boot, and only it, try group.
	Arm(group string) error
	// Commit makes group the default and ends the trial.
	Commit(group string) error
	// Revert makes group (the old one) the default and ends the trial.
	Revert(group string) error
}

// A System reboots the device and tells one boot from the next.
type System interface {
	BootID() (string, error)
	Reboot(ctx context.Context) error
}

// A Checker runs the health checks of a freshly booted release.
type Checker interface {
	Check(ctx context.Context) error
}

// A Reporter records a report durably (an on-disk outbox) before it
// returns. It must drop a report whose (StreamID, Seq) it already holds:
// after a restart the engine sends the last report again.
type Reporter interface {
	Report(ctx context.Context, r Report) error
}

// A Report tells the server about one transition.
type Report struct {
	StreamID string    `json:"stream_id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	BootID   string    `json:"boot_id,omitempty"`
	From     State     `json:"from"`
	To       State     `json:"to"`
	Event    Event     `json:"event"`
	Release  Release   `json:"release"`
	Done     int64     `json:"done"`
	Total    int64     `json:"total"`
	Error    *Failure  `json:"error,omitempty"`
}

// Policy is what the device accepts.
type Policy struct {
	DeviceType string
	// MaxAttempts is how many restarts in one state the step counter allows
	// before giving up (default 3).
	MaxAttempts int
	// CheckpointBytes is how much is written between fsync + progress
	// checkpoints (default 16 MiB).
	CheckpointBytes int64
}

// An Engine runs the update state machine of one device.
type Engine struct {
	JournalPath string
	Verifier    bundle.Verifier
	Open        func(ctx context.Context, ref string) (Source, error)
	Slots       Slots
	Boot        Bootloader
	System      System
	Health      Checker
	Reporter    Reporter
	// Cancelled, if set, reports whether a cancel stands (the daemon's:
	// a cancel override, or an aborted rollout). The engine asks it before
	// every chunk it writes and stops an update that has not passed the
	// point of no return, whenever the cancel came.
	Cancelled func() bool
	Policy    Policy
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	j            *Journal
	progress     func(done, total int64)
	onTransition func(Journal)
	written      written // fingerprints of the chunks written, for the read-back
	verified     verifiedEnvelope
}

// verifiedEnvelope is the envelope an action of the current run verified,
// and what it said: a later action of the same run that reads the same
// bytes uses it instead of decoding and verifying them again. It is
// forgotten when the run ends, so an action after a restart, or a run
// after a reboot, verifies afresh.
//
// It keeps the envelope's SHA-256, not its bytes: an envelope grows with
// the chunk count (about 90 bytes a chunk), and those bytes would stay in
// memory for the whole write.
type verifiedEnvelope struct {
	envelope [sha256.Size]byte
	manifest *bundle.Manifest
	digest   bundle.Digest
}

// OnTransition sets a function called with the journal after every
// persisted transition: the daemon publishes the device status from it.
func (e *Engine) OnTransition(fn func(Journal)) { e.onTransition = fn }

// ErrBusy is returned by Install while another update is in progress.
var ErrBusy = errors.New("an update is in progress")

// ErrAwaitingConfirmation is returned when the new release runs and waits
// for Confirm: the engine has no health checks of its own.
var ErrAwaitingConfirmation = errors.New("the new release is waiting for confirmation")

// ErrNothingToConfirm is returned by Confirm outside the testing state.
var ErrNothingToConfirm = errors.New("no new release is waiting for confirmation")

// ErrRebooting is returned when the engine has asked the system to reboot:
// the caller should stop and let it.
var ErrRebooting = errors.New("rebooting")

// Load reads the journal. It must be called once before anything else.
func (e *Engine) Load() error {
	j, err := loadJournal(e.JournalPath)
	if err != nil {
		return err
	}
	if j.StreamID == "" {
		var b [8]byte
		rand.Read(b[:])
		j.StreamID = hex.EncodeToString(b[:])
		if err := j.save(e.JournalPath); err != nil {
			return err
		}
	}
	e.j = j
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Journal returns a copy of the persisted state.
func (e *Engine) Journal() Journal { return *e.j }

// OnProgress sets a function called as image bytes are written.
func (e *Engine) OnProgress(fn func(done, total int64)) { e.progress = fn }

// Install starts an update from ref (a path or URL) and runs it as far as it
// goes without a reboot: to an outcome, or to ErrRebooting.
func (e *Engine) Install(ctx context.Context, ref string) error {
	return e.InstallRelease(ctx, ref, "")
}

// InstallRelease is Install for an advertised release: the bundle's digest
// must be digest ("sha256:<hex>"), so a source that serves another signed
// bundle than the signed advert named is refused.
func (e *Engine) InstallRelease(ctx context.Context, ref, digest string) error {
	if e.j.State != Idle {
		return fmt.Errorf("%w: %s (state %s)", ErrBusy, e.j.Update.Source, e.j.State)
	}
	e.j.Update = &Progress{Source: ref, Chunks: map[string]int{}, Started: e.now(), Release: Release{Digest: digest}}
	if err := e.transition(ctx, Offered, nil); err != nil {
		return err
	}
	return e.run(ctx)
}

// Resume continues whatever the journal says is in progress, after a
// restart of the agent or a reboot of the device, following the Resume
// table. The step counter gives up on a state the agent keeps dying in.
func (e *Engine) Resume(ctx context.Context) error {
	// Re-send the last report, in every state, idle too: the crash may have
	// come between persisting the transition and recording its report.
	if e.j.Last() != nil {
		if err := e.report(ctx, *e.j.Last()); err != nil {
			return err
		}
	}
	if e.j.State == Idle {
		return nil
	}
	e.j.Attempts++
	if err := e.j.save(e.JournalPath); err != nil {
		return err
	}
	max := e.Policy.MaxAttempts
	if max == 0 {
		max = 3
	}
	if e.j.Attempts > max {
		f := &Failure{Code: "ERROR_CODE_REBOOT_LOOP", Message: fmt.Sprintf("gave up after %d restarts in state %s", e.j.Attempts-1, e.j.State)}
		e.Log.Warn("giving up", "state", e.j.State, "attempts", e.j.Attempts)
		if err := e.transition(ctx, GaveUp, f); err != nil {
			return err
		}
	}
	return e.run(ctx)
}

// Confirm decides by hand the trial of a new release that waits in the
// testing state: healthy commits it, otherwise it rolls back (and reboots).
func (e *Engine) Confirm(ctx context.Context, healthy bool, reason string) error {
	if e.j.State != Testing {
		return fmt.Errorf("%w (state %s)", ErrNothingToConfirm, e.j.State)
	}
	ev, f := Healthy, (*Failure)(nil)
	if !healthy {
		ev, f = Unhealthy, &Failure{Code: "ERROR_CODE_HEALTH_CHECK_FAILED", Message: "rolled back by hand: " + reason}
	}
	if err := e.transition(ctx, ev, f); err != nil {
		return err
	}
	return e.run(ctx)
}

// run performs the action of each state until the engine is idle or must
// wait for a reboot.
func (e *Engine) run(ctx context.Context) error {
	defer func() { e.verified = verifiedEnvelope{} }()
	for e.j.State != Idle {
		if err := ctx.Err(); err != nil {
			// Shutdown, not cancel: the journal says where to resume.
			return err
		}
		ev, f, err := e.act(ctx)
		if err != nil {
			return err
		}
		if err := e.transition(ctx, ev, f); err != nil {
			return err
		}
	}
	return nil
}

// act performs the current state's action and returns the event it ends in.
// A non-nil error means stop without a transition (shutdown, or a reboot
// was requested); the journal says how to resume.
func (e *Engine) act(ctx context.Context) (Event, *Failure, error) {
	u := e.j.Update
	switch e.j.State {
	case Checking:
		if err := e.check(ctx); err != nil {
			if ctx.Err() != nil {
				return "", nil, ctx.Err()
			}
			return refusedOrErrored(err), failureOf(err), nil
		}
		return Trusted, nil, nil
	case Writing:
		if err := e.write(ctx); err != nil {
			switch {
			case errors.Is(err, errCancelled):
				return Cancel, &Failure{Code: "ERROR_CODE_CANCELLED", Message: "cancelled"}, nil
			case ctx.Err() != nil:
				return "", nil, ctx.Err()
			}
			return Errored, failureOf(err), nil
		}
		return Written, nil, nil
	case Verifying:
		if err := e.verifySlots(ctx); err != nil {
			if ctx.Err() != nil {
				return "", nil, ctx.Err()
			}
			return Errored, failureOf(err), nil
		}
		return Verified, nil, nil
	case Arming:
		if err := e.Boot.Arm(u.Target); err != nil {
			// An environment write is all-or-nothing, but be sure the old
			// group stays the default before reporting a clean failure.
			if rerr := e.Boot.Revert(u.Previous); rerr != nil {
				e.Log.Error("revert after a failed arm", "err", rerr)
			}
			return Errored, &Failure{Code: "ERROR_CODE_BOOTLOADER_FAILED", Message: err.Error()}, nil
		}
		return Armed, nil, nil
	case Rebooting:
		rebooted, err := e.rebooted()
		if err != nil {
			return "", nil, err
		}
		if !rebooted {
			return "", nil, e.reboot(ctx)
		}
		booted, err := e.Slots.Booted()
		if err != nil {
			return "", nil, fmt.Errorf("which slot booted: %w", err)
		}
		if booted == u.Target {
			return BootedNew, nil, nil
		}
		return BootedOld, &Failure{Code: "ERROR_CODE_ROLLED_BACK", Message: fmt.Sprintf("the bootloader booted %s, not %s: the new release did not come up", booted, u.Target)}, nil
	case Testing:
		if e.Health == nil {
			return "", nil, ErrAwaitingConfirmation
		}
		if err := e.Health.Check(ctx); err != nil {
			if ctx.Err() != nil {
				return "", nil, ctx.Err()
			}
			return Unhealthy, &Failure{Code: "ERROR_CODE_HEALTH_CHECK_FAILED", Message: err.Error()}, nil
		}
		return Healthy, nil, nil
	case Committing:
		if err := e.Boot.Commit(u.Target); err != nil {
			return Errored, &Failure{Code: "ERROR_CODE_BOOTLOADER_FAILED", Message: err.Error()}, nil
		}
		return Committed, nil, nil
	case RollingBack:
		rebooted, err := e.rebooted()
		if err != nil {
			return "", nil, err
		}
		if rebooted {
			if booted, err := e.Slots.Booted(); err == nil && booted == u.Previous {
				return Reverted, u.Error, nil
			}
		}
		if err := e.Boot.Revert(u.Previous); err != nil {
			return "", nil, fmt.Errorf("revert to %s: %w", u.Previous, err)
		}
		return "", nil, e.reboot(ctx)
	case Succeeded, Failed, RolledBack:
		return Reported, nil, nil
	}
	return "", nil, fmt.Errorf("update: no action for state %q", e.j.State)
}

// transition takes the event's transition, persists the journal, then
// records the report. Persisting first means a crash in between is repaired
// by Resume, which sends the report again under the same sequence number.
func (e *Engine) transition(ctx context.Context, ev Event, f *Failure) error {
	from := e.j.State
	to, err := next(from, ev)
	if err != nil {
		return err
	}
	u := e.j.Update
	bootID, _ := e.System.BootID()
	switch to {
	case Rebooting, RollingBack:
		// Record the boot in which the bootloader was armed (or, for a
		// rollback, is about to be reverted), so a resume can tell whether
		// the reboot has happened since. Recording it on entering arming
		// instead would take a power cut before the arm completed for a
		// reboot into the old slot.
		u.BootID = bootID
	case Succeeded:
		e.j.Installed = u.Release
	}
	if f != nil && u != nil {
		u.Error = f
	}
	rep := Report{StreamID: e.j.StreamID, Seq: e.j.Seq + 1, Time: e.now(), BootID: bootID,
		From: from, To: to, Event: ev, Error: f}
	if u != nil {
		rep.Release, rep.Done, rep.Total = u.Release, u.Done, u.Total
	}
	if to == Idle {
		e.j.LastResult = &Outcome{State: from, Error: u.Error, Release: u.Release, Ended: e.now()}
		e.j.Update = nil
	}
	e.j.State, e.j.Seq, e.j.Attempts = to, rep.Seq, 0
	e.j.LastReport = &rep
	if err := e.j.save(e.JournalPath); err != nil {
		return err
	}
	e.Log.Info("transition", "state", to, "from", from, "event", ev, "release", rep.Release.Version)
	if e.onTransition != nil {
		e.onTransition(*e.j)
	}
	return e.report(ctx, rep)
}

// report hands rep to the reporter. A full outbox (the device has been
// offline for very long) does not stop the update: updating matters more
// than this report, and the server sees the gap in the sequence.
func (e *Engine) report(ctx context.Context, rep Report) error {
	err := e.Reporter.Report(ctx, rep)
	if err != nil && gitfleetv1.ErrorCodeOf(err) == gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE {
		e.Log.Warn("report dropped: the outbox is full", "state", rep.To, "seq", rep.Seq)
		return nil
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (e *Engine) rebooted() (bool, error) {
	id, err := e.System.BootID()
	if err != nil {
		return false, fmt.Errorf("boot id: %w", err)
	}
	return id != e.j.Update.BootID, nil
}

func (e *Engine) reboot(ctx context.Context) error {
	if err := e.System.Reboot(ctx); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return ErrRebooting
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// refusedOrErrored tells a refusal (the bundle is not acceptable) from an
// error (it could not be checked).
func refusedOrErrored(err error) Event {
	if failureOf(err).Code == "ERROR_CODE_INTERNAL" || failureOf(err).Code == "ERROR_CODE_DOWNLOAD_FAILED" {
		return Errored
	}
	return Refused
}
