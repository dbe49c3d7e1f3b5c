package bootenv

import (
	"context"
	"fmt"
	"os"
	"time"
)

// lockFile opens path, creating it, and takes an exclusive flock on it. The
// lock lasts until the returned file is closed.
func lockFile(ctx context.Context, path string) (*os.File, error) {
	// 0666 like libubootenv, so that an unprivileged fw_printenv can still
	// take the lock after the agent created the file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := flock(ctx, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flock takes an exclusive flock on f. It polls rather than blocks so that a
// tool stuck holding the lock cannot hang the agent past ctx.
func flock(ctx context.Context, f *os.File) error {
	delay := time.Millisecond
	for {
		held, err := tryFlock(f)
		if err != nil {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !held {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lock %s: held by another process: %w", f.Name(), context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
