package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/bus"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture Go runs on.
const userHZ = 100

// A ProcSample is a process's CPU time and memory at one instant, read
// from /proc.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system
	RSS int64         // resident bytes now
	HWM int64         // peak resident bytes since the process started
}

// ReadProc samples process pid.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis, where field 3 (state) begins.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: cpu times %q %q", pid, f[11], f[12])
	}
	s.CPU = time.Duration(utime+stime) * time.Second / userHZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.Lines(string(status)) {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return s, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			s.RSS = kb << 10
		} else {
			s.HWM = kb << 10
		}
	}
	return s, nil
}

// Usage is a process's use of the machine over a span of time.
type Usage struct {
	// CPU is the CPU time used over the span, in cores (1 = one core busy
	// all the time).
	CPU float64 `json:"cpu_cores"`
	// RSSPeak is the largest resident size sampled in the span; RSSEnd the
	// last, in MiB.
	RSSPeak float64 `json:"rss_peak_mib"`
	RSSEnd  float64 `json:"rss_end_mib"`
}

// A Watch samples a process every second until its context ends.
type Watch struct {
	pid     int
	mu      sync.Mutex
	samples []ProcSample
}

// WatchProc starts sampling pid; it stops when ctx ends.
func WatchProc(ctx context.Context, pid int) (*Watch, error) {
	w := &Watch{pid: pid}
	if err := w.sample(); err != nil {
		return nil, err
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w, nil
}

func (w *Watch) sample() error {
	s, err := ReadProc(w.pid)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.samples = append(w.samples, s)
	w.mu.Unlock()
	return nil
}

// Since returns the usage from from until now, sampling once more now.
func (w *Watch) Since(from time.Time) Usage {
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	var u Usage
	var first, last *ProcSample
	for i := range w.samples {
		s := &w.samples[i]
		if s.At.Before(from) {
			first = s // the last sample before the span: its start
			continue
		}
		if first == nil {
			first = s
		}
		last = s
		u.RSSPeak = max(u.RSSPeak, mib(s.RSS))
	}
	if first != nil && last != nil && last.At.After(first.At) {
		u.CPU = (last.CPU - first.CPU).Seconds() / last.At.Sub(first.At).Seconds()
		u.RSSEnd = mib(last.RSS)
	}
	return u
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// A Prober measures the fleet status API's latency under load: it asks for
// a channel's status and a page of 100 devices in turn, at a steady pace,
// as a dashboard would. The two are kept apart: a channel's status is the
// rollout controller's last evaluation, a page of devices a database read.
type Prober struct {
	api     *apiclient.Client
	channel string
	mu      sync.Mutex
	probes  [2]probes // channel, devices
}

type probes struct {
	lat      []time.Duration
	errors   int
	firstErr string
}

// NewProber returns a prober of api for channel.
func NewProber(api *apiclient.Client, channel string) *Prober {
	return &Prober{api: api, channel: channel}
}

// Run probes every interval until ctx ends.
func (p *Prober) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i = 1 - i {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		var err error
		if i == 0 {
			_, err = p.api.Channel(ctx, p.channel)
		} else {
			_, err = p.api.Devices(ctx, apiclient.DeviceQuery{Channel: p.channel, Limit: 100})
		}
		if ctx.Err() != nil {
			return
		}
		if e, ok := errors.AsType[*apiclient.Error](err); ok && e.Status == http.StatusNotFound {
			// The channel does not exist until its first release.
			continue
		}
		p.mu.Lock()
		pr := &p.probes[i]
		if err != nil {
			pr.errors++
			if pr.firstErr == "" {
				pr.firstErr = err.Error()
			}
		} else {
			pr.lat = append(pr.lat, time.Since(start))
		}
		p.mu.Unlock()
	}
}

// Latency is the API's latency over the probes of one request so far, in
// milliseconds.
type Latency struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	// FirstError is the first failed request's error.
	FirstError string `json:"first_error,omitempty"`
}

// Latencies are the API's latencies by request.
type Latencies struct {
	// Channel is GET /channels/{name}, Devices GET /devices?channel=…&limit=100.
	Channel Latency `json:"channel"`
	Devices Latency `json:"devices"`
}

// Latency returns the latencies of the probes so far.
func (p *Prober) Latency() Latencies {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Latencies{Channel: p.probes[0].latency(), Devices: p.probes[1].latency()}
}

func (pr *probes) latency() Latency {
	l := Latency{Requests: len(pr.lat), Errors: pr.errors, FirstError: pr.firstErr}
	if len(pr.lat) == 0 {
		return l
	}
	lat := slices.Clone(pr.lat)
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
	}
	l.P50, l.P99, l.Max = ms(0.50), ms(0.99), ms(1)
	return l
}

// A Broker follows what a broker says of itself on $SYS: Mosquitto's count
// of connected clients (publish every sys_interval seconds).
type Broker struct {
	client    *bus.Paho
	connected atomic.Int64
}

// WatchBroker subscribes to broker's client count as user.
func WatchBroker(ctx context.Context, broker, user, password string, log *slog.Logger) (*Broker, error) {
	c, err := bus.DialPaho(ctx, bus.PahoConfig{Broker: broker, ClientID: fmt.Sprintf("gitfleet-sim-sys-%d", os.Getpid()),
		Username: user, Password: password}, log)
	if err != nil {
		return nil, fmt.Errorf("broker $SYS: %w", err)
	}
	b := &Broker{client: c}
	b.connected.Store(-1)
	err = c.Subscribe(ctx, "$SYS/broker/clients/connected", func(m bus.Message) {
		m.Ack()
		if n, err := strconv.ParseInt(strings.TrimSpace(string(m.Payload)), 10, 64); err == nil {
			b.connected.Store(n)
		}
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("broker $SYS: %w", err)
	}
	return b, nil
}

// Connected returns the broker's last count of connected clients, or -1
// before the first.
func (b *Broker) Connected() int64 { return b.connected.Load() }

// Close disconnects.
func (b *Broker) Close() { b.client.Close() }
