package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/backoff"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/server/api"
	"github.com/gitfleet/gitfleet/server/builder"
	"github.com/gitfleet/gitfleet/server/controller"
	"github.com/gitfleet/gitfleet/server/gitsource"
	"github.com/gitfleet/gitfleet/server/objects"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// server holds the running parts.
type server struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	keys  *signing
	// objects is S3 or the local store: both keep bundles and hand devices
	// presigned URLs of them.
	objects interface {
		PutObject(ctx context.Context, key string, r io.Reader, size int64) error
		PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error)
	}
	repo    *gitsource.Repo
	watcher *gitsource.Watcher
	ctrl    *controller.Controller

	mu    sync.Mutex
	fleet *recipe.Fleet // the last fleet.yaml read from the main branch
}

func serve(ctx context.Context, cfg Config, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	s := &server{cfg: cfg, log: log}
	// HTTP listens from the start: /healthz answers while the rest starts.
	front := &api.Gate{}
	front.Starting("opening the database")
	stopHTTP, httpStopped, err := listenHTTP(cfg.HTTP.Listen, front)
	if err != nil {
		return err
	}
	defer stopHTTP()
	if s.store, err = store.Open(ctx, cfg.Database); err != nil {
		return err
	}
	defer s.store.Close()
	front.Starting("loading keys")
	if s.keys, err = loadKeys(ctx, cfg, log); err != nil {
		return err
	}
	mux := http.NewServeMux()
	front.Starting("opening object storage")
	if err := s.openObjects(ctx, mux); err != nil {
		return err
	}
	if cfg.Fleet == "" && cfg.Git.URL != "" {
		front.Starting("waiting for fleet.yaml's fleet name from the firmware repository (fleet is not set in server.yaml)")
	} else {
		front.Starting("reading the firmware repository")
	}
	if err := s.openGit(ctx); err != nil {
		return err
	}
	front.Starting("starting MQTT")
	mq, err := s.openMQTT(ctx)
	if err != nil {
		return err
	}
	s.ctrl = &controller.Controller{Fleet: s.currentFleet, Store: s.store, Advertise: mq.advertiser, Locate: s, Log: log}

	// /metrics serves the API's metrics, the Go runtime's and the process's,
	// and the ingest's counters.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ingestCollector{mq.ingest})
	apiCfg := api.Config{Store: s.store, Controller: commands{s.ctrl}, Reporter: reports{s.ctrl}, Logger: log, Registry: reg,
		Ready: map[string]api.Checker{"store": api.CheckFunc(func(ctx context.Context) error { _, err := s.store.Channels(ctx); return err })}}
	if s.repo != nil {
		apiCfg.Promoter = api.PromoterFunc(func(ctx context.Context, channel, version string) (string, error) {
			p, err := s.repo.Promote(ctx, channel, version)
			if err != nil {
				return "", err
			}
			s.watcher.Trigger()
			return p.Commit, nil
		})
		apiCfg.Trigger = s.watcher
		if cfg.Git.WebhookSecretFile != "" {
			if apiCfg.WebhookSecret, err = os.ReadFile(cfg.Git.WebhookSecretFile); err != nil {
				return fmt.Errorf("git.webhook_secret_file: %w", err)
			}
		}
	}
	if cfg.API.TokensFile != "" {
		if apiCfg.Tokens, err = api.LoadTokens(cfg.API.TokensFile); err != nil {
			return fmt.Errorf("api.tokens_file: %w", err)
		}
	} else if apiCfg.Tokens, err = s.demoTokens(); err != nil {
		return err
	}
	apiServer, err := api.New(apiCfg)
	if err != nil {
		return err
	}
	mux.Handle("/", apiServer)
	front.Open(mux)
	log.Info("serving", "api", cfg.HTTP.PublicURL+"/api/v1", "mqtt", mq.addr, "data", cfg.DataDir)

	g, ctx := errgroup.WithContext(ctx)
	for _, run := range mq.runs {
		g.Go(func() error { return run(ctx) })
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-httpStopped:
			return fmt.Errorf("http.listen %s: the server stopped serving", cfg.HTTP.Listen)
		}
	})
	if s.watcher != nil {
		g.Go(func() error { return s.watch(ctx) })
	}
	g.Go(func() error { s.rollouts(ctx, mq.changed); return nil })
	g.Go(func() error { return s.optimize(ctx, time.Hour) })
	err = g.Wait()
	stopHTTP() // before the store closes: requests in flight still use it
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// listenHTTP listens on addr and serves h until stop, which waits up to
// 5 s for requests in flight and may be called more than once; stopped is
// closed once serving ended, by stop or by a failure.
func listenHTTP(addr string, h http.Handler) (stop func(), stopped <-chan struct{}, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln) // returns at Shutdown, or when the listener fails
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			<-done
		})
	}
	return stop, done, nil
}

