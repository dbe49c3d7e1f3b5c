package update_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/agent/source"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

const slotSize = 256 << 10

type fixture struct {
	dev     *device
	reports *reports
	tr      *bundletest.Trust
	journal string
	health  health
	images  map[string][]byte
}

func newFixture(t *testing.T) *fixture {
	return &fixture{
		dev: newDevice(t, slotSize), reports: &reports{},
		tr:      bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)),
		journal: filepath.Join(t.TempDir(), "journal.json"),
		images:  map[string][]byte{},
	}
}

// engine returns a freshly loaded engine, as a restarted agent has.
func (f *fixture) engine(t *testing.T) *update.Engine {
	t.Helper()
	e := &update.Engine{
		JournalPath: f.journal,
		Verifier:    f.tr.Verifier(t),
		Open: func(_ context.Context, ref string) (update.Source, error) {
			return source.OpenFile(ref)
		},
		Slots: f.dev, Boot: f.dev, System: f.dev, Health: &f.health, Reporter: f.reports,
		Policy: update.Policy{DeviceType: "acme-gw-v2", CheckpointBytes: 3 * bundle.MinChunkSize},
	}
	if err := e.Load(); err != nil {
		t.Fatal(err)
	}
	return e
}

// bundleFile writes a bundle of a rootfs and a boot image and returns its
// path.
func (f *fixture) bundleFile(t *testing.T, rel bundle.Release, signers ...*keys.Signer) string {
	t.Helper()
	var files []bundle.ImageFile
	for i, name := range []string{"rootfs", "boot"} {
		path := bundletest.Image(t, []int64{200_000, 30_000}[i], uint64(rel.Counter)*10+uint64(i))
		files = append(files, bundle.ImageFile{Name: name, Slot: name, Path: path})
		f.images[name], _ = os.ReadFile(path)
	}
	if len(signers) == 0 {
		signers = f.tr.Targets
	}
	data, _ := bundletest.Bundle(t, rel, files, signers...)
	path := filepath.Join(t.TempDir(), "bundle.gfb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (f *fixture) slot(t *testing.T, group, class string) []byte {
	t.Helper()
	b, err := os.ReadFile(f.dev.path(group, class))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// written checks group holds the installed images.
func (f *fixture) written(t *testing.T, group string) {
	t.Helper()
	for name, img := range f.images {
		if got := f.slot(t, group, name)[:len(img)]; !bytes.Equal(got, img) {
			t.Fatalf("slot %s/%s does not hold image %s", group, name, name)
		}
	}
}

func TestUpdateCommits(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	before := f.slot(t, "A", "rootfs")

	e := f.engine(t)
	if err := e.Install(ctx, path); !errors.Is(err, update.ErrRebooting) {
		t.Fatalf("Install = %v, want ErrRebooting", err)
	}
	if got := e.Journal().State; got != update.Rebooting {
		t.Fatalf("state = %s, want rebooting", got)
	}
	if !bytes.Equal(f.slot(t, "A", "rootfs"), before) {
		t.Fatal("the running slot A was written")
	}
	f.written(t, "B")

	f.dev.powerOn()
	if err := f.engine(t).Resume(ctx); err != nil {
		t.Fatalf("Resume after reboot: %v", err)
	}
	j := f.engine(t).Journal()
	if j.State != update.Idle || j.Installed.Version != "1.4.0" || j.Installed.Counter != 14 || j.LastResult.State != update.Succeeded {
		t.Fatalf("journal after update = %+v", j)
	}
	if j.Installed.Tag != "v1.4.0" || !strings.HasPrefix(j.Installed.Digest, "sha256:") {
		t.Errorf("installed release lacks provenance: %+v", j.Installed)
	}
	if got := f.dev.bootState(); got != "default=B trial=" {
		t.Errorf("bootloader = %s, want default=B, no trial", got)
	}
	want := []update.State{update.Checking, update.Writing, update.Verifying, update.Arming, update.Rebooting,
		update.Testing, update.Committing, update.Succeeded, update.Idle}
	if diff := cmp.Diff(want, f.reports.check(t)); diff != "" {
		t.Errorf("reported states (-want +got):\n%s", diff)
	}
}

func TestRefusalsLeaveTheDeviceUntouched(t *testing.T) {
	other := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	cases := []struct {
		name   string
		make   func(t *testing.T, f *fixture) string
		code   string
		before update.State // the state whose failure it is
	}{
		{"untrusted key", func(t *testing.T, f *fixture) string {
			return f.bundleFile(t, bundletest.Release(), other.Targets...)
		}, "ERROR_CODE_UNTRUSTED_KEY", update.Checking},
		{"downgrade", func(t *testing.T, f *fixture) string {
			rel := bundletest.Release()
			rel.Counter = 3
			return f.bundleFile(t, rel)
		}, "ERROR_CODE_DOWNGRADE", update.Checking},
		{"wrong device type", func(t *testing.T, f *fixture) string {
			rel := bundletest.Release()
			rel.DeviceTypes = []string{"other-board"}
			return f.bundleFile(t, rel)
		}, "ERROR_CODE_INCOMPATIBLE_DEVICE", update.Checking},
		{"truncated", func(t *testing.T, f *fixture) string {
			p := f.bundleFile(t, bundletest.Release())
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-10], 0o644)
			return p
		}, "ERROR_CODE_TRUNCATED", update.Checking},
		{"corrupt chunk", func(t *testing.T, f *fixture) string {
			p := f.bundleFile(t, bundletest.Release())
			b, _ := os.ReadFile(p)
			b[len(b)-40_000] ^= 1
			os.WriteFile(p, b, 0o644)
			return p
		}, "ERROR_CODE_CORRUPT_CHUNK", update.Writing},
		{"flipped signature", func(t *testing.T, f *fixture) string {
			p := f.bundleFile(t, bundletest.Release())
			b, _ := os.ReadFile(p)
			i := bytes.Index(b, []byte(`"sig":"`)) + 12
			b[i] ^= 1
			os.WriteFile(p, b, 0o644)
			return p
		}, "ERROR_CODE_BAD_SIGNATURE", update.Checking},
		{"image larger than its slot", func(t *testing.T, f *fixture) string {
			path := bundletest.Image(t, slotSize+1, 9)
			data, _ := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, f.tr.Targets...)
			p := filepath.Join(t.TempDir(), "big.gfb")
			os.WriteFile(p, data, 0o644)
			return p
		}, "ERROR_CODE_NO_SPACE", update.Checking},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			f.engine(t) // creates the journal
			path := tc.make(t, f)
			writeInstalled(t, f, 10) // the device runs counter 10
			e := f.engine(t)
			activeBefore := f.slot(t, "A", "rootfs")
			bootBefore := f.dev.bootState()

			if err := e.Install(ctx, path); err != nil {
				t.Fatalf("Install = %v, want a clean failure", err)
			}
			j := e.Journal()
			if j.State != update.Idle || j.LastResult == nil || j.LastResult.State != update.Failed {
				t.Fatalf("journal = %+v, want idle after a failure", j)
			}
			if got := j.LastResult.Error.Code; got != tc.code {
				t.Errorf("code = %s, want %s (%s)", got, tc.code, j.LastResult.Error.Message)
			}
			if strings.Contains(j.LastResult.Error.Message, "\n") {
				t.Errorf("message is not one line: %q", j.LastResult.Error.Message)
			}
			if !bytes.Equal(f.slot(t, "A", "rootfs"), activeBefore) {
				t.Error("the active slot changed")
			}
			if got := f.dev.bootState(); got != bootBefore {
				t.Errorf("bootloader = %s, was %s", got, bootBefore)
			}
			states := f.reports.check(t)
			if i := slices.Index(states, update.Failed); i < 1 || states[i-1] != tc.before {
				t.Errorf("states %v: want the failure in %s", states, tc.before)
			}
		})
	}
}

