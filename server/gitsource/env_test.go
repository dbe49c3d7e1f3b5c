package gitsource

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

// gitEnv is the environment of every git the tests run: no system or user
// configuration, a fixed identity, and no prompts.
func gitEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com",
		"GIT_TERMINAL_PROMPT=0",
	}
}

// A workspace is a bare "server" repository and a clone of it to commit,
// tag and push from, as a developer would.
type workspace struct {
	t    *testing.T
	git  string
	env  []string
	root string // holds the bare repositories a server exports
	bare string // root/fw.git
	work string
}

func newWorkspace(t *testing.T) *workspace {
	t.Helper()
	w := &workspace{t: t, git: testenv.Tool(t, "git"), env: gitEnv(t), root: t.TempDir(), work: t.TempDir()}
	w.bare = filepath.Join(w.root, "fw.git")
	w.run(w.root, "init", "-q", "--bare", "-b", "main", w.bare)
	w.run(w.bare, "config", "http.receivepack", "true")
	w.run(w.work, "init", "-q", "-b", "main")
	w.run(w.work, "remote", "add", "origin", w.bare)
	return w
}

// run runs git in dir and returns its standard output, failing the test if
// git fails.
func (w *workspace) run(dir string, args ...string) string {
	w.t.Helper()
	return w.runEnv(dir, nil, args...)
}

func (w *workspace) runEnv(dir string, env []string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command(w.git, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), w.env...), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// write writes files (name → content) into the work tree.
func (w *workspace) write(files map[string]string) {
	w.t.Helper()
	for name, content := range files {
		p := filepath.Join(w.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
}

// commit commits everything in the work tree and pushes main; it returns
// the commit's id.
func (w *workspace) commit(msg string) string {
	w.t.Helper()
	w.run(w.work, "add", "-A")
	w.run(w.work, "commit", "-q", "--allow-empty", "-m", msg)
	w.run(w.work, "push", "-q", "origin", "main")
	return w.run(w.work, "rev-parse", "HEAD")
}

// tag creates a tag with git's extra arguments (-a, -s, -f …) at HEAD and
// pushes it, by force so that a moved tag moves on the server too.
func (w *workspace) tag(name string, args ...string) {
	w.t.Helper()
	w.run(w.work, append(append([]string{"tag"}, args...), name)...)
	w.run(w.work, "push", "-q", "--force", "origin", "refs/tags/"+name)
}

const testFleet = `# The fleet.
fleet: acme
channels:
  staging:
    release: v1.0.0
    devices:
      ids: [lab-1]
  production:
    release: v1.0.0 # the current release
    devices:
      device_types: [gw]
    policy:
      waves: [10, 100]
`

// seed gives the workspace a first commit: fleet.yaml, gitfleet.yaml and
// some source, with an executable and a symbolic link.
func (w *workspace) seed() string {
	w.t.Helper()
	w.write(map[string]string{
		"fleet.yaml":    testFleet,
		"gitfleet.yaml": "product: p\ndevice_types: [gw]\nbuild: {command: make}\nimages: [{name: rootfs, path: out/rootfs, slot: rootfs}]\n",
		"src/main.c":    "int main(void) { return 0; }\n",
		"build.sh":      "#!/bin/sh\nmake\n",
	})
	if err := os.Chmod(filepath.Join(w.work, "build.sh"), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Symlink("src/main.c", filepath.Join(w.work, "main.c")); err != nil {
		w.t.Fatal(err)
	}
	return w.commit("first")
}

// open opens a Repo of the workspace at url, with a fresh cache.
func (w *workspace) open(url string, mod func(*Config)) *Repo {
	w.t.Helper()
	cfg := Config{URL: url, Dir: filepath.Join(w.t.TempDir(), "cache")}
	if mod != nil {
		mod(&cfg)
	}
	r, err := Open(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// fileURL is the workspace's repository over file://.
func (w *workspace) fileURL() string { return "file://" + w.bare }

// daemonURL serves the workspace's repositories with git daemon, pushes
// allowed, and returns the repository's git:// URL.
func (w *workspace) daemonURL() string {
	w.t.Helper()
	for attempt := 0; ; attempt++ {
		addr := testenv.FreeAddr(w.t)
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(w.git, "daemon", "--reuseaddr", "--base-path="+w.root, "--export-all",
			"--enable=receive-pack", "--listen=127.0.0.1", "--port="+port)
		cmd.Env = w.env
		var log syncBuffer
		cmd.Stderr = &log
		// git daemon forks a process per connection, which holds the log
		// pipe too: kill the whole group.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			w.t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		w.t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		})
		if waitListening(addr, exited) {
			return fmt.Sprintf("git://%s/fw.git", addr)
		}
		if attempt == 2 {
			w.t.Fatalf("git daemon did not listen on %s:\n%s", addr, log.String())
		}
	}
}

// waitListening waits until something accepts connections on addr, and
// reports false if exited closes first or the deadline passes.
func waitListening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// httpBackend is git http-backend serving the workspace's repositories,
// pushes allowed (http.receivepack).
func (w *workspace) httpBackend() http.Handler {
	return &cgi.Handler{
		Path: w.git,
		Args: []string{"http-backend"},
		Env:  append([]string{"GIT_PROJECT_ROOT=" + w.root, "GIT_HTTP_EXPORT_ALL=1"}, w.env...),
	}
}

// httpURL serves the workspace's repositories with git http-backend behind
// net/http/cgi, wrapped in wrap if not nil, and returns the repository's
// http:// URL.
func (w *workspace) httpURL(wrap func(http.Handler) http.Handler) string {
	h := w.httpBackend()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	w.t.Cleanup(srv.Close)
	return srv.URL + "/fw.git"
}

// httpsURL is httpURL over TLS, with the server's certificate in PEM for
// Auth.CABundle.
func (w *workspace) httpsURL() (url string, caBundle []byte) {
	srv := httptest.NewTLSServer(w.httpBackend())
	w.t.Cleanup(srv.Close)
	return srv.URL + "/fw.git", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// basicAuth refuses requests without the HTTP credentials user, password.
func basicAuth(user, password string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != password {
				rw.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(rw, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(rw, req)
		})
	}
}

// sshURL serves the workspace's repositories over SSH and returns the
// repository's ssh:// URL, with the private key the server accepts and a
// known_hosts file that lists the server's host key.
//
// The server is in-process (golang.org/x/crypto/ssh), since OpenSSH's sshd
// is not among the test programs, but what it runs is git's own
// upload-pack and receive-pack, as sshd would.
func (w *workspace) sshURL() (url string, clientKey []byte, knownHostsFile string) {
	w.t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		w.t.Fatal(err)
	}
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		w.t.Fatal(err)
	}
	allowed, _ := ssh.NewPublicKey(clientPub)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "git" && bytes.Equal(key.Marshal(), allowed.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(func() {
		cancel()
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { w.serveSSH(ctx, conn, cfg) })
		}
	})
	known := filepath.Join(w.t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(l.Addr().String())}, hostSigner.PublicKey())
	if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return fmt.Sprintf("ssh://git@%s%s", l.Addr(), w.bare), pem.EncodeToMemory(block), known
}

// serveSSH serves one SSH connection: exec requests for git-upload-pack
// and git-receive-pack, run by git.
func (w *workspace) serveSSH(ctx context.Context, conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	sconn, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		w.serveSession(ctx, ch, chReqs)
	}
}