func (s *server) openObjects(ctx context.Context, mux *http.ServeMux) error {
	if s.cfg.Objects.S3.Endpoint != "" {
		s3, err := objects.NewS3(ctx, s.cfg.Objects.S3)
		if err != nil {
			return err
		}
		s.objects = s3
		return nil
	}
	secret, err := persistentSecret(filepath.Join(s.cfg.DataDir, "keys", "objects.secret"))
	if err != nil {
		return err
	}
	local, err := objects.NewLocal(objects.LocalConfig{Dir: filepath.Join(s.cfg.DataDir, "objects"), URL: s.cfg.HTTP.PublicURL + "/objects", Secret: secret, Log: s.log})
	if err != nil {
		return err
	}
	mux.Handle("/objects/", http.StripPrefix("/objects", local))
	s.objects = local
	return nil
}

func (s *server) openGit(ctx context.Context) error {
	g := s.cfg.Git
	if g.URL == "" {
		s.log.Warn("no git.url: no releases will be built; set it in server.yaml")
		return nil
	}
	var keys []byte
	if g.Signatures.Keys != "" {
		var err error
		if keys, err = os.ReadFile(g.Signatures.Keys); err != nil {
			return fmt.Errorf("git.signatures.keys: %w", err)
		}
	}
	policy, err := gitsource.ParsePolicy(g.Signatures.Method, keys)
	if err != nil {
		return fmt.Errorf("git.signatures: %w", err)
	}
	auth, err := gitAuth(s.cfg)
	if err != nil {
		return err
	}
	s.repo, err = gitsource.Open(gitsource.Config{URL: g.URL, Branch: g.Branch, Dir: filepath.Join(s.cfg.DataDir, "git"), Policy: policy, Auth: auth})
	if err != nil {
		return err
	}
	s.watcher = gitsource.NewWatcher(s.repo, g.Poll, g.Poll/5, s.log)
	if s.cfg.Fleet != "" {
		// The fleet's name is known: MQTT can start while the watcher
		// retries a failed fetch.
		if err := s.repo.Fetch(ctx); err != nil {
			s.log.Warn("first fetch of the firmware repository failed; the watcher retries", "url", g.URL, "err", err)
		} else {
			s.readFleet()
		}
		return nil
	}
	return s.awaitFleet(ctx)
}

// awaitFleet fetches the repository and reads fleet.yaml until it has the
// fleet's name, which the topics that MQTT subscribes to and advertises
// under carry. Without `fleet` in server.yaml there is no other source of it,
// and a guessed name would advertise to no device and ingest nothing, so
// the server does not start MQTT before it knows.
func (s *server) awaitFleet(ctx context.Context) error {
	retry := backoff.Policy{Base: time.Second, Max: max(s.cfg.Git.Poll, time.Second)}
	err := retry.Retry(ctx, func() error {
		err := s.repo.Fetch(ctx)
		if err == nil {
			var fl *recipe.Fleet
			if fl, _, err = s.repo.Fleet(); err == nil {
				s.mu.Lock()
				s.fleet = fl
				s.mu.Unlock()
				return nil
			}
		}
		if ctx.Err() == nil {
			s.log.Error("fleet unknown: `fleet` is not set in server.yaml and fleet.yaml could not be read from the firmware repository; retrying, MQTT waits for it (set `fleet` to start without the repository)",
				"url", s.cfg.Git.URL, "branch", s.repo.Branch(), "err", err)
		}
		return err
	})
	if ctx.Err() != nil {
		return fmt.Errorf("fleet: not set in server.yaml and never read from fleet.yaml of %s", s.cfg.Git.URL)
	}
	return err
}

