package hil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// An embeddedServer is a gitfleet-server on embedded defaults (embedded
// broker, SQLite, local objects) that the runner started for a run, on
// free loopback ports, with its data in a directory of the run.
type embeddedServer struct {
	// API is the server's URL, Broker its MQTT broker's
	// (tcp://127.0.0.1:PORT), TokenFile the file holding its admin token.
	API, Broker, TokenFile string
	// Passwords holds, by device id, the file with the password of the
	// device's broker account.
	Passwords map[string]string

	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	err  error         // how it exited, once done is closed
	log  string
}

// The fleet of the runner's server: the virtual board's default.
const embeddedFleet = "hil"

// serverStartTimeout bounds a server's start, to a ready API.
const serverStartTimeout = 60 * time.Second

// startServer starts bin (gitfleet-server) with its data under dir and its
// log in logPath, after giving each of devices a broker account. Stop
// stops it.
func startServer(ctx context.Context, bin, dir, logPath string, devices []string) (*embeddedServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	// Ports are picked before the server binds them, so another program
	// may take one meanwhile: then the server exits and gets new ones.
	var err error
	for range 3 {
		var s *embeddedServer
		if s, err = tryServer(ctx, bin, dir, logPath, devices); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func tryServer(ctx context.Context, bin, dir, logPath string, devices []string) (*embeddedServer, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	mqttAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	config := filepath.Join(dir, "server.yaml")
	yaml := fmt.Sprintf("# The gitfleet-server gitfleet-hil started for a run: embedded defaults on free ports.\n"+
		"fleet: %s\ndata_dir: %q\nhttp: {listen: %q}\nmqtt: {embedded: {listen: %q}}\n", embeddedFleet, data, httpAddr, mqttAddr)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &embeddedServer{API: "http://" + httpAddr, Broker: "tcp://" + mqttAddr, TokenFile: filepath.Join(data, "api-token"),
		Passwords: map[string]string{}, done: make(chan struct{}), log: logPath}
	for _, id := range devices {
		p := filepath.Join(dir, id+".password")
		if _, err := os.Stat(p); err == nil {
			s.Passwords[id] = p // provisioned by an earlier try
			continue
		}
		out, err := exec.CommandContext(ctx, bin, "add-device", "--config", config, id).Output()
		if err != nil {
			return nil, fmt.Errorf("server: add-device %s: %w", id, exitError(err))
		}
		if err := os.WriteFile(p, out, 0o600); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.Passwords[id] = p
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("server: log: %w", err)
	}
	// Not CommandContext: the server outlives the context of its start,
	// until Stop.
	s.cmd = exec.Command(bin, "--config", config)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	err = s.cmd.Start()
	logFile.Close()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server's /readyz until it answers 200.
func (s *embeddedServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, serverStartTimeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.API+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(s.TokenFile); err == nil {
					return nil
				}
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("gitfleet-server exited at its start (%v): %s", s.err, lastLogLine(s.log))
		case <-ctx.Done():
			return fmt.Errorf("gitfleet-server at %s not ready in %s: see %s", s.API, serverStartTimeout, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s) and waits for it.
func (s *embeddedServer) Stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("gitfleet-server did not stop in 10s on SIGTERM: see %s", s.log)
	}
	if s.err != nil {
		return fmt.Errorf("gitfleet-server: %v: see %s", s.err, s.log)
	}
	return nil
}

// fleet returns the fleet view of the server's API, with the rig's report
// timeout.
func (s *embeddedServer) fleet(cfg Server) (*fleet, error) {
	cfg.API, cfg.TokenFile = s.API, s.TokenFile
	return dialFleet(cfg)
}

// freeAddr returns a loopback address nothing listened on a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("server: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// exitError adds a failed command's last line of stderr to its error.
func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(bytes.TrimSpace(ee.Stderr)) > 0 {
		return fmt.Errorf("%w: %s", err, lastLine(string(ee.Stderr)))
	}
	return err
}

// lastLogLine returns the last line of the log at path, for an error.
func lastLogLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLine(string(data))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