func (w *workspace) serveSession(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if ssh.Unmarshal(req.Payload, &payload) != nil {
			req.Reply(false, nil)
			return
		}
		// "git-upload-pack '/path'": the service and a quoted path.
		service, path, _ := strings.Cut(payload.Command, " ")
		path = strings.Trim(path, "'")
		if service != "git-upload-pack" && service != "git-receive-pack" {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		cmd := exec.CommandContext(ctx, w.git, strings.TrimPrefix(service, "git-"), path)
		cmd.Env = w.env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		ch.CloseWrite()
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// syncBuffer collects a program's output for a failure message.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A gpgKey is an OpenPGP key pair in a GNUPGHOME of its own.
type gpgKey struct {
	home        string
	fingerprint string
	armored     []byte // the public key
}

// newGPGKey generates an ed25519 signing key for uid in a temporary
// GNUPGHOME, and stops its gpg-agent when the test ends.
func newGPGKey(t *testing.T, uid string) gpgKey {
	t.Helper()
	gpg := testenv.Tool(t, "gpg")
	gpgconf := testenv.Tool(t, "gpgconf")
	// gpg-agent's socket path must be short: t.TempDir's can be too long.
	home, err := os.MkdirTemp("", "gnupg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kill := exec.Command(gpgconf, "--kill", "gpg-agent")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		kill.Run()
		os.RemoveAll(home)
	})
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		cmd := exec.Command(gpg, append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	run("--quick-gen-key", uid, "ed25519", "sign", "never")
	k := gpgKey{home: home}
	for line := range strings.SplitSeq(string(run("--with-colons", "--list-keys", uid)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && k.fingerprint == "" {
			k.fingerprint = f[9]
		}
	}
	k.armored = run("--armor", "--export", k.fingerprint)
	return k
}

// signTagGPG creates a tag signed with key and pushes it.
func (w *workspace) signTagGPG(name string, key gpgKey) {
	w.t.Helper()
	gpg := testenv.Tool(w.t, "gpg")
	w.runEnv(w.work, []string{"GNUPGHOME=" + key.home},
		"-c", "gpg.program="+gpg, "-c", "user.signingkey="+key.fingerprint, "tag", "-s", "-m", "release "+name, name)
	w.run(w.work, "push", "-q", "--force", "origin", "refs/tags/"+name)
}

// An sshKey is an SSH key pair made by ssh-keygen.
type sshKey struct {
	file        string // the private key; file + ".pub" is the public key
	public      string // "ssh-ed25519 AAAA… comment"
	fingerprint string
}

func newSSHKey(t *testing.T, comment string) sshKey {
	t.Helper()
	keygen := testenv.Tool(t, "ssh-keygen")
	file := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{file: file, public: strings.TrimSpace(string(pub)), fingerprint: ssh.FingerprintSHA256(key)}
}

// signTagSSH creates a tag signed with key, as git does with
// gpg.format=ssh, and pushes it.
func (w *workspace) signTagSSH(name string, key sshKey) {
	w.t.Helper()
	keygen := testenv.Tool(w.t, "ssh-keygen")
	w.run(w.work, "-c", "gpg.format=ssh", "-c", "gpg.ssh.program="+keygen, "-c", "user.signingkey="+key.file,
		"tag", "-s", "-m", "release "+name, name)
	w.run(w.work, "push", "-q", "--force", "origin", "refs/tags/"+name)
}
