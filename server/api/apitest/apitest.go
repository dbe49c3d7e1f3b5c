// Package apitest runs a real API server for tests: the real store (a SQLite
// file in the test's temporary directory, or any database a DSN names) with a
// seeded fleet, an httptest server in front of it, tokens of every scope, a
// Controller that records its commands in the store, a Reporter that runs the
// real rollout engine on the store's devices, and a Promoter and Trigger that
// record their calls. The API's own tests and the gitfleet CLI's
// use it.
package apitest

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitfleet/gitfleet/server/api"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// The secrets of the tokens a Server accepts, named after their scopes.
const (
	// ReadToken has scope read.
	ReadToken = "read-secret"
	// ReleaseToken has scopes read and release.
	ReleaseToken = "release-secret"
	// AdminToken has scopes read and admin.
	AdminToken = "admin-secret"
	// PromoteOnlyToken has scope release only: it cannot read.
	PromoteOnlyToken = "promote-only-secret"
)

// WebhookSecret is the secret a Server checks webhook signatures with.
const WebhookSecret = "webhook-secret"

// Epoch is the time the seeded fleet reported at.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Server is a running API server and what stands behind it.
type Server struct {
	// URL is the server's base URL, "http://127.0.0.1:PORT".
	URL   string
	Store *store.Store
	API   *api.Server
	// Devices are the seeded devices, in id order.
	Devices    []store.Device
	Promoter   *Promoter
	Trigger    *Trigger
	Controller *Controller
	Reporter   *Reporter
	Registry   *prometheus.Registry
	// Log holds the server's log, in slog's text format.
	Log *SyncBuffer
}

// Options change what New starts.
type Options struct {
	// DSN is the database; empty means a SQLite file in t.TempDir().
	DSN string
	// Devices is how many devices to seed; 0 means 300.
	Devices int
	// Ready are the server's readiness checks; nil means one, "store",
	// that lists the channels.
	Ready map[string]api.Checker
}

