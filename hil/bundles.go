package hil

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/hil/vboard"
)

// signers holds the keys that sign the run's bundles: the rig's targets
// key, and a key no board trusts, for the bad-signature scenario.
type signers struct {
	trusted, untrusted *keys.Signer
	// root is the root.json the boards pin.
	root string
}

// loadSigners loads the rig's trust or, with none, makes throwaway keys and
// a root in dir for the virtual boards the runner starts.
func loadSigners(ctx context.Context, t *Trust, dir string) (*signers, error) {
	s := &signers{}
	var err error
	if s.untrusted, err = newSigner(ctx, dir, "untrusted"); err != nil {
		return nil, err
	}
	if t != nil {
		if s.trusted, err = keys.LoadSigner(ctx, t.Key, nil); err != nil {
			return nil, fmt.Errorf("trust.key: %w", err)
		}
		s.root = t.Root
		return s, nil
	}
	// A throwaway root: one key per role, valid for the day.
	roles := map[string]*keys.Signer{}
	for _, role := range []string{trust.RoleRoot, trust.RoleTargets, trust.RoleSnapshot, trust.RoleTimestamp} {
		if roles[role], err = newSigner(ctx, dir, role); err != nil {
			return nil, err
		}
	}
	spec := trust.RootSpec{Expires: time.Now().Add(24 * time.Hour), Roles: map[string]trust.RoleKeys{}}
	for role, k := range roles {
		spec.Roles[role] = trust.RoleKeys{Keys: []crypto.PublicKey{k.Public}, Threshold: 1}
	}
	root, err := trust.NewRoot(spec, roles[trust.RoleRoot])
	if err != nil {
		return nil, fmt.Errorf("throwaway trust root: %w", err)
	}
	s.root = filepath.Join(dir, "root.json")
	if err := os.WriteFile(s.root, root, 0o644); err != nil {
		return nil, fmt.Errorf("throwaway trust root: %w", err)
	}
	s.trusted = roles[trust.RoleTargets]
	return s, nil
}

func newSigner(ctx context.Context, dir, name string) (*keys.Signer, error) {
	p, err := keys.Generate(keys.Ed25519, nil)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", name, err)
	}
	priv, _, err := p.WriteFiles(dir, name)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", name, err)
	}
	return keys.LoadSigner(ctx, priv, nil)
}

// A built bundle is a signed bundle file and where its images lie in it.
type built struct {
	name     string // file name under the server's directory
	manifest *bundle.Manifest
	size     int64
	// imagesAt is the offset of the first image byte: a power cut "during
	// the write" is placed in [imagesAt, size).
	imagesAt int64
}

// bundles makes the plan's bundles on first use, and serves them over
// HTTP to the boards, with a power cut at an armed byte.
type bundles struct {
	dir         string
	signers     *signers
	deviceTypes []string

	mu    sync.Mutex
	made  map[string]*built
	cuts  map[string]*cutPoint // by board name
	srv   *http.Server
	ln    net.Listener
	serve chan error
}

func newBundles(dir string, s *signers, deviceTypes []string) *bundles {
	slices.Sort(deviceTypes)
	return &bundles{dir: dir, signers: s, deviceTypes: slices.Compact(deviceTypes), made: map[string]*built{}, cuts: map[string]*cutPoint{}}
}

// get returns the bundle of r, signed by a trusted key or by one that no
// board trusts.
func (bs *bundles) get(ctx context.Context, r Release, trusted bool) (*built, error) {
	name := r.Version + ".gfb"
	signer := bs.signers.trusted
	if !trusted {
		name, signer = r.Version+"-untrusted.gfb", bs.signers.untrusted
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.made[name]; b != nil {
		return b, nil
	}
	img := r.File
	if img == "" {
		img = filepath.Join(bs.dir, r.Version+".img")
		if err := writeImageFile(img, r); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(bs.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", r.Version, err)
	}
	rel := bundle.Release{Product: "gitfleet-hil", Version: r.Version, Counter: r.Counter, DeviceTypes: bs.deviceTypes,
		ChunkSize: 64 << 10}
	m, err := bundle.Create(ctx, f, rel, []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: img}}, trust.Sealer{signer}, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", r.Version, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", r.Version, err)
	}
	b := &built{name: name, manifest: m, size: st.Size(), imagesAt: st.Size() - m.PayloadSize()}
	bs.made[name] = b
	return b, nil
}

func writeImageFile(path string, r Release) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("image %s: %w", r.Version, err)
	}
	err = vboard.WriteImage(f, r.Kind, r.Version, r.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", r.Version, err)
	}
	return nil
}

// start serves the bundles on addr until stop.
func (bs *bundles) start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	bs.ln = ln
	bs.srv = &http.Server{Handler: http.HandlerFunc(bs.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	bs.serve = make(chan error, 1)
	go func() { bs.serve <- bs.srv.Serve(ln) }()
	return nil
}

func (bs *bundles) stop() error {
	if bs.srv == nil {
		return nil
	}
	bs.srv.Close()
	if err := <-bs.serve; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// url returns the address a board that reaches the server at base
// downloads b from. The board's name in the path lets a power cut be armed
// for its downloads alone.
func (bs *bundles) url(base, board string, b *built) string {
	if base == "" {
		host, port, _ := net.SplitHostPort(bs.ln.Addr().String())
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	return strings.TrimRight(base, "/") + "/" + board + "/" + b.name
}

// A cutPoint cuts a board's power when its download of a bundle reaches
// byte at.
type cutPoint struct {
	file  string
	at    int64
	cut   func()
	once  sync.Once
	fired chan struct{}
}

// armCut makes the board's next download of b stop at byte at, where cut
// is called (it cuts the power). The channel is closed once it is.
func (bs *bundles) armCut(board string, b *built, at int64, cut func()) (fired <-chan struct{}, disarm func()) {
	c := &cutPoint{file: b.name, at: at, cut: cut, fired: make(chan struct{})}
	bs.mu.Lock()
	bs.cuts[board] = c
	bs.mu.Unlock()
	return c.fired, func() {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		if bs.cuts[board] == c {
			delete(bs.cuts, board)
		}
	}
}

func (bs *bundles) serveHTTP(w http.ResponseWriter, r *http.Request) {
	board, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	bs.mu.Lock()
	_, known := bs.made[name]
	c := bs.cuts[board]
	bs.mu.Unlock()
	if !ok || !known || r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(bs.dir, name))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	var content io.ReadSeeker = f
	if c != nil && c.file == name {
		content = &cuttingReader{f: f, c: c, flush: func() { http.NewResponseController(w).Flush() }}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, time.Time{}, content)
}

// cuttingReader reads a bundle file up to the cut point, then flushes what
// was sent, cuts the power and fails the response.
type cuttingReader struct {
	f     *os.File
	c     *cutPoint
	pos   int64
	flush func()
}

var errCut = errors.New("power cut")

func (r *cuttingReader) Read(p []byte) (int, error) {
	if r.pos >= r.c.at {
		r.flush()
		r.c.once.Do(func() {
			r.c.cut()
			close(r.c.fired)
		})
		return 0, errCut
	}
	if left := r.c.at - r.pos; left > 0 && left < int64(len(p)) {
		p = p[:left]
	}
	n, err := r.f.Read(p)
	r.pos += int64(n)
	return n, err
}

func (r *cuttingReader) Seek(off int64, whence int) (int64, error) {
	n, err := r.f.Seek(off, whence)
	r.pos = n
	return n, err
}
