package hil

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/hil/vboard"
)

// A step runs one scenario on one board. The runner hands it the device,
// the release and the repeat's seed.
type step struct {
	d       *device
	bundles *bundles
	fleet   *fleet
	rel     Release
	seed    uint64
}

// run runs the scenario, checking the console, then waits until the fleet
// API reports the device as its console did at the end, its outcome
// included.
func (st *step) run(ctx context.Context, typ string) error {
	st.d.panics = nil
	since, err := st.fleet.mark(ctx, st.d.b.DeviceID)
	if err != nil {
		return err
	}
	s, err := st.scenario(ctx, typ)
	if len(st.d.panics) > 0 {
		// A crash is a bug even when the device recovers from it.
		return fmt.Errorf("gitfleet-agent crashed on the board: %s (%d crashes; see the console log)", st.d.panics[0], len(st.d.panics))
	}
	if err != nil {
		return err
	}
	return st.fleet.agree(ctx, expectation{device: st.d.b.DeviceID, status: s, slot: st.d.slot, outcome: true, since: since})
}

// scenario runs a scenario of type typ and returns the device's status at
// its end, as the console reported it.
func (st *step) scenario(ctx context.Context, typ string) (DeviceStatus, error) {
	switch typ {
	case Update:
		return st.update(ctx)
	case BadSignature:
		return st.refused(ctx, false, regexp.MustCompile(`(?i)signature|signed|untrusted|threshold`))
	case Downgrade:
		return st.downgrade(ctx)
	case BrokenImage:
		return st.rollback(ctx, 2, "the kernel of the new slot never came up")
	case HealthCheckFails:
		return st.rollback(ctx, 2, "the new slot's health check failed")
	case PowerCutWrite:
		return st.powerCutWrite(ctx)
	case PowerCutFirstBoot:
		return st.powerCutFirstBoot(ctx)
	}
	return DeviceStatus{}, fmt.Errorf("unknown scenario type %q", typ)
}

// install starts the release's install at the prompt and waits until the
// board restarts, which a successful install ends in. It fails if the
// install command fails instead.
func (st *step) install(ctx context.Context) error {
	b, err := st.bundles.get(ctx, st.rel, true)
	if err != nil {
		return err
	}
	out, rc, err := st.d.install(ctx, st.installCommand(b))
	switch {
	case errors.Is(err, errRebooted):
		return nil // the reboot came before the shell printed the status
	case err != nil:
		return fmt.Errorf("install: %w", err)
	case rc != 0:
		return fmt.Errorf("install exited %d: %s", rc, tail(out, 3))
	}
	// The install armed the new slot and asked for a reboot.
	if _, err := st.d.con.Expect(ctx, st.d.b.BootTimeout, st.d.b.Banner); err != nil {
		return fmt.Errorf("install succeeded but the board did not restart: %w", err)
	}
	return nil
}

// installCommand is what installs b at the board's shell: the agent
// downloads it from the runner's server, as it will from the fleet's.
func (st *step) installCommand(b *built) string {
	return "gitfleet-agent install " + st.bundles.url(st.d.b.BundlesURL, st.d.b.Name, b)
}

// before returns the settled status and the slot the board runs.
func (st *step) before(ctx context.Context) (DeviceStatus, string, error) {
	s, err := st.d.settle(ctx)
	if err != nil {
		return s, "", fmt.Errorf("before the scenario: %w", err)
	}
	return s, st.d.slot, nil
}

// update installs the release and expects a confirmed boot of it, from
// the other slot.
func (st *step) update(ctx context.Context) (DeviceStatus, error) {
	_, slot, err := st.before(ctx)
	if err != nil {
		return DeviceStatus{}, err
	}
	if err := st.install(ctx); err != nil {
		return DeviceStatus{}, err
	}
	l, err := st.d.boot(ctx, 1, 1)
	if err != nil {
		return DeviceStatus{}, err
	}
	if l.has(panicRE) {
		return DeviceStatus{}, errors.New("the kernel panicked booting the new slot")
	}
	s, err := st.d.settle(ctx)
	if err != nil {
		return s, err
	}
	if err := st.running(s, st.rel); err != nil {
		return s, err
	}
	if slot != "" && st.d.slot == slot {
		return s, fmt.Errorf("the board still boots slot %s after the update", slot)
	}
	return s, nil
}

