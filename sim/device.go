package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/follow"
	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/outbox"
	"github.com/gitfleet/gitfleet/agent/source"
	"github.com/gitfleet/gitfleet/agent/update"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// agentVersion is what simulated devices report as their agent's version.
const agentVersion = "gitfleet-sim"

// A device is one simulated device: the agent's real link (paho, signed
// state checks, accepted sequences on disk) and its real update engine
// (journal on disk, bundle and chunk verification) over a board in memory.
type device struct {
	id    string
	f     *Fleet
	board *board
	link  *link.Link
	eng   *update.Engine
	// states decides what the device installs, as for gitfleet-agent.
	states *follow.Follower
	// unhealthy makes every new release fail its health check once booted.
	unhealthy bool

	statusTopic, eventsTopic string

	now    atomic.Pointer[phase]
	status atomic.Pointer[gitfleetv1.DeviceStatus] // as last set on the link

	busy    atomic.Bool    // a worker runs (work)
	dirty   atomic.Bool    // a state came since the worker last decided
	workers sync.WaitGroup // the worker, for run to wait for
}

// A phase is where a device's engine is, for counting from other
// goroutines than the engine's.
type phase struct {
	state     update.State
	installed string // the committed version
	ended     string // the version the last update was of, whatever its outcome
}

func newDevice(f *Fleet, n int) (*device, error) {
	cfg := &f.cfg
	id := fmt.Sprintf("%s%06d", cfg.IDPrefix, n)
	d := &device{id: id, f: f, board: newBoard(cfg.SlotSize), unhealthy: fails(id, cfg.Fail)}
	var err error
	if d.statusTopic, err = topic.Status(cfg.Fleet, id); err != nil {
		return nil, err
	}
	if d.eventsTopic, err = topic.Events(cfg.Fleet, id); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.Dir, id)
	d.eng = &update.Engine{
		JournalPath: filepath.Join(dir, "journal.json"),
		Verifier:    f.targets,
		Open:        f.bundles.open,
		Slots:       d.board,
		Boot:        d.board,
		System:      d.board,
		Health:      d,
		Reporter:    d,
		Policy:      update.Policy{DeviceType: cfg.DeviceType},
	}
	d.link, err = link.New(link.Config{
		Broker: cfg.Brokers[n%len(cfg.Brokers)], Fleet: cfg.Fleet, Device: id, Channel: cfg.Channel,
		Dir: filepath.Join(dir, "link"), KeepAlive: cfg.KeepAlive, Heartbeat: cfg.Heartbeat,
		Reconnect: cfg.Reconnect,
	}, f.timestamp, link.Handlers{State: d.offer}, nil)
	if err != nil {
		return nil, err
	}
	if d.states, err = follow.Open(filepath.Join(dir, "follow.json"), follow.Device{Fleet: cfg.Fleet, ID: id, Type: cfg.DeviceType}); err != nil {
		return nil, err
	}
	d.eng.Cancelled = d.states.Cancels
	// The link makes the directory the journal lives in.
	if err := d.eng.Load(); err != nil {
		return nil, err
	}
	d.eng.OnTransition(d.transitioned)
	d.transitioned(d.eng.Journal())
	return d, nil
}

// fails decides, from the id alone, whether a device is in the failing
// fraction: the same devices fail in every run, independently of their wave.
func fails(id string, fraction float64) bool {
	h := fnv.New64a()
	h.Write([]byte("fail/" + id))
	return float64(h.Sum64()%1_000_000) < fraction*1_000_000
}

// run keeps the device's link up until ctx ends, and returns once its
// worker, if any, has stopped too.
func (d *device) run(ctx context.Context) error {
	err := d.link.Run(ctx) // its dispatch, which starts workers, has ended
	d.workers.Wait()
	return err
}

// offer is the link's State handler. Like gitfleet-agent's daemon, it
// keeps the state (agent/follow), which a running update asks whether to
// stop (Engine.Cancelled), and leaves the decision to the device's worker, which runs
// while the device has something to do: a goroutine per busy device, not
// per device. The link's dispatch goroutine never waits for an install, so
// a device waiting for its turn still takes in a newer state (a halt, say)
// and decides on that one.
func (d *device) offer(ctx context.Context, s link.State) {
	if err := d.states.Accept(s); err != nil {
		d.f.log.Warn("state", "device", d.id, "err", err)
	}
	d.dirty.Store(true)
	if d.busy.CompareAndSwap(false, true) {
		d.workers.Go(func() { d.work(ctx) })
	}
}

// work acts on the states held until they ask for nothing more, then ends.
func (d *device) work(ctx context.Context) {
	for {
		d.dirty.Store(false)
		d.act(ctx)
		d.busy.Store(false)
		// A state that came after act's last decision and found the
		// device busy: take it, unless another worker already has.
		if ctx.Err() != nil || !d.dirty.Load() || !d.busy.CompareAndSwap(false, true) {
			return
		}
	}
}