// writeInstalled sets the installed release counter, as a device's factory
// journal would.
func writeInstalled(t *testing.T, f *fixture, counter uint64) {
	t.Helper()
	b, err := os.ReadFile(f.journal)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"installed": {}`), []byte(`"installed": {"version": "1.0.0", "counter": `+itoa(counter)+`}`), 1)
	if err := os.WriteFile(f.journal, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestHealthCheckFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	if err := f.engine(t).Install(ctx, path); !errors.Is(err, update.ErrRebooting) {
		t.Fatal(err)
	}
	f.dev.powerOn()
	f.health.err = errHealth
	if err := f.engine(t).Resume(ctx); !errors.Is(err, update.ErrRebooting) {
		t.Fatalf("Resume in the new slot = %v, want a reboot to roll back", err)
	}
	f.dev.powerOn()
	if got, _ := f.dev.Booted(); got != "A" {
		t.Fatalf("booted %s after rollback, want A", got)
	}
	if err := f.engine(t).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	j := f.engine(t).Journal()
	if j.State != update.Idle || j.LastResult.State != update.RolledBack || j.LastResult.Error.Code != "ERROR_CODE_HEALTH_CHECK_FAILED" {
		t.Fatalf("journal = %+v", j)
	}
	if j.Installed.Version != "" {
		t.Errorf("installed = %+v, want the old (empty) release", j.Installed)
	}
	want := []update.State{update.Checking, update.Writing, update.Verifying, update.Arming, update.Rebooting,
		update.Testing, update.RollingBack, update.RolledBack, update.Idle}
	if diff := cmp.Diff(want, f.reports.check(t)); diff != "" {
		t.Errorf("reported states (-want +got):\n%s", diff)
	}
}

func TestBrokenImageFallsBackByBootCount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	if err := f.engine(t).Install(ctx, path); !errors.Is(err, update.ErrRebooting) {
		t.Fatal(err)
	}
	f.dev.newBootsHang = true
	f.dev.powerOn() // the bootloader tries B bootlimit times, then boots A
	if err := f.engine(t).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	j := f.engine(t).Journal()
	if j.LastResult.State != update.RolledBack || j.LastResult.Error.Code != "ERROR_CODE_ROLLED_BACK" {
		t.Fatalf("last result = %+v", j.LastResult)
	}
}

// TestResumeAfterCrashDuringWrite stops the engine, as a power cut would,
// after every few KiB of the slot write, then restarts it from the journal,
// until the update completes; the slot must end up right and the reports
// must form one unbroken sequence.
func TestResumeAfterCrashDuringWrite(t *testing.T) {
	for _, cutEvery := range []int64{5_000, 17_000, 64_000} {
		t.Run(itoa(uint64(cutEvery/1000))+"k", func(t *testing.T) {
			f := newFixture(t)
			path := f.bundleFile(t, bundletest.Release())
			var crashes int
			install := true
			for {
				e := f.engine(t)
				ctx, cancel := context.WithCancel(context.Background())
				var written int64
				e.OnProgress(func(done, total int64) {
					if written == 0 {
						written = done
					}
					if done-written >= cutEvery {
						cancel() // the power cut
					}
				})
				var err error
				if install {
					err = e.Install(ctx, path)
					install = false
				} else {
					err = e.Resume(ctx)
				}
				cancel()
				if errors.Is(err, update.ErrRebooting) {
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("after %d crashes: %v", crashes, err)
				}
				crashes++
				if crashes > 100 {
					t.Fatal("no progress across crashes")
				}
			}
			if crashes < 2 {
				t.Fatalf("only %d crashes: the test did not cut the write", crashes)
			}
			f.written(t, "B")
			if j := f.engine(t).Journal(); j.State != update.Rebooting {
				t.Fatalf("state = %s, want rebooting", j.State)
			}
			f.reports.check(t)
		})
	}
}

func TestStepCounterBreaksACrashLoop(t *testing.T) {
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	if err := f.engine(t).Install(context.Background(), path); !errors.Is(err, update.ErrRebooting) {
		t.Fatal(err)
	}
	f.dev.powerOn()
	// The new release kills the agent during its health check, every boot:
	// once after the reboot, then on each of the 3 restarts allowed.
	for range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		f.health.err = nil
		e := f.engine(t)
		e.Health = crashingHealth{cancel}
		if err := e.Resume(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Resume = %v, want the crash", err)
		}
	}
	if err := f.engine(t).Resume(context.Background()); !errors.Is(err, update.ErrRebooting) {
		t.Fatalf("Resume after 4 crashes = %v, want a rollback reboot", err)
	}
	j := f.engine(t).Journal()
	if j.State != update.RollingBack || j.Update.Error.Code != "ERROR_CODE_REBOOT_LOOP" {
		t.Fatalf("journal = %+v", j)
	}
}

type crashingHealth struct{ cancel context.CancelFunc }

func (c crashingHealth) Check(ctx context.Context) error {
	c.cancel()
	return ctx.Err()
}

func TestBusy(t *testing.T) {
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	e := f.engine(t)
	if err := e.Install(context.Background(), path); !errors.Is(err, update.ErrRebooting) {
		t.Fatal(err)
	}
	if err := e.Install(context.Background(), path); !errors.Is(err, update.ErrBusy) {
		t.Fatalf("second Install = %v, want ErrBusy", err)
	}
}

func TestManualConfirmation(t *testing.T) {
	for _, healthy := range []bool{true, false} {
		t.Run(strconv.FormatBool(healthy), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			path := f.bundleFile(t, bundletest.Release())
			e := f.engine(t)
			e.Health = nil
			if err := e.Confirm(ctx, true, ""); !errors.Is(err, update.ErrNothingToConfirm) {
				t.Fatalf("Confirm while idle = %v, want ErrNothingToConfirm", err)
			}
			if err := e.Install(ctx, path); !errors.Is(err, update.ErrRebooting) {
				t.Fatal(err)
			}
			f.dev.powerOn()
			e = f.engine(t)
			e.Health = nil
			if err := e.Resume(ctx); !errors.Is(err, update.ErrAwaitingConfirmation) {
				t.Fatalf("Resume = %v, want ErrAwaitingConfirmation", err)
			}
			err := f.engine(t).Confirm(ctx, healthy, "operator saw a blank screen")
			want := map[bool]update.State{true: update.Idle, false: update.RollingBack}[healthy]
			if got := f.engine(t).Journal().State; got != want {
				t.Fatalf("state after Confirm(%v) = %s (err %v), want %s", healthy, got, err, want)
			}
		})
	}
}

// fullOutbox refuses every report as an outbox past its disk budget does.
type fullOutbox struct{}

func (fullOutbox) Report(context.Context, update.Report) error {
	return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE, errors.New("outbox full"))
}

// TestFullOutboxDoesNotWedgeUpdates: a device offline for very long, whose
// outbox is full, still updates.
func TestFullOutboxDoesNotWedgeUpdates(t *testing.T) {
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	e := f.engine(t)
	e.Reporter = fullOutbox{}
	if err := e.Install(context.Background(), path); !errors.Is(err, update.ErrRebooting) {
		t.Fatalf("Install with a full outbox = %v, want it to reach the reboot", err)
	}
	// After the reboot, Resume sends the last report again: still full.
	f.dev.powerOn()
	e = f.engine(t)
	e.Reporter = fullOutbox{}
	if err := e.Resume(context.Background()); err != nil {
		t.Fatalf("Resume with a full outbox = %v", err)
	}
	if got := e.Journal().State; got != update.Idle {
		t.Errorf("state after resume = %s, want idle (committed)", got)
	}
}

// TestReadBackFindsAChangedSlot changes one byte of the written slot just
// before the read-back: in the process that wrote it (checked against the
// fingerprints taken while writing) and after a restart (checked against
// the manifest's digests). Either way the update fails cleanly and the
// device stays on its old slot.
func TestReadBackFindsAChangedSlot(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "same process", true: "after a restart"}[restart], func(t *testing.T) {
			f := newFixture(t)
			path := f.bundleFile(t, bundletest.Release())
			activeBefore := f.slot(t, "A", "rootfs")
			bootBefore := f.dev.bootState()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()

			e := f.engine(t)
			e.OnTransition(func(j update.Journal) {
				if j.State != update.Verifying {
					return
				}
				p := f.dev.path("B", "rootfs")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Error(err)
					return
				}
				b[150_000] ^= 0x10
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Error(err)
				}
				if restart {
					stop() // the agent stops in verifying
				}
			})
			err := e.Install(ctx, path)
			if restart {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Install = %v, want it stopped in verifying", err)
				}
				e = f.engine(t)
				err = e.Resume(context.Background())
			}
			if err != nil {
				t.Fatalf("got %v, want a clean failure", err)
			}
			j := e.Journal()
			if j.LastResult == nil || j.LastResult.State != update.Failed || j.LastResult.Error.Code != "ERROR_CODE_CORRUPT_CHUNK" {
				t.Fatalf("last result = %+v, want failed with ERROR_CODE_CORRUPT_CHUNK", j.LastResult)
			}
			// The changed byte is in chunk 36 of 4 KiB; each path says how
			// it found the change.
			want := map[bool]string{false: "reads back other bytes than were written", true: "SHA-256 does not match the manifest"}[restart]
			if msg := j.LastResult.Error.Message; !strings.Contains(msg, "read back image rootfs") || !strings.Contains(msg, "chunk 36 ") || !strings.Contains(msg, want) {
				t.Errorf("message %q does not name the image and chunk read back, or not %q", msg, want)
			}
			if !bytes.Equal(f.slot(t, "A", "rootfs"), activeBefore) {
				t.Error("the active slot changed")
			}
			if got := f.dev.bootState(); got != bootBefore {
				t.Errorf("bootloader = %s, was %s", got, bootBefore)
			}
		})
	}
}

// countingVerifier counts the envelopes it verifies.
type countingVerifier struct {
	bundle.Verifier
	n int
}

func (v *countingVerifier) Verify(ctx context.Context, payloadType string, envelope []byte) ([]byte, error) {
	v.n++
	return v.Verifier.Verify(ctx, payloadType, envelope)
}

// TestEnvelopeVerifiedOncePerRun: the actions of one run (checking,
// writing, verifying) verify the envelope once, not each; a source that
// serves other bytes to a later action is verified again and refused.
func TestEnvelopeVerifiedOncePerRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	v := &countingVerifier{Verifier: f.tr.Verifier(t)}
	e := f.engine(t)
	e.Verifier = v
	if err := e.Install(ctx, path); !errors.Is(err, update.ErrRebooting) {
		t.Fatalf("Install = %v, want ErrRebooting", err)
	}
	if v.n != 1 {
		t.Errorf("one run verified the envelope %d times, want 1", v.n)
	}

	// Another bundle, as validly signed, behind the same reference once
	// checking has passed.
	g := newFixture(t)
	g.tr = f.tr
	rel := bundletest.Release()
	rel.Version, rel.Counter = "1.5.0", rel.Counter+1
	other := g.bundleFile(t, rel)
	f2 := newFixture(t)
	f2.tr = f.tr
	first := f2.bundleFile(t, bundletest.Release())
	opens := 0
	e = f2.engine(t)
	e.Verifier = v
	e.Open = func(_ context.Context, ref string) (update.Source, error) {
		opens++
		if opens > 1 {
			return source.OpenFile(other)
		}
		return source.OpenFile(ref)
	}
	v.n = 0
	if err := e.Install(ctx, first); errors.Is(err, update.ErrRebooting) {
		t.Fatal("the bundle swapped after checking was installed")
	}
	if got := e.Journal().LastResult; got == nil || got.Error == nil || got.Error.Code != gitfleetv1.ErrorCode_ERROR_CODE_DIGEST_MISMATCH.String() {
		t.Fatalf("outcome %+v, want ERROR_CODE_DIGEST_MISMATCH", got)
	}
	if v.n != 2 {
		t.Errorf("verified %d envelopes, want 2 (the first, then the other bytes)", v.n)
	}
}

// TestCancelledStopsTheWrite: a cancel the states report (Engine.Cancelled)
// stops the update at the next chunk, before the bootloader is touched,
// whenever it came: also before the run began.
func TestCancelledStopsTheWrite(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	path := f.bundleFile(t, bundletest.Release())
	before, envBefore := f.slot(t, "A", "rootfs"), f.dev.bootState()
	e := f.engine(t)
	e.Cancelled = func() bool { return true }
	if err := e.Install(ctx, path); errors.Is(err, update.ErrRebooting) {
		t.Fatal("a cancelled update was installed")
	}
	j := e.Journal()
	if j.LastResult == nil || j.LastResult.Error == nil || j.LastResult.Error.Code != "ERROR_CODE_CANCELLED" {
		t.Fatalf("outcome %+v, want ERROR_CODE_CANCELLED", j.LastResult)
	}
	if !bytes.Equal(f.slot(t, "A", "rootfs"), before) || f.dev.bootState() != envBefore {
		t.Error("the cancelled update touched the running slot or the bootloader")
	}
}