// running checks that s reports rel installed, committed and confirmed.
func (st *step) running(s DeviceStatus, rel Release) error {
	switch {
	case s.Installed.Version != rel.Version || s.Installed.Counter != rel.Counter:
		return fmt.Errorf("the device reports %s (counter %d) installed, want %s (counter %d)", s.Installed.Version, s.Installed.Counter, rel.Version, rel.Counter)
	case !s.Confirmed || s.State != update.Idle:
		return fmt.Errorf("the device reports state %s, confirmed %t: want idle and confirmed", s.State, s.Confirmed)
	case s.Last == nil || s.Last.State != update.Succeeded || s.Last.Release.Version != rel.Version:
		return fmt.Errorf("the device's last result is %s, want %s succeeded", outcome(s.Last), rel.Version)
	}
	return nil
}

func outcome(o *update.Outcome) string {
	if o == nil {
		return "none"
	}
	s := fmt.Sprintf("%s %s", o.Release.Version, o.State)
	if o.Error != nil {
		s += fmt.Sprintf(" (%s: %s)", o.Error.Code, o.Error.Message)
	}
	return s
}

// unchanged checks that a refusal left the device as it was, and reports
// the refused install failed.
func unchanged(before, after DeviceStatus) error {
	switch {
	case after.Installed != before.Installed || after.State != update.Idle || !after.Confirmed:
		return fmt.Errorf("the refusal changed the device: before %s (counter %d) %s, after %s (counter %d) %s",
			before.Installed.Version, before.Installed.Counter, before.State, after.Installed.Version, after.Installed.Counter, after.State)
	case after.Last == nil || after.Last.State != update.Failed || after.Last.Error == nil:
		return fmt.Errorf("the device's last result is %s, want the refused install failed with an error", outcome(after.Last))
	}
	return nil
}

// refused installs the release (signed by a key the board does not trust
// unless trusted) and expects the install to fail, saying why, with no
// reboot and nothing changed.
func (st *step) refused(ctx context.Context, trusted bool, why *regexp.Regexp) (DeviceStatus, error) {
	before, _, err := st.before(ctx)
	if err != nil {
		return DeviceStatus{}, err
	}
	b, err := st.bundles.get(ctx, st.rel, trusted)
	if err != nil {
		return DeviceStatus{}, err
	}
	out, rc, err := st.d.install(ctx, st.installCommand(b))
	switch {
	case errors.Is(err, errRebooted):
		return DeviceStatus{}, errors.New("the board rebooted: it installed the bundle instead of refusing it")
	case err != nil:
		return DeviceStatus{}, err
	case rc == 0:
		return DeviceStatus{}, fmt.Errorf("install exited 0, want a refusal: %s", tail(out, 3))
	case !why.MatchString(strings.Join(out, "\n")):
		return DeviceStatus{}, fmt.Errorf("the refusal does not say why (want %q): %s", why, tail(out, 3))
	}
	after, err := st.d.reports.Status(ctx, st.d)
	if err != nil {
		return after, err
	}
	return after, unchanged(before, after)
}

// downgrade expects a release below the running one's counter to be
// refused.
func (st *step) downgrade(ctx context.Context) (DeviceStatus, error) {
	before, _, err := st.before(ctx)
	if err != nil {
		return before, err
	}
	if before.Installed.Counter <= st.rel.Counter {
		return before, fmt.Errorf("the board runs counter %d, not above %s's %d: put an update to a later release before this scenario",
			before.Installed.Counter, st.rel.Version, st.rel.Counter)
	}
	return st.refused(ctx, true, regexp.MustCompile(`(?i)downgrade|lower than the installed`))
}

// rollback installs a release that fails on the board and expects it back
// on its old slot, after at least boots restarts, reporting the rollback.
func (st *step) rollback(ctx context.Context, boots int, what string) (DeviceStatus, error) {
	before, slot, err := st.before(ctx)
	if err != nil {
		return before, err
	}
	if err := st.install(ctx); err != nil {
		return DeviceStatus{}, err
	}
	l, err := st.d.boot(ctx, boots, 1)
	if err != nil {
		return DeviceStatus{}, fmt.Errorf("after %s: %w", what, err)
	}
	if st.rel.File == "" && st.rel.Kind == vboard.Broken && !l.has(panicRE) {
		return DeviceStatus{}, errors.New("the broken image did not panic")
	}
	return st.rolledBack(ctx, before, slot)
}

// rolledBack checks that the board is back on slot running what it ran
// before, and reports the failed release as rolled back.
func (st *step) rolledBack(ctx context.Context, before DeviceStatus, slot string) (DeviceStatus, error) {
	s, err := st.d.settle(ctx)
	if err != nil {
		return s, err
	}
	switch {
	case slot != "" && st.d.slot != slot:
		return s, fmt.Errorf("the board boots slot %s, want its old slot %s", st.d.slot, slot)
	case s.Installed != before.Installed:
		return s, fmt.Errorf("the device reports %s installed, want %s still", s.Installed.Version, before.Installed.Version)
	case s.Last == nil || s.Last.State != update.RolledBack || s.Last.Release.Version != st.rel.Version:
		return s, fmt.Errorf("the device's last result is %s, want %s rolled_back", outcome(s.Last), st.rel.Version)
	case !s.Confirmed:
		return s, errors.New("the device does not report its running release confirmed")
	}
	return s, nil
}