// watch builds new tags and re-reads fleet.yaml at every poll (watchTags),
// and retries builds whose owner died (retryBuilds).
func (s *server) watch(ctx context.Context) error {
	statePath := filepath.Join(s.cfg.DataDir, "git-state.json")
	state, err := gitsource.LoadState(statePath)
	if err != nil {
		return err
	}
	b := &builder.Builder{Repo: s.repo, Store: s.store, Objects: s.objects, Signer: s.keys.targets, RepoURL: s.cfg.Git.URL,
		Owner: s.cfg.Replica, Log: s.log, WorkDir: filepath.Join(s.cfg.DataDir, "build")}
	if b.Verifier, err = s.keys.root.Verifier(trust.RoleTargets); err != nil {
		return err
	}
	os.MkdirAll(b.WorkDir, 0o700)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.retryBuilds(ctx, b, statePath, builder.DefaultLease/2) })
	g.Go(func() error { return s.watchTags(ctx, b, state, statePath) })
	return g.Wait()
}

// retryBuilds rebuilds, every interval, the tags whose build claim went
// stale: a replica, whatever its name, claimed them and died mid-build. The
// watcher reports a tag as new only once per replica, so without this a
// replica that saw the tag claimed by another would never look at it again.
// Only tags still where this replica first saw them are retried: a moved
// tag is an operator's to look at.
func (s *server) retryBuilds(ctx context.Context, b *builder.Builder, statePath string, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		state, err := gitsource.LoadState(statePath)
		if err != nil {
			s.log.Error("retry stale builds", "err", err)
			continue
		}
		tags, err := s.repo.Tags()
		if err != nil {
			s.log.Error("retry stale builds", "err", err)
			continue
		}
		var unmoved []gitsource.Tag
		for _, t := range tags {
			if seen, ok := state.Tags[t.Name]; ok && seen.Object == t.Object {
				unmoved = append(unmoved, t)
			}
		}
		rels, err := b.Retry(ctx, unmoved)
		if err != nil && ctx.Err() == nil {
			s.log.Error("retry stale builds", "err", err)
		}
		if len(rels) > 0 {
			if err := s.ctrl.Step(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("rollout step", "err", err)
			}
		}
	}
}

// watchTags builds new tags and re-reads fleet.yaml at every poll.
func (s *server) watchTags(ctx context.Context, b *builder.Builder, state gitsource.State, statePath string) error {
	return s.watcher.Run(ctx, state, func(ctx context.Context, ch gitsource.Changes, next gitsource.State) error {
		s.readFleet()
		for _, m := range ch.Moved {
			s.log.Error("a release tag moved: it is not rebuilt; an operator must look", "tag", m)
		}
		for _, d := range ch.Deleted {
			s.log.Warn("a release tag was deleted", "tag", d)
		}
		for _, t := range ch.New {
			if _, err := b.Build(ctx, t); err != nil && !errors.Is(err, builder.ErrNotClaimed) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.log.Error("build", "tag", t.Name, "err", err)
			}
		}
		if err := next.Save(statePath); err != nil {
			return err
		}
		return s.ctrl.Step(ctx)
	})
}

func (s *server) readFleet() {
	fl, _, err := s.repo.Fleet()
	if err != nil {
		s.log.Error("fleet.yaml", "err", err)
		return
	}
	s.mu.Lock()
	s.fleet = fl
	s.mu.Unlock()
}

func (s *server) currentFleet() (*recipe.Fleet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fleet == nil {
		return nil, errors.New("no fleet.yaml read yet")
	}
	return s.fleet, nil
}

// rollouts steps the rollouts every few seconds and whenever devices
// reported something (see pace).
func (s *server) rollouts(ctx context.Context, changed <-chan struct{}) {
	pace(ctx, changed, 5*time.Second, func(ctx context.Context) {
		if _, err := s.currentFleet(); err != nil {
			return
		}
		if err := s.ctrl.Step(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("rollout step", "err", err)
		}
	})
}

