package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
)

// A Release names a release the device runs or installs.
type Release struct {
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	Counter uint64 `json:"counter,omitempty"`
	// Digest is the bundle digest, "sha256:<hex>".
	Digest string `json:"digest,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// A Failure is why an update failed: a wire error code and a message.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// A Journal is the engine's persisted state. It is written, whole and
// atomically, before every action.
type Journal struct {
	State State `json:"state"`
	// Seq numbers the transitions since the journal was created; it is the
	// sequence number of the event that reported the last one.
	Seq uint64 `json:"seq"`
	// StreamID names the sequence: a device whose journal is lost starts
	// a new stream at 1.
	StreamID string `json:"stream_id"`
	// Attempts counts the restarts in State: the step counter that breaks
	// crash and reboot loops.
	Attempts int `json:"attempts,omitempty"`

	// Installed is the committed release the device runs.
	Installed Release `json:"installed"`

	// The update in progress, if any.
	Update *Progress `json:"update,omitempty"`
	// LastResult is the outcome of the last update.
	LastResult *Outcome `json:"last_result,omitempty"`
	// LastReport is the report of the last transition, sent again on resume.
	LastReport *Report `json:"last_report,omitempty"`
}

// Last returns the report of the last transition, or nil.
func (j *Journal) Last() *Report { return j.LastReport }

// Progress is the state of the update in progress.
type Progress struct {
	Release Release `json:"release"`
	// Source is where the bundle comes from: a path or URL, reopened on
	// resume.
	Source string `json:"source"`
	// Target is the slot group being written, Previous the one running when
	// the update started.
	Target   string `json:"target,omitempty"`
	Previous string `json:"previous,omitempty"`
	// Chunks maps an image name to the number of its chunks that are
	// written and synced to the slot.
	Chunks map[string]int `json:"chunks,omitempty"`
	// Done and Total count payload bytes.
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
	// BootID is the boot id when the bootloader was armed, or armed to roll
	// back: a different one on resume means the reboot happened.
	BootID  string    `json:"boot_id,omitempty"`
	Started time.Time `json:"started"`
	Error   *Failure  `json:"error,omitempty"`
}

// An Outcome is how an update ended.
type Outcome struct {
	State   State     `json:"state"`
	Release Release   `json:"release"`
	Error   *Failure  `json:"error,omitempty"`
	Ended   time.Time `json:"ended"`
}

// ReadJournal reads the journal at path without taking part in the update:
// for status reports. A missing file is a fresh device.
func ReadJournal(path string) (*Journal, error) { return loadJournal(path) }

// loadJournal reads the journal at path; a missing file is a fresh device.
func loadJournal(path string) (*Journal, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Journal{State: Idle}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if _, ok := Resume[j.State]; !ok {
		return nil, fmt.Errorf("journal %s: unknown state %q", path, j.State)
	}
	if j.Update != nil && j.Update.Chunks == nil {
		// Saved before the first checkpoint: no chunk is written yet.
		j.Update.Chunks = map[string]int{}
	}
	return &j, nil
}

func (j *Journal) save(path string) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}