// powerCutWrite cuts the power when the board's download reaches a random
// byte of the image (seeded), which is about where the agent writes the
// slot, then expects the board to boot and finish the update cleanly:
// installed, or failed with the old release running.
func (st *step) powerCutWrite(ctx context.Context) (DeviceStatus, error) {
	before, _, err := st.before(ctx)
	if err != nil {
		return before, err
	}
	b, err := st.bundles.get(ctx, st.rel, true)
	if err != nil {
		return DeviceStatus{}, err
	}
	rng := rand.New(rand.NewPCG(st.seed, 0x9e3779b97f4a7c15))
	at := b.imagesAt + rng.Int64N(b.size-b.imagesAt)
	cutErr := make(chan error, 1)
	fired, disarm := st.bundles.armCut(st.d.b.Name, b, at, func() { cutErr <- st.d.power.Off(ctx) })
	defer disarm()
	if err := st.d.stopDaemon(ctx); err != nil {
		return DeviceStatus{}, err
	}
	// Typed without waiting for its end, which the power cut comes before.
	if err := st.d.con.Send(st.installCommand(b)); err != nil {
		return DeviceStatus{}, err
	}
	select {
	case <-fired:
		disarm() // the agent downloads again after the power-on
	case <-ctx.Done():
		return DeviceStatus{}, fmt.Errorf("the download never reached byte %d of %d: %w", at, b.size, ctx.Err())
	}
	if err := <-cutErr; err != nil {
		return DeviceStatus{}, fmt.Errorf("power cut at byte %d: %w", at, err)
	}
	if err := sleep(ctx, st.d.b.Power.OffTime); err != nil {
		return DeviceStatus{}, err
	}
	st.d.con.Discard()
	if err := st.d.power.On(ctx); err != nil {
		return DeviceStatus{}, err
	}
	if _, err := st.d.boot(ctx, 1, 0); err != nil {
		return DeviceStatus{}, fmt.Errorf("after a power cut at byte %d: %w", at, err)
	}
	s, err := st.d.settle(ctx)
	if err != nil {
		return s, fmt.Errorf("after a power cut at byte %d: %w", at, err)
	}
	if s.Installed.Version == st.rel.Version && s.Installed.Counter == st.rel.Counter {
		if err := st.running(s, st.rel); err != nil {
			return s, fmt.Errorf("after a power cut at byte %d: %w", at, err)
		}
		return s, nil
	}
	switch {
	case s.Installed != before.Installed:
		return s, fmt.Errorf("after a power cut at byte %d the device reports %s installed, neither the old %s nor the new %s",
			at, s.Installed.Version, before.Installed.Version, st.rel.Version)
	case s.Last == nil || s.Last.State == update.Succeeded || s.Last.Release.Version != st.rel.Version:
		return s, fmt.Errorf("after a power cut at byte %d the device runs the old release but reports %s, want a failed %s", at, outcome(s.Last), st.rel.Version)
	case !s.Confirmed:
		return s, fmt.Errorf("after a power cut at byte %d the device does not report its release confirmed", at)
	}
	return s, nil
}

// startingKernel is U-Boot's last line before the kernel runs.
var startingKernel = regexp.MustCompile(`Starting kernel`)

// powerCutFirstBoot cuts the power as the new slot's kernel starts, then
// expects the bootloader to count that boot and fall back to the old slot,
// and the agent to report the rollback.
func (st *step) powerCutFirstBoot(ctx context.Context) (DeviceStatus, error) {
	before, slot, err := st.before(ctx)
	if err != nil {
		return before, err
	}
	if err := st.install(ctx); err != nil {
		return DeviceStatus{}, err
	}
	if _, err := st.d.con.Expect(ctx, st.d.b.BootTimeout, startingKernel); err != nil {
		return DeviceStatus{}, fmt.Errorf("first boot of the new slot: %w", err)
	}
	if err := st.d.powerCycle(ctx); err != nil {
		return DeviceStatus{}, err
	}
	if _, err := st.d.boot(ctx, 1, 0); err != nil {
		return DeviceStatus{}, fmt.Errorf("after a power cut in the first boot: %w", err)
	}
	return st.rolledBack(ctx, before, slot)
}
