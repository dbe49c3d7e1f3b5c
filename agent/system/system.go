// Package system is the agent's view of the machine it runs on: which boot
// this is, and how to reboot.
package system

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// DefaultBootIDFile is where Linux exposes a random id made at each boot.
const DefaultBootIDFile = "/proc/sys/kernel/random/boot_id"

// A System reads the boot id from a file and reboots with a command.
type System struct {
	// BootIDFile defaults to DefaultBootIDFile. The virtual board points it
	// at a file it rewrites at every power-on.
	BootIDFile string
	// RebootCommand defaults to systemctl reboot.
	RebootCommand []string
}

// BootID returns the id of the current boot.
func (s *System) BootID() (string, error) {
	path := s.BootIDFile
	if path == "" {
		path = DefaultBootIDFile
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("boot id: %s is empty", path)
	}
	return id, nil
}

// Reboot asks the system to reboot. It returns once the request is made;
// the caller should then stop doing anything.
func (s *System) Reboot(ctx context.Context) error {
	argv := s.RebootCommand
	if len(argv) == 0 {
		argv = []string{"systemctl", "reboot"}
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("reboot with %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