// act asks agent/follow whether the states ask for an install and runs it
// through its reboots to an outcome.
func (d *device) act(ctx context.Context) {
	if d.states.Peek(d.eng.Journal()).Install == nil {
		return // rollback orders (Step.Rollback) are not simulated
	}
	if !d.f.runs.acquire(ctx, false) {
		return
	}
	// Decide on the states held now: the wait for a turn can be long.
	next, err := d.states.Next(d.eng.Journal())
	if err != nil {
		d.f.log.Warn("state", "device", d.id, "err", err)
	}
	if next.Install == nil {
		d.f.runs.release()
		return
	}
	rel := next.Install
	d.f.log.Debug("installing", "device", d.id, "release", rel.GetVersion(), "why", next.Why)
	err = d.eng.InstallRelease(ctx, source.ReleaseRef(rel), rel.GetBundleDigest())
	d.f.runs.release()
	for err != nil && ctx.Err() == nil {
		if errors.Is(err, update.ErrRebooting) {
			if !sleep(ctx, d.f.cfg.BootTime) {
				return
			}
			d.board.powerOn()
		} else {
			// As the daemon does, resume a while later: the journal says
			// where (a report the broker did not acknowledge, say).
			d.f.engineErrors.Add(1)
			d.f.log.Warn("update engine; resuming in 5 s", "device", d.id, "err", err)
			if !sleep(ctx, 5*time.Second) {
				return
			}
		}
		if !d.f.runs.acquire(ctx, true) {
			return
		}
		err = d.eng.Resume(ctx)
		d.f.runs.release()
	}
}

// Check is the device's health check: the failing fraction fails it.
func (d *device) Check(context.Context) error {
	if d.unhealthy {
		return errors.New("simulated: the new release's service does not start")
	}
	return nil
}

// Report publishes the event of a transition at QoS 1 and returns once the
// broker acknowledged it. The agent records it in its on-disk outbox first;
// a simulated device is never cut from power, so it keeps nothing and spends
// no goroutine on an outbox sender.
func (d *device) Report(ctx context.Context, r update.Report) error {
	ev := outbox.Event(d.id, r)
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("event %d: %w", r.Seq, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return fmt.Errorf("event %d: %w", r.Seq, err)
	}
	if err := d.link.Publish(ctx, d.eventsTopic, b); err != nil {
		return err
	}
	d.f.events.Add(1)
	return nil
}

// transitioned records the engine's new state and publishes the status.
func (d *device) transitioned(j update.Journal) {
	p := &phase{state: j.State, installed: j.Installed.Version}
	if j.LastResult != nil {
		p.ended = j.LastResult.Release.Version
	}
	d.now.Store(p)
	st := d.statusOf(j)
	if err := d.link.SetStatus(st); err != nil {
		d.f.log.Error("status", "device", d.id, "err", err)
		return
	}
	d.status.Store(st)
}

// statusOf is the status gitfleet-agent's daemon publishes for journal j,
// with the board's boot id and slots.
func (d *device) statusOf(j update.Journal) *gitfleetv1.DeviceStatus {
	booted, active := d.board.slots()
	bootID, _ := d.board.BootID()
	st := j.Status()
	st.AgentVersion, st.DeviceType, st.Channel = agentVersion, d.f.cfg.DeviceType, d.f.cfg.Channel
	st.BootId, st.BootedSlot, st.ActiveSlot = bootID, booted, active
	if j.State == update.RollingBack || j.State == update.RolledBack {
		st.Health = &gitfleetv1.Health{Checks: []*gitfleetv1.HealthCheck{{Name: "service", Message: "simulated failure"}}}
	}
	return st
}

// publishStatus publishes the device's status again at QoS 1, not
// retained, with a health check named "load" whose message is note, and
// returns once the broker acknowledged it: the messages of a load test.
//
// With keep, the status with note also becomes the link's, so that the
// heartbeats that follow keep the note: a server keeps the latest status
// by the device's clock.
func (d *device) publishStatus(ctx context.Context, note string, keep bool) error {
	st := proto.Clone(d.status.Load()).(*gitfleetv1.DeviceStatus)
	if st.Health == nil {
		st.Health = &gitfleetv1.Health{Ok: true}
	}
	st.Health.Checks = append(st.Health.Checks, &gitfleetv1.HealthCheck{Name: "load", Ok: true, Message: note})
	if keep {
		if err := d.link.SetStatus(st); err != nil {
			return err
		}
	}
	st.DeviceId, st.ProtocolVersion, st.Online, st.Time = d.id, gitfleetv1.ProtocolVersion, true, timestamppb.Now()
	b, err := proto.Marshal(st)
	if err != nil {
		return err
	}
	return d.link.Publish(ctx, d.statusTopic, b)
}

// sleep waits for dt or until ctx ends, and reports whether dt passed.
func sleep(ctx context.Context, dt time.Duration) bool {
	if dt <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(dt)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