// pace calls step every interval and soon after each change, until ctx
// ends, but after a step that took d it lets at least max(1 s, 2d) pass
// before a change calls it again: a step reads every device of the fleet,
// and during a rollout devices report many times a second, so back to back
// steps took a third of a core of a 10,000-device fleet's server and
// raced the ingest for its database. Changes that come meanwhile are
// taken by one step when the rest is over.
func pace(ctx context.Context, changed <-chan struct{}, interval time.Duration, step func(context.Context)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var (
		until time.Time        // no change-driven step before
		rest  <-chan time.Time // a change waits for the rest to end
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-rest:
		case <-changed:
			if wait := time.Until(until); wait > 0 {
				if rest == nil {
					rest = time.After(wait)
				}
				continue
			}
		}
		rest = nil
		start := time.Now()
		step(ctx)
		until = time.Now().Add(max(time.Second, 2*time.Since(start)))
	}
}

// optimize refreshes the database's planner statistics every interval, as
// store.Optimize asks of a long-running server: on SQLite nothing else
// does, and a device list picks its index by them. A failure is logged and
// tried again at the next interval.
func (s *server) optimize(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := s.store.Optimize(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("database statistics", "err", err)
		}
	}
}

// presign returns a presigned URL of an object, valid for the store's
// default time.
func (s *server) presign(ctx context.Context, key string) (string, error) {
	u, err := s.objects.PresignGet(ctx, key, 0)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Locate says where devices fetch a release: presigned URLs of its
// envelope and images.
func (s *server) Locate(ctx context.Context, rel store.Release) (*gitfleetv1.Release, error) {
	loc := &gitfleetv1.Release{Version: rel.Version, Counter: uint64(rel.Counter), BundleDigest: rel.BundleDigest,
		Size: uint64(rel.BundleSize), Tag: rel.Tag, Commit: rel.Commit, DeviceTypes: rel.DeviceTypes}
	var err error
	if loc.ManifestUrl, err = s.presign(ctx, rel.ObjectKeys["envelope"]); err != nil {
		return nil, err
	}
	for what, key := range rel.ObjectKeys {
		name, ok := strings.CutPrefix(what, "image/")
		if !ok {
			continue
		}
		u, err := s.presign(ctx, key)
		if err != nil {
			return nil, err
		}
		loc.Images = append(loc.Images, &gitfleetv1.ImageLocation{Name: name, Url: u})
	}
	return loc, nil
}

// commands adapts the controller to the API's operator commands.
type commands struct{ c *controller.Controller }

func (x commands) Pause(ctx context.Context, ch, reason string) error {
	return x.c.Command(ctx, ch, rollout.Pause, reason)
}
func (x commands) Resume(ctx context.Context, ch, reason string) error {
	return x.c.Command(ctx, ch, rollout.Resume, reason)
}
func (x commands) Abort(ctx context.Context, ch, reason string) error {
	return x.c.Command(ctx, ch, rollout.Abort, reason)
}

// reports gives the API the controller's last evaluation of a channel.
type reports struct{ c *controller.Controller }

func (x reports) Report(_ context.Context, channel string) (*rollout.Result, error) {
	for _, st := range x.c.Statuses() {
		if st.Channel == channel {
			return st.Result, nil
		}
	}
	return nil, nil
}

// gitAuth reads the credentials git.auth names.
func gitAuth(cfg Config) (gitsource.Auth, error) {
	a := cfg.Git.Auth
	auth := gitsource.Auth{Username: a.Username, SSHUser: a.SSHUser, KnownHosts: a.KnownHosts}
	for _, f := range []struct {
		field, path string
		to          *[]byte
	}{
		{"git.auth.ca_file", a.CAFile, &auth.CABundle},
		{"git.auth.ssh_key_file", a.SSHKeyFile, &auth.SSHKey},
	} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return gitsource.Auth{}, fmt.Errorf("%s: %w", f.field, err)
		}
		*f.to = b
	}
	if a.PasswordFile != "" {
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			return gitsource.Auth{}, fmt.Errorf("git.auth.password_file: %w", err)
		}
		auth.Password = strings.TrimSpace(string(b))
		if auth.Username == "" {
			auth.Username = "gitfleet" // a token needs some user name
		}
	}
	auth.SSHKeyPassphrase = os.Getenv("GITFLEET_GIT_SSH_KEY_PASSPHRASE")
	return auth, nil
}
