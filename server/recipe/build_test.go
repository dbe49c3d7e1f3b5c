package recipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// syncBuffer is a log that the test reads while nothing writes any more;
// the lock keeps the race detector honest about it.
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

func shellRecipe(script string, images ...ImageSpec) *Recipe {
	return &Recipe{Product: "p", DeviceTypes: []string{"t"}, Command: Command{Shell: script}, Timeout: time.Minute, Images: images}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\nset -e\nmkdir -p out\nprintf rootfs-bytes > out/rootfs.ext4\nprintf k > out/fitImage\necho to-stdout\necho to-stderr >&2\n"
	if err := os.WriteFile(filepath.Join(dir, "build.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Parse(RecipeFile, []byte(`product: acme
device_types: [t]
build:
  command: [./build.sh]
images:
  - {name: rootfs, path: out/rootfs.ext4, slot: rootfs}
  - {name: kernel, path: out/fitImage, slot: boot}
`))
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	got, err := Build(context.Background(), r, Checkout{Dir: dir, Time: time.Unix(1700000000, 0)}, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	want := []Image{
		{Name: "rootfs", Slot: "rootfs", Path: filepath.Join(dir, "out/rootfs.ext4"), Size: int64(len("rootfs-bytes"))},
		{Name: "kernel", Slot: "boot", Path: filepath.Join(dir, "out/fitImage"), Size: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build: -want +got:\n%s", diff)
	}
	for _, s := range []string{"to-stdout\n", "to-stderr\n", "gitfleet: building acme"} {
		if !strings.Contains(log.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, log.String())
		}
	}
}

// TestBuildEnvironment proves that a build sees the fixed environment and
// nothing of the server's: the build copies its own /proc/self/environ
// into the image it produces.
func TestBuildEnvironment(t *testing.T) {
	const secret = "s3cr3t-token-value"
	t.Setenv("GITFLEET_TEST_SECRET", secret)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	dir := t.TempDir()
	r := &Recipe{
		Product: "p", DeviceTypes: []string{"t"}, Timeout: time.Minute,
		Command: Command{Argv: []string{"cp", "/proc/self/environ", "environ"}},
		Images:  []ImageSpec{{Name: "env", Path: "environ", Slot: "env"}},
	}
	commitTime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 7200))
	var log syncBuffer
	images, err := Build(context.Background(), r, Checkout{Dir: dir, Time: commitTime, Tag: "v1.4.0", Commit: "0123abcd"}, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	data, err := os.ReadFile(images[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for kv := range strings.SplitSeq(strings.TrimSuffix(string(data), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for _, k := range []string{"HOME", "TMPDIR"} {
		if !strings.HasPrefix(got[k], os.TempDir()) || got[k] == os.Getenv(k) {
			t.Errorf("%s = %q, want a fresh directory under %s", k, got[k], os.TempDir())
		}
		if _, err := os.Stat(got[k]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s %s outlived the build: %v", k, got[k], err)
		}
	}
	want := map[string]string{
		"PATH":              BuildPath,
		"HOME":              got["HOME"],
		"TMPDIR":            got["TMPDIR"],
		"LANG":              "C",
		"TZ":                "UTC",
		"SOURCE_DATE_EPOCH": strconv.FormatInt(commitTime.Unix(), 10),
		"GITFLEET_PRODUCT":  "p",
		"GITFLEET_TAG":      "v1.4.0",
		"GITFLEET_COMMIT":   "0123abcd",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("build environment: -want +got:\n%s", diff)
	}
	if bytes.Contains(data, []byte(secret)) || strings.Contains(log.String(), secret) {
		t.Errorf("the build saw the server's secret")
	}

	// The same through a shell, which would expand it if it were there.
	r = shellRecipe(`echo "secret=${GITFLEET_TEST_SECRET:-unset} aws=${AWS_SECRET_ACCESS_KEY:-unset}" > out`,
		ImageSpec{Name: "out", Path: "out", Slot: "out"})
	images, err = Build(context.Background(), r, Checkout{Dir: t.TempDir()}, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if data, err := os.ReadFile(images[0].Path); err != nil || string(data) != "secret=unset aws=unset\n" {
		t.Errorf("shell build printed %q, %v; want both unset", data, err)
	}
}

// TestBuildPath checks that a build looks programs up in BuildPath, not in
// the server's PATH.
func TestBuildPath(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "gitfleet-test-tool"), []byte("#!/bin/sh\ntouch out\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	r := &Recipe{Product: "p", Timeout: time.Minute, Command: Command{Argv: []string{"gitfleet-test-tool"}}}
	_, err := Build(context.Background(), r, Checkout{Dir: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), `program "gitfleet-test-tool" not found in `+BuildPath) {
		t.Errorf("Build = %v, want program not found", err)
	}
}

func TestBuildFails(t *testing.T) {
	var log syncBuffer
	_, err := Build(context.Background(), shellRecipe("echo failing; exit 3"), Checkout{Dir: t.TempDir()}, &log)
	if got, want := fmt.Sprint(err), "build p: echo failing; exit 3: exit status 3"; got != want {
		t.Errorf("Build error\n got: %s\nwant: %s", got, want)
	}
	if !strings.Contains(log.String(), "failing\n") {
		t.Errorf("log lacks the build's output:\n%s", log.String())
	}
}

// alive reports whether process pid still runs; a zombie, which only waits
// for its parent to reap it, does not.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := bytes.Cut(stat, []byte(") "))
	return !bytes.HasPrefix(rest, []byte("Z"))
}

// waitDead waits until the process whose pid a build wrote to file is
// gone, or fails the test at the deadline.
func waitDead(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d the build started still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBuildTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	// The background sleep holds the log pipe open too: without the group
	// kill, Build would wait for it.
	r := shellRecipe("sleep 1000 & echo $! > bg.pid; sleep 1000")
	r.Timeout = 300 * time.Millisecond
	var log syncBuffer
	_, err := Build(context.Background(), r, Checkout{Dir: dir}, &log)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Build = %v, want a deadline error", err)
	}
	if got, want := err.Error(), "build p: sleep 1000 & echo $! > bg.pid; sleep 1000: timed out after 300ms: context deadline exceeded"; got != want {
		t.Errorf("Build error\n got: %s\nwant: %s", got, want)
	}
	waitDead(t, filepath.Join(dir, "bg.pid"))
}

func TestBuildKillsLeftovers(t *testing.T) {
	dir := t.TempDir()
	r := shellRecipe("sleep 1000 >/dev/null 2>&1 & echo $! > bg.pid; touch img", ImageSpec{Name: "img", Path: "img", Slot: "s"})
	if _, err := Build(context.Background(), r, Checkout{Dir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	waitDead(t, filepath.Join(dir, "bg.pid"))
}

func TestBuildCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	r := shellRecipe("echo started > started; sleep 1000")
	done := make(chan error)
	go func() {
		_, err := Build(ctx, r, Checkout{Dir: dir}, nil)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the build did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Build = %v, want context.Canceled", err)
	}
}

func TestBuildImageChecks(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "img"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		script string
		want   string
	}{
		{"missing", "true", "image img: the build left no file at out/img"},
		{"symlink out", "mkdir out; ln -s " + outside + "/img out/img", "image img: out/img is a symbolic link, want a regular file"},
		{"symlink in", "mkdir out; echo x > real; ln -s ../real out/img", "image img: out/img is a symbolic link, want a regular file"},
		{"directory", "mkdir -p out/img", "image img: out/img is a directory, want a regular file"},
		{"fifo", "mkdir out; mkfifo out/img", "image img: out/img is a named pipe, want a regular file"},
		{"directory symlink out", "ln -s " + outside + " out", "image img: out/img: path escapes from parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := shellRecipe(tt.script, ImageSpec{Name: "img", Path: "out/img", Slot: "s"})
			_, err := Build(context.Background(), r, Checkout{Dir: t.TempDir()}, nil)
			if got, want := fmt.Sprint(err), "build p: "+tt.want; got != want {
				t.Errorf("Build error\n got: %s\nwant: %s", got, want)
			}
		})
	}

	// A directory symlink that stays inside the checkout is fine.
	dir := t.TempDir()
	r := shellRecipe("mkdir real; echo x > real/img; ln -s real out", ImageSpec{Name: "img", Path: "out/img", Slot: "s"})
	images, err := Build(context.Background(), r, Checkout{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || images[0].Path != filepath.Join(dir, "out/img") {
		t.Errorf("Build = %+v, want out/img", images)
	}

}
