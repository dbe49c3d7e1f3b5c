package main

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// signing holds the server's online keys and the root devices pin.
type signing struct {
	root      *trust.Root
	rootJSON  []byte
	targets   trust.Sealer
	timestamp []*keys.Signer
}

// loadKeys loads the configured keys. With none configured (embedded
// defaults) it makes a root and the four role keys under DATA_DIR/keys on
// first start, and says loudly that they are for trying gitfleet out: a
// production root key lives offline and the targets key in a KMS.
func loadKeys(ctx context.Context, c Config, log *slog.Logger) (*signing, error) {
	if len(c.Keys.Targets) == 0 && len(c.Keys.Timestamp) == 0 {
		if err := demoKeys(c, log); err != nil {
			return nil, err
		}
		dir := filepath.Join(c.DataDir, "keys")
		c.Keys.Targets = []string{filepath.Join(dir, "targets.key")}
		c.Keys.Timestamp = []string{filepath.Join(dir, "timestamp.key")}
	}
	s := &signing{}
	var err error
	if s.rootJSON, err = os.ReadFile(c.Keys.Root); err != nil {
		return nil, fmt.Errorf("keys.root: %w", err)
	}
	if s.root, err = trust.LoadRoot(s.rootJSON); err != nil {
		return nil, fmt.Errorf("keys.root %s: %w", c.Keys.Root, err)
	}
	for _, ref := range c.Keys.Targets {
		k, err := keys.LoadSigner(ctx, ref, nil)
		if err != nil {
			return nil, fmt.Errorf("keys.targets: %w", err)
		}
		s.targets = append(s.targets, k)
	}
	for _, ref := range c.Keys.Timestamp {
		k, err := keys.LoadSigner(ctx, ref, nil)
		if err != nil {
			return nil, fmt.Errorf("keys.timestamp: %w", err)
		}
		s.timestamp = append(s.timestamp, k)
	}
	// Refuse keys the root does not vouch for: devices would refuse
	// everything they sign.
	for role, signers := range map[string][]*keys.Signer{trust.RoleTargets: s.targets, trust.RoleTimestamp: s.timestamp} {
		if len(signers) == 0 {
			return nil, fmt.Errorf("keys.%s: no key given", role)
		}
		ids := s.root.RoleKeyIDs(role)
		for _, k := range signers {
			if !contains(ids, k.ID) {
				return nil, fmt.Errorf("keys.%s: key %s is not a %s key of root version %d", role, k.ID[:12], role, s.root.Version())
			}
		}
	}
	return s, nil
}

func demoKeys(c Config, log *slog.Logger) error {
	dir := filepath.Join(c.DataDir, "keys")
	if _, err := os.Stat(c.Keys.Root); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	log.Warn("no keys configured: making a demo root and role keys in " + dir + "; for production keep the root key offline and the targets key in a KMS")
	spec := trust.RootSpec{Expires: time.Now().AddDate(1, 0, 0), Roles: map[string]trust.RoleKeys{}}
	var rootSigner *keys.Signer
	for _, role := range []string{trust.RoleRoot, trust.RoleTargets, trust.RoleSnapshot, trust.RoleTimestamp} {
		p, err := keys.Generate(keys.Ed25519, nil)
		if err != nil {
			return err
		}
		priv, _, err := p.WriteFiles(dir, role)
		if err != nil {
			return err
		}
		s, err := keys.LoadSigner(context.Background(), priv, nil)
		if err != nil {
			return err
		}
		spec.Roles[role] = trust.RoleKeys{Keys: []crypto.PublicKey{s.Public}, Threshold: 1}
		if role == trust.RoleRoot {
			rootSigner = s
		}
	}
	root, err := trust.NewRoot(spec, rootSigner)
	if err != nil {
		return err
	}
	return os.WriteFile(c.Keys.Root, root, 0o644)
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