// New opens the store, seeds it and starts an API server, all closed when
// the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	ctx := context.Background()
	dsn := o.DSN
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "fleet.db")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := o.Devices
	if n == 0 {
		n = 300
	}
	s := &Server{
		Store:      st,
		Devices:    Fleet(n),
		Promoter:   &Promoter{},
		Trigger:    &Trigger{},
		Controller: &Controller{Store: st},
		Reporter:   &Reporter{Store: st},
		Registry:   prometheus.NewRegistry(),
		Log:        &SyncBuffer{},
	}
	Seed(t, st, s.Devices)
	ready := o.Ready
	if ready == nil {
		ready = map[string]api.Checker{"store": api.CheckFunc(func(ctx context.Context) error {
			_, err := st.Channels(ctx)
			return err
		})}
	}
	s.API, err = api.New(api.Config{
		Store: st,
		Tokens: api.NewTokens(
			api.NewToken("reader", ReadToken, api.ScopeRead),
			api.NewToken("releaser", ReleaseToken, api.ScopeRead, api.ScopeRelease),
			api.NewToken("operator", AdminToken, api.ScopeRead, api.ScopeAdmin),
			api.NewToken("promote-only", PromoteOnlyToken, api.ScopeRelease),
		),
		WebhookSecret: []byte(WebhookSecret),
		Controller:    s.Controller,
		Promoter:      s.Promoter,
		Trigger:       s.Trigger,
		Reporter:      s.Reporter,
		Ready:         ready,
		Registry:      s.Registry,
		Logger:        slog.New(slog.NewTextHandler(s.Log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.API)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Fleet returns n devices, "dev-00000" on, with a deterministic mix of
// channels, versions, states, health, confirmation and presence: every
// filter of the device list matches some of them and misses others. Every
// third device reports labels.
func Fleet(n int) []store.Device {
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(choices ...string) string { return choices[rng.IntN(len(choices))] }
	ds := make([]store.Device, n)
	for i := range ds {
		d := store.Device{
			ID:           fmt.Sprintf("dev-%05d", i),
			Fleet:        pick("acme", "acme", "acme", "globex"),
			DeviceType:   pick("rpi4", "imx8"),
			Channel:      pick("production", "production", "production", "staging", "canary"),
			AgentVersion: "0.9.0",
			BootID:       fmt.Sprintf("boot-%08x", rng.Uint32()),
			BootedSlot:   pick("a", "b"),
			Version:      pick("1.4.0", "1.4.0", "1.3.0", "1.5.0-rc.1"),
			UpdateState:  pick("idle", "idle", "idle", "idle", "downloading", "trial-boot", "failed"),
			HealthOK:     rng.IntN(10) > 0,
			HealthChecks: []store.HealthCheck{{Name: "network", OK: true}, {Name: "app", OK: true}},
			Online:       rng.IntN(10) > 1,
			StatusTime:   Epoch,
			LastSeen:     Epoch.Add(time.Duration(i) * time.Second),
		}
		d.ActiveSlot = d.BootedSlot
		d.Tag = "v" + d.Version
		d.Commit = Commit(d.Version)
		d.BundleDigest = Digest(d.Version)
		d.BootConfirmed = d.UpdateState != "trial-boot"
		if i%3 == 0 { // apart from the random choices, which stay as they were
			d.Labels = map[string]string{"ring": "canary", "site": fmt.Sprintf("plant-%d", i%2)}
		}
		if !d.HealthOK {
			d.HealthChecks[1] = store.HealthCheck{Name: "app", OK: false, Message: "app did not answer on :8080"}
		}
		switch d.UpdateState {
		case "downloading":
			d.TargetVersion, d.TargetBundleDigest = "1.5.0", Digest("1.5.0")
			d.DoneBytes, d.TotalBytes = rng.Int64N(1<<28), 1<<28
		case "failed":
			d.ErrorCode, d.ErrorMessage = "ERROR_CODE_HEALTH_CHECK_FAILED", "health check app failed after install"
		}
		ds[i] = d
	}
	return ds
}

// Commit returns the made-up commit id of the seeded release version.
func Commit(version string) string {
	return fmt.Sprintf("%x", sha1.Sum([]byte(version)))
}

// Digest returns the made-up bundle digest of the seeded release version.
func Digest(version string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(version)))
}

// Seed stores devices, four releases (1.3.0 and 1.4.0 built, v1.5.0-rc.1
// building, v1.4.1 failed), the channels canary, production and staging
// and 30 events of dev-00000.
func Seed(t testing.TB, st *store.Store, devices []store.Device) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.PutDevices(ctx, devices); err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.Release{
		built("1.3.0", 13), built("1.4.0", 14),
		{Tag: "v1.4.1", BuildState: store.Failed, BuildError: "recipe: make exited 2", BuildLog: "logs/v1.4.1.txt"},
		{Tag: "v1.5.0-rc.1"},
	} {
		if _, err := st.ClaimBuild(ctx, r.Tag, "apitest", time.Hour); err != nil {
			t.Fatal(err)
		}
		if r.BuildState == "" {
			continue // still building
		}
		if err := st.FinishBuild(ctx, "apitest", r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []store.Channel{
		{Name: "canary", Release: "1.4.0", Wave: 3, State: store.Active, Reason: "complete"},
		{Name: "production", Release: "1.4.0", Wave: 1, State: store.Active, Reason: "wave 1 started"},
		{Name: "staging", Release: "1.4.0", Wave: 0, State: store.Halted, Reason: "halted: 3 of 20 devices in wave 0 (15%) failed"},
	} {
		if err := st.PutChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	states := []string{"idle", "downloading", "writing", "trial-boot", "committed"}
	for i := range 30 {
		e := store.Event{
			DeviceID: "dev-00000", StreamID: "stream-1", Sequence: uint64(i + 1), BootID: "boot-1",
			FromState: states[i%len(states)], ToState: states[(i+1)%len(states)], Version: "1.4.0",
			Time: Epoch.Add(time.Duration(i) * time.Minute), Received: Epoch.Add(time.Duration(i)*time.Minute + time.Second),
		}
		if i == 17 {
			e.ErrorCode, e.ErrorMessage = "ERROR_CODE_DOWNLOAD_FAILED", "connection reset"
		}
		if _, err := st.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

func built(version string, counter int64) store.Release {
	return store.Release{
		Tag: "v" + version, Version: version, Counter: counter, Product: "acme-gw", DeviceTypes: []string{"rpi4", "imx8"},
		BundleDigest: Digest(version), BundleSize: 48 << 20, TagObject: fmt.Sprintf("%040x", counter),
		Commit: Commit(version), Signer: "SHA256:release-key", ObjectKeys: map[string]string{"bundle": "bundles/" + version + ".gfb"},
		BuildState: store.Succeeded,
	}
}

// Controller is an api.Controller that records commands as the rollout
// state in the store, refusing what the rollout engine refuses: a pause of
// a rollout that is not active, a resume of an active one, an abort of an
// aborted one.
type Controller struct {
	Store *store.Store
}

// Pause pauses channel's rollout.
func (c *Controller) Pause(ctx context.Context, channel, reason string) error {
	return c.set(ctx, channel, rollout.Pause, store.Paused, reason, store.Active)
}

// Resume resumes channel's rollout.
func (c *Controller) Resume(ctx context.Context, channel, reason string) error {
	return c.set(ctx, channel, rollout.Resume, store.Active, reason, store.Paused, store.Halted, store.Aborted)
}

// Abort aborts channel's rollout.
func (c *Controller) Abort(ctx context.Context, channel, reason string) error {
	return c.set(ctx, channel, rollout.Abort, store.Aborted, reason, store.Active, store.Paused, store.Halted)
}

func (c *Controller) set(ctx context.Context, channel string, e rollout.Event, to store.RolloutState, reason string, from ...store.RolloutState) error {
	ch, err := c.Store.Channel(ctx, channel)
	if err != nil {
		return err
	}
	ok := false
	for _, f := range from {
		ok = ok || ch.State == f
	}
	if !ok {
		return fmt.Errorf("%s a rollout that is %s: %w", e, ch.State, rollout.ErrTransition)
	}
	return c.Store.SetRolloutState(ctx, channel, to, reason)
}

// Reporter is an api.Reporter that evaluates a channel's rollout with the
// real rollout engine, on the channel's devices in the store, with waves of
// 10, 50 and 100 % and the rollout's state as the store has it.
type Reporter struct {
	Store *store.Store
}

// Report evaluates channel's rollout now.
func (r *Reporter) Report(ctx context.Context, channel string) (*rollout.Result, error) {
	ch, err := r.Store.Channel(ctx, channel)
	if err != nil {
		return nil, err
	}
	rel, err := r.Store.Release(ctx, ch.Release)
	if err != nil {
		return nil, err
	}
	var devices []rollout.Device
	q := store.DeviceQuery{DeviceFilter: store.DeviceFilter{Channel: channel}, Limit: store.MaxPage}
	for {
		p, err := r.Store.Devices(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, d := range p.Devices {
			devices = append(devices, rollout.Device{
				ID: d.ID, Online: d.Online, Version: d.Version, Digest: d.BundleDigest, Commit: d.Commit,
				Slot: d.BootedSlot, Confirmed: d.BootConfirmed, UpdateState: d.UpdateState, TargetDigest: d.TargetBundleDigest,
			})
		}
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	cur := rollout.Rollout{
		Digest: rel.BundleDigest, Version: rel.Version, Wave: ch.Wave, State: rollout.State(strings.ToLower(string(ch.State))),
		Since: ch.Updated, WaveStarted: ch.WaveStarted, Reason: ch.Reason,
	}
	return rollout.Evaluate(rollout.Channel{
		Fleet:   "acme",
		Name:    channel,
		Policy:  rollout.Policy{Waves: []float64{10, 50, 100}, MaxFailureRate: 0.5, MinConfirmed: 1},
		Release: rollout.Release{Version: rel.Version, Digest: rel.BundleDigest, Commit: rel.Commit},
	}, cur, devices, time.Now())
}

// Promoter is an api.Promoter that records promotions and answers with a
// made-up commit. As a real one would, it refuses a channel fleet.yaml does
// not have ("nowhere") and the release a channel runs already (1.4.0 to
// production).
type Promoter struct {
	mu    sync.Mutex
	calls []string
}

// Promote records "channel version".
func (p *Promoter) Promote(_ context.Context, channel, version string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if channel == "nowhere" {
		return "", fmt.Errorf("promote %s to %s: %w", version, channel, recipe.ErrUnknownChannel)
	}
	if channel == "production" && version == "1.4.0" {
		return "", fmt.Errorf("promote %s to %s: %w", version, channel, recipe.ErrUnchanged)
	}
	p.calls = append(p.calls, channel+" "+version)
	return fmt.Sprintf("%040x", len(p.calls)), nil
}

// Calls returns the promotions done, "channel version" each.
func (p *Promoter) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// Trigger is an api.Trigger that counts its calls.
type Trigger struct{ n atomic.Int64 }

// Trigger counts one call.
func (t *Trigger) Trigger() { t.n.Add(1) }

// Count returns how often Trigger was called.
func (t *Trigger) Count() int { return int(t.n.Load()) }

// SyncBuffer is a buffer safe for concurrent writes, for a server's log.
type SyncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

var _ io.Writer = (*SyncBuffer)(nil)

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns what was written.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
