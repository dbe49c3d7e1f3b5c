package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// benchImageSize is the size of the image a benchmark release carries.
const benchImageSize = 256 << 20

// BenchmarkTagToAdvertised measures how long gitfleet-server, on embedded
// defaults, takes to turn a signed tag of a 256 MiB image into an advertised
// release: an op runs from the tag's creation in the firmware repository to
// the channel state naming the release arriving at a device over MQTT. The
// tag's build command only hard-links an image made beforehand, so what is
// measured is the server's own work: notice the tag (polling every 100 ms),
// fetch, check out and verify it, bundle the image (hashing every chunk),
// sign, store the bundle, record the release and advertise it.
//
// Beside it, measured in the same run on the same disk, it reports the limit
// (limit-s): hashing the image with SHA-256 once and writing a synced copy
// of it into the server's data directory, where the local object store keeps
// the bundle. x-limit is the op over that limit; the goal is at most 2.
//
//	go test -run '^$' -bench TagToAdvertised -benchtime 2x ./cmd/gitfleet-server/
func BenchmarkTagToAdvertised(b *testing.B) {
	git := testenv.Tool(b, "git")
	dir := b.TempDir()
	repo, images := filepath.Join(dir, "repo"), filepath.Join(dir, "images")
	os.MkdirAll(repo, 0o755)
	os.MkdirAll(images, 0o755)
	signers := initBenchRepo(b, git, repo)
	// The server reads the fleet, acme, from the first fleet.yaml, whose
	// channel waits for a release never tagged.
	commitRelease(b, git, repo, "/nonexistent", "0.0.0")

	cfg := Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Listen = freeAddr(b)
	cfg.MQTT.Embedded.Listen = freeAddr(b)
	cfg.Git.URL = "file://" + repo
	cfg.Git.Poll = 100 * time.Millisecond
	cfg.Git.Signatures.Method = "ssh"
	cfg.Git.Signatures.Keys = signers
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	startServer(b, cfg)
	waitFile(b, filepath.Join(cfg.DataDir, "api-token"))

	// A device of the fleet, subscribed to its channel as the agent is.
	var pw bytes.Buffer
	if err := addDevice(cfg, "bench-1", &pw); err != nil {
		b.Fatal(err)
	}
	adverts := subscribeChannel(b, cfg, "bench-1", bytes.TrimSpace(pw.Bytes()), "production")

	var limit time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		image := filepath.Join(images, fmt.Sprintf("rootfs-%d.img", i))
		writeImage(b, image, uint64(i))
		limit += hashAndCopy(b, image, filepath.Join(cfg.DataDir, "limit-copy"))
		version := fmt.Sprintf("1.0.%d", i)
		commitRelease(b, git, repo, image, version)
		b.StartTimer()
		tagRelease(b, git, repo, version)
		awaitAdvert(b, adverts, version)
	}
	b.ReportMetric(limit.Seconds()/float64(b.N), "limit-s")
	b.ReportMetric(float64(b.Elapsed())/float64(limit), "x-limit")
}

// initBenchRepo makes an empty firmware repository in dir, with git
// configured to sign tags with a fresh SSH key, and returns the allowed
// signers file that lists the key.
func initBenchRepo(b *testing.B, git, dir string) string {
	key := filepath.Join(b.TempDir(), "release")
	if out, err := exec.Command(testenv.Tool(b, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "release@acme", "-f", key).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	signers := filepath.Join(b.TempDir(), "allowed_signers")
	os.WriteFile(signers, append([]byte("release@acme "), pub...), 0o644)
	gitIn(b, git, dir, "init", "-b", "main")
	for _, kv := range [][2]string{{"user.name", "R"}, {"user.email", "release@acme"}, {"gpg.format", "ssh"}, {"user.signingkey", key}} {
		gitIn(b, git, dir, "config", kv[0], kv[1])
	}
	return signers
}

// commitRelease commits, on main, a build that hard-links image into the
// checkout and a fleet.yaml whose production channel runs version, to be
// tagged next.
func commitRelease(b *testing.B, git, dir, image, version string) {
	files := map[string]string{
		"gitfleet.yaml": "product: acme-gateway\ndevice_types: [acme-gw-v2]\nbuild:\n  command: ./build.sh\nimages:\n  - {name: rootfs, path: out/rootfs.img, slot: rootfs}\n",
		"build.sh":      fmt.Sprintf("#!/bin/sh\nset -e\nmkdir -p out\nln %s out/rootfs.img\n", image),
		"fleet.yaml":    fmt.Sprintf("fleet: acme\nchannels:\n  production:\n    release: v%s\n    devices: {device_types: [acme-gw-v2]}\n    policy: {waves: [100], wave_duration: 1s, min_confirmed: 1}\n", version),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	gitIn(b, git, dir, "add", ".")
	gitIn(b, git, dir, "commit", "-q", "-m", "release "+version)
}

// tagRelease signs the tag of version on the last commit.
func tagRelease(b *testing.B, git, dir, version string) {
	gitIn(b, git, dir, "tag", "-s", "-m", "release "+version, "v"+version)
}

func gitIn(b *testing.B, git, dir string, args ...string) {
	cmd := exec.Command(git, append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// writeImage writes benchImageSize random bytes, of seed, to path: every
// release's image differs, so no object is stored already.
func writeImage(b *testing.B, path string, seed uint64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1}), benchImageSize)
	if _, err := io.Copy(f, r); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// hashAndCopy returns how long hashing image with SHA-256 and then writing
// and syncing a copy of it at dst take: the least a server that stores a
// checked image must do.
func hashAndCopy(b *testing.B, image, dst string) time.Duration {
	start := time.Now()
	src, err := os.Open(image)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := io.Copy(sha256.New(), src); err != nil {
		b.Fatal(err)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(dst)
	defer out.Close()
	if _, err := io.Copy(out, src); err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// subscribeChannel connects to the embedded broker as device and returns
// the versions of the releases advertised on channel, as they arrive.
func subscribeChannel(b *testing.B, cfg Config, device string, password []byte, channel string) <-chan string {
	name, err := topic.Channel("acme", channel)
	if err != nil {
		b.Fatal(err)
	}
	versions := make(chan string, 16)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + cfg.MQTT.Embedded.Listen).SetClientID(device).
		SetUsername(device).SetPassword(string(password)).SetProtocolVersion(4).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond) // the broker reads new accounts within a second
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("connect to the embedded broker as %s: %v", device, tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(name, 1, func(_ mqtt.Client, m mqtt.Message) {
		env, err := gitfleetv1.DecodeSignedMessage(m.Payload())
		if err != nil {
			return
		}
		if cs, err := gitfleetv1.DecodeChannelState(env); err == nil {
			versions <- cs.GetRelease().GetVersion()
		}
	})
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe to %s: %v", name, tok.Error())
	}
	return versions
}

// awaitAdvert waits for version to be advertised.
func awaitAdvert(b *testing.B, versions <-chan string, version string) {
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case v := <-versions:
			if v == version {
				return
			}
		case <-timeout:
			b.Fatalf("release %s not advertised within 5 minutes", version)
		}
	}
}
