package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// TestPowerCuts runs the real gitfleet-agent binary and cuts the power
// (SIGKILL, then a power-on through the bootloader) in every state of an
// update and at random byte offsets of the slot write. After each cut it
// powers the board on and resumes, until the update is over. Then: the
// board boots a group whose slot holds a complete image (the old or the
// new), the update ended in success or a clean reported failure, and the
// outbox delivers every event exactly once by sequence number.
func TestPowerCuts(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gitfleet-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	img := bundletest.Image(t, 600_000, 7)
	data, _ := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: img}}, tr.Targets...)
	bundlePath := filepath.Join(t.TempDir(), "b.gfb")
	os.WriteFile(bundlePath, data, 0o644)
	newImage, _ := os.ReadFile(img)
	broker := testenv.Mosquitto(t, "allow_anonymous true")

	type cut struct {
		name string
		env  string
	}
	var cuts []cut
	for _, s := range []update.State{update.Checking, update.Writing, update.Verifying, update.Arming, update.Rebooting,
		update.Testing, update.Committing, update.Succeeded, update.Idle} {
		cuts = append(cuts, cut{"in state " + string(s), "GITFLEET_FAULT_KILL_IN_STATE=" + string(s)})
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for range 6 {
		n := rng.Int64N(int64(len(newImage)))
		cuts = append(cuts, cut{fmt.Sprintf("at byte %d of the write", n), fmt.Sprintf("GITFLEET_FAULT_KILL_AT_BYTE=%d", n)})
	}
	for i, c := range cuts {
		t.Run(c.name, func(t *testing.T) {
			b := newBoard(t, tr)
			oldImage := bytes.Repeat([]byte("A"), 1<<20)
			agent := func(env string, args ...string) (string, error) {
				cmd := exec.Command(bin, append(args[:1:1], append([]string{"--config", b.config}, args[1:]...)...)...)
				cmd.Env = append(os.Environ(), env)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			killed := func(err error) bool {
				var ee *exec.ExitError
				return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
			}

			out, err := agent(c.env, "install", bundlePath)
			cutDone := killed(err)
			if strings.Contains(out, "panic:") || (err != nil && !cutDone) {
				t.Fatalf("install: %v\n%s", err, out)
			}
			// Power on and resume until the update is over. A power cut, or
			// a reboot the agent asked for, both go through the bootloader.
			for round := 0; ; round++ {
				if round > 10 {
					t.Fatal("the update did not end after 10 power-ons")
				}
				j, err := update.ReadJournal(filepath.Join(b.dir, "data", "journal.json"))
				if err != nil {
					t.Fatalf("journal after a cut: %v", err)
				}
				if j.State == update.Idle && round > 0 {
					break
				}
				b.powerOn(t)
				env := ""
				if !cutDone {
					env = c.env // the cut has not happened yet: keep it armed
				}
				out, err := agent(env, "resume")
				switch {
				case killed(err):
					cutDone = true
				case strings.Contains(out, "panic:"):
					t.Fatalf("resume panicked:\n%s", out)
				case err != nil && !strings.Contains(out, "gitfleet-agent: update"):
					// Only a cleanly reported failed update may exit non-zero.
					t.Fatalf("resume: %v\n%s", err, out)
				}
			}
			if !cutDone && i < 9 {
				t.Fatalf("the agent was never cut %s", c.name)
			}

			// The board boots a complete image.
			b.powerOn(t)
			cl, _ := os.ReadFile(b.cmdline)
			group := strings.TrimSpace(strings.SplitAfter(string(cl), "gitfleet.slot=")[1])
			slotBytes, _ := os.ReadFile(filepath.Join(b.dir, group+".img"))
			j, _ := update.ReadJournal(filepath.Join(b.dir, "data", "journal.json"))
			switch {
			case group == "B" && bytes.Equal(slotBytes[:len(newImage)], newImage) && j.Installed.Version == "1.4.0":
			case group == "A" && bytes.Equal(slotBytes, oldImage) && j.LastResult != nil && j.LastResult.State != update.Succeeded:
			default:
				t.Fatalf("board boots group %s; journal installed %q, last result %+v", group, j.Installed.Version, j.LastResult)
			}

			// Every event reaches the broker once by sequence, without gaps.
			events := linktest.Collect(t, broker, "", "", fmt.Sprintf("events-%d", i), "gitfleet/v1/acme/devices/board-1/events")
			events.WaitSubscribed(1)
			cfg, _ := LoadConfig(b.config)
			cfg.MQTT.Broker = "tcp://" + broker
			want := int(j.Seq)
			var got []*gitfleetv1.DeviceEvent
			runUntil(t, cfg, func() bool {
				got = got[:0]
				seen := map[uint64]bool{}
				for _, m := range events.Messages() {
					ev, err := gitfleetv1.DecodeDeviceEvent(m.Payload)
					if err != nil {
						t.Fatalf("event: %v", err)
					}
					if !seen[ev.GetSequence()] {
						seen[ev.GetSequence()] = true
						got = append(got, ev)
					}
				}
				return len(got) >= want
			})
			for k, ev := range got {
				if ev.GetSequence() != uint64(k+1) {
					t.Fatalf("event %d has sequence %d: gap or reorder", k, ev.GetSequence())
				}
			}
			if last := got[len(got)-1]; last.GetToState() != "idle" {
				t.Errorf("last event goes to %s, want idle", last.GetToState())
			}
		})
	}
}
