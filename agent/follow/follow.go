// Package follow decides what a device installs from the signed states its
// link accepted. gitfleet-agent's daemon and the fleet simulator both ask
// it, so the simulator cannot drift from the agent.
//
// A Follower keeps two things: the channel's latest state, and the device's
// standing desired state — an operator's or the penalty box's override —
// which it also keeps on disk, so an override stands across restarts of the
// agent even if the broker no longer holds it. An override stands until the
// server replaces it (ACTION_NONE lifts it); while a pin, rollback or cancel
// stands the device does not follow its channel.
//
// A release that failed on the device last is not installed again unless
// the server orders it (ACTION_RETRY), and then once per order: the
// Follower keeps on disk which order it used, so the agent never loops on
// a failing release by itself.
package follow

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/internal/atomicfile"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Device is who follows: the wave a rollout reaches depends on Fleet and
// ID, and a release names the device types it is for.
type Device struct {
	Fleet, ID, Type string
}

// A Follower holds the states a device follows. Its methods are safe to
// call from several goroutines.
type Follower struct {
	dev  Device
	path string

	mu      sync.Mutex
	desired *gitfleetv1.DesiredState // standing; persisted at path
	retried uint64                   // the sequence of the retry order used; persisted
	channel *gitfleetv1.ChannelState
}

// kept is the file at a Follower's path.
type kept struct {
	// Desired is the standing desired state, protobuf.
	Desired []byte `json:"desired"`
	// Retried is the sequence of the ACTION_RETRY order the device used.
	Retried uint64 `json:"retried,omitempty"`
}

// Open returns a Follower for dev whose standing desired state is kept in
// the file at path; a missing file means none.
func Open(path string, dev Device) (*Follower, error) {
	f := &Follower{dev: dev, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	var k kept
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if err == nil {
		ds := &gitfleetv1.DesiredState{}
		if err = proto.Unmarshal(k.Desired, ds); err == nil {
			f.desired, f.retried = ds, k.Retried
			return f, nil
		}
	}
	// Only damaged media breaks a file that is replaced atomically; the
	// server's next desired state (retained on the broker) replaces it.
	return nil, fmt.Errorf("read the standing desired state: %w (delete %s to wait for the server's)", err, path)
}

// Accept takes a state the link accepted. A desired state is written to
// disk, so it stands across restarts.
func (f *Follower) Accept(s link.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Desired == nil {
		f.channel = s.Channel
		return nil
	}
	// It stands in memory even if it cannot be kept: the link accepted it
	// and will not hand it over again in this run.
	f.desired = s.Desired
	if err := f.keep(); err != nil {
		return fmt.Errorf("keep desired state %d: %w", s.Desired.GetSequence(), err)
	}
	return nil
}

// keep writes the standing desired state and the retry order used.
func (f *Follower) keep() error {
	ds, err := proto.MarshalOptions{Deterministic: true}.Marshal(f.desired)
	if err != nil {
		return err
	}
	b, err := json.Marshal(kept{Desired: ds, Retried: f.retried})
	if err != nil {
		return err
	}
	return atomicfile.Write(f.path, b, 0o600)
}

// Desired returns the standing desired state, or nil.
func (f *Follower) Desired() *gitfleetv1.DesiredState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.desired
}

// Cancels reports whether an update in progress must stop (the engine
// stops it if it has not switched the bootloader): an override cancels, or
// the channel's rollout was aborted and no pin stands.
func (f *Follower) Cancels() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.desired.GetAction() {
	case gitfleetv1.Action_ACTION_CANCEL:
		return true
	case gitfleetv1.Action_ACTION_PIN:
		return false
	}
	return f.channel.GetRolloutState() == gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED
}

// A Step is what the device does next; the zero Step is nothing.
type Step struct {
	// Install, if set, is the release to install, and Why says for logs
	// what asked for it ("pinned", "channel stable").
	Install *gitfleetv1.Release
	Why     string
	// Rollback asks to roll back the release on trial.
	Rollback bool
}

// Next decides, from the states held and the journal j, what the device
// does: with a pin standing it installs the pinned release; with a
// rollback standing it rolls back a release on trial; with a cancel
// standing nothing; otherwise it installs its channel's release when the
// rollout reaches it. It installs only when idle, a release it does not run,
// not older than the one it runs, for its type — and, but for a pin, not one
// that failed here last (a cancelled attempt did not fail): the server's penalty box decides when that is
// offered again, with a retry order that Next uses once (and records before
// it returns the Step). The error says the use could not be recorded; the
// Step is then empty.
func (f *Follower) Next(j update.Journal) (Step, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, retry := f.next(j)
	if !retry || s.Install == nil {
		return s, nil
	}
	f.retried = f.desired.GetSequence()
	if err := f.keep(); err != nil {
		return Step{}, fmt.Errorf("record the use of retry order %d: %w", f.retried, err)
	}
	s.Why += ", retry ordered by the server"
	return s, nil
}

// Peek returns the Step Next would, without using a retry order: for a
// caller that must wait before it acts (the fleet simulator waits for a
// turn) and then asks Next.
func (f *Follower) Peek(j update.Journal) Step {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, _ := f.next(j)
	return s
}

// next is Next without recording; retry says the Step uses the retry order.
func (f *Follower) next(j update.Journal) (_ Step, retry bool) {
	var s Step
	switch f.desired.GetAction() {
	case gitfleetv1.Action_ACTION_PIN:
		s = Step{Install: f.desired.GetRelease(), Why: "pinned"}
	case gitfleetv1.Action_ACTION_ROLLBACK:
		return Step{Rollback: j.State == update.Testing}, false
	case gitfleetv1.Action_ACTION_CANCEL:
		return Step{}, false
	default:
		if f.channel != nil && link.Reaches(f.dev.Fleet, f.dev.ID, f.channel) {
			s = Step{Install: f.channel.GetRelease(), Why: "channel " + f.channel.GetChannel()}
		}
	}
	rel := s.Install
	switch {
	case rel == nil, j.State != update.Idle, rel.GetBundleDigest() == j.Installed.Digest,
		rel.GetCounter() < j.Installed.Counter,
		len(rel.GetDeviceTypes()) > 0 && !slices.Contains(rel.GetDeviceTypes(), f.dev.Type):
		return Step{}, false
	case failedLast(j, rel.GetBundleDigest()) && s.Why != "pinned":
		if f.desired.GetAction() == gitfleetv1.Action_ACTION_RETRY && f.desired.GetRelease().GetBundleDigest() == rel.GetBundleDigest() &&
			f.retried != f.desired.GetSequence() {
			return s, true
		}
		return Step{}, false
	}
	return s, false
}

// failedLast reports whether the device's last update was of the release
// with digest and failed. A cancelled one did not fail (an abort or a
// cancel stopped it; the server counts no failure, so it orders no retry):
// the device installs the release again when its channel offers it.
func failedLast(j update.Journal, digest string) bool {
	r := j.LastResult
	return r != nil && r.State != update.Succeeded && r.Release.Digest == digest &&
		(r.Error == nil || r.Error.Code != gitfleetv1.ErrorCode_ERROR_CODE_CANCELLED.String())
}
