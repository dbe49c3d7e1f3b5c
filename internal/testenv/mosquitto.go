package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Mosquitto starts a Mosquitto broker of the calling test's own and returns its address,
// "127.0.0.1:PORT", for tests that need a configuration of their own, such as an ACL that the server
// rendered. The broker reads
//
//	persistence false
//	log_dest stderr
//	listener PORT 127.0.0.1
//	<conf>
//
// so conf's listener options (cafile, require_certificate ...) apply to that listener. Like any
// Mosquitto 2, it refuses anonymous clients unless conf says "allow_anonymous true". Files that conf
// names are best made in t.TempDir(). The broker is killed when the test ends, and its log is printed
// if the test failed. It needs the mosquitto program: see Tool.
func Mosquitto(t testing.TB, conf string) string {
	t.Helper()
	bin := Tool(t, "mosquitto")
	dir := t.TempDir()
	// Another process can take the port between FreeAddr and the broker's bind: try others then.
	for attempt := 1; ; attempt++ {
		addr := FreeAddr(t)
		err := startMosquitto(t, bin, dir, addr, conf)
		if err == nil {
			return addr
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("testenv: start mosquitto: %v", err)
		}
	}
}

var errPortTaken = errors.New("port taken")

// startMosquitto starts a broker on addr and waits until it accepts connections.
func startMosquitto(t testing.TB, bin, dir, addr, conf string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	confFile, logFile := filepath.Join(dir, "mosquitto.conf"), filepath.Join(dir, "mosquitto.log")
	// As root, Mosquitto would drop to user mosquitto, which can read none of the test's files, and
	// would lose dieWithParent's signal: "user root" keeps it root. Other users' Mosquitto ignores it.
	text := fmt.Sprintf("user root\npersistence false\nlog_dest stderr\nlistener %s 127.0.0.1\n%s\n", port, conf)
	if err := os.WriteFile(confFile, []byte(text), 0o600); err != nil {
		return err
	}
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer log.Close() // the broker has its own descriptor
	cmd := exec.Command(bin, "-c", confFile)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	if err := awaitListener(addr, exited); err != nil {
		stop()
		out, _ := os.ReadFile(logFile)
		if strings.Contains(string(out), "Address already in use") {
			err = errPortTaken
		} else if errors.Is(err, errExited) {
			err = fmt.Errorf("%w (%v)", err, exitErr)
		}
		return fmt.Errorf("%w; its log:\n%s", err, out)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			out, _ := os.ReadFile(logFile)
			t.Logf("testenv: the log of the mosquitto at %s:\n%s", addr, out)
		}
	})
	return nil
}

var errExited = errors.New("mosquitto exited")

// awaitListener waits until something accepts connections on addr. It fails with errExited once exited
// is closed, or after 10 s.
func awaitListener(addr string, exited <-chan struct{}) error {
	const timeout = 10 * time.Second
	deadline := time.After(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-deadline:
			return fmt.Errorf("nothing answers at %s after %v", addr, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
