package link_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"

	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/outbox"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// This example wires the agent as `gitfleet-agent run` does: the outbox's
// sender publishes through the link, the link hands channel states that
// reach the device to the goroutine that owns the update engine, and the
// engine reports to the outbox. It is compiled, not run: it needs a broker,
// a trusted root and the device's slots.
func Example() {
	const fleet, device = "acme", "gw-0001"
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var root *trust.Root // trust.LoadRoot(pinned root, root updates...)
	timestamp, err := root.Verifier(trust.RoleTimestamp)
	if err != nil {
		log.Error("trust", "err", err)
		return
	}
	box, err := outbox.Open(outbox.Config{Dir: "/var/lib/gitfleet/outbox", Fleet: fleet, Device: device}, log)
	if err != nil {
		log.Error("outbox", "err", err)
		return
	}
	engine := &update.Engine{JournalPath: "/var/lib/gitfleet/journal.json", Reporter: box, Log: log /* slots, bootloader... */}
	if err := engine.Load(); err != nil {
		log.Error("journal", "err", err)
		return
	}

	// The handler runs on the link's goroutine: it only passes the latest
	// offer on, and the worker below, which owns the engine, decides.
	offers := make(chan link.State, 1)
	l, err := link.New(link.Config{
		Broker: "ssl://mqtt.example.com:8883", Fleet: fleet, Device: device, Channel: "production",
		CAFile: "/etc/gitfleet/ca.pem", CertFile: "/etc/gitfleet/device.pem", KeyFile: "/etc/gitfleet/device.key",
		Dir: "/var/lib/gitfleet/link",
	}, timestamp, link.Handlers{
		State: func(ctx context.Context, s link.State) {
			if s.Channel == nil || !link.Reaches(fleet, device, s.Channel) {
				return
			}
			select {
			case <-offers: // superseded
			default:
			}
			offers <- s
		},
	}, log)
	if err != nil {
		log.Error("link", "err", err)
		return
	}

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); l.Run(ctx) }()
	go func() { defer wg.Done(); box.Run(ctx, l) }()
	go func() {
		defer wg.Done()
		if err := engine.Resume(ctx); err != nil {
			log.Warn("resume", "err", err)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-offers:
				rel := s.Channel.GetRelease()
				if rel.GetBundleDigest() == engine.Journal().Installed.Digest {
					continue // already runs it
				}
				if err := engine.Install(ctx, rel.GetManifestUrl()); err != nil {
					log.Warn("install", "release", rel.GetVersion(), "err", err)
				}
			}
		}
	}()
	wg.Wait()
}
