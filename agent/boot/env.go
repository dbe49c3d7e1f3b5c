package boot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/agent/slot"
)

// A Store holds a bootloader's variables: bootenv.UBootEnv, bootenv.GRUBEnv
// or a File. Update reads them, lets fn change them and writes them back,
// writing nothing if fn returns an error.
type Store interface {
	Update(ctx context.Context, fn func(*bootenv.Vars) error) error
}

// envTimeout bounds an Arm, Commit or Revert, which have no context: it is
// mostly the wait for the environment's lock, which fw_setenv holds for
// milliseconds.
const envTimeout = time.Minute

// Env is the bootloader backend that keeps the convention's variables in a
// Store. Each method is one Store.Update, so each change is all-or-nothing
// where the store is (a redundant U-Boot environment, a GRUB block or a
// File, all replaced atomically) and repeating it is harmless.
type Env struct {
	store Store
	conv  Convention
}

// NewEnv returns the backend that keeps c's variables in s.
func NewEnv(s Store, c Convention) (*Env, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Env{store: s, conv: c.withDefaults()}, nil
}

// Arm makes the next boot try group, and the Tries-1 boots after it if the
// trial has not ended: it sets the slot variable to group, UpgradeAvailable
// to 1, BootCount to 0 and BootLimit to Tries.
func (e *Env) Arm(group string) error {
	return e.update("arm", group, e.conv.arm)
}

// Commit makes group the default and ends the trial: the slot variable is
// group, UpgradeAvailable and BootCount 0.
func (e *Env) Commit(group string) error {
	return e.update("commit", group, e.conv.settle)
}

// Revert makes group, the old one, the default and ends the trial: the same
// variables as Commit, with the old group.
func (e *Env) Revert(group string) error {
	return e.update("revert", group, e.conv.settle)
}

func (e *Env) update(verb, group string, change func(*bootenv.Vars, string) error) error {
	if _, err := slot.Other(group); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), envTimeout)
	defer cancel()
	err := e.store.Update(ctx, func(v *bootenv.Vars) error { return change(v, group) })
	if err != nil {
		return fmt.Errorf("%s group %s: %w", verb, group, err)
	}
	return nil
}

// errRead ends an Update that only reads, so that nothing is written.
var errRead = errors.New("read only")

// State returns the convention's state in the store.
func (e *Env) State(ctx context.Context) (State, error) {
	var s State
	err := e.store.Update(ctx, func(v *bootenv.Vars) error {
		s = e.conv.State(v)
		return errRead
	})
	if !errors.Is(err, errRead) {
		return State{}, fmt.Errorf("read boot state: %w", err)
	}
	return s, nil
}

// Booted returns the group the bootloader started last, as State.Booted
// tells it from the variables, with its caveats. It makes Env a
// slot.Detector.
func (e *Env) Booted(ctx context.Context) (string, error) {
	s, err := e.State(ctx)
	if err != nil {
		return "", err
	}
	return s.Booted(), nil
}
