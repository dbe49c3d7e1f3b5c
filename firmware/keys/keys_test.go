package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature/kms/fake"

	"github.com/gitfleet/gitfleet/firmware/keys"
)

func TestGenerateLoadSign(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []keys.Algorithm{keys.Ed25519, keys.ECDSAP256} {
		for _, encrypted := range []bool{false, true} {
			t.Run(string(alg)+map[bool]string{false: "", true: "/encrypted"}[encrypted], func(t *testing.T) {
				var pass keys.PassphraseFunc
				if encrypted {
					t.Setenv(keys.PassphraseEnv, "correct horse")
					pass = keys.EnvPassphrase
				}
				p, err := keys.Generate(alg, pass)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				priv, pub, err := p.WriteFiles(dir, "targets")
				if err != nil {
					t.Fatal(err)
				}
				if fi, _ := os.Stat(priv); fi.Mode().Perm() != 0o600 {
					t.Errorf("private key mode = %v, want 0600", fi.Mode().Perm())
				}
				if _, _, err := p.WriteFiles(dir, "targets"); !errors.Is(err, keys.ErrExists) {
					t.Errorf("second WriteFiles err = %v, want ErrExists", err)
				}
				s, err := keys.LoadSigner(ctx, priv, nil)
				if err != nil {
					t.Fatal(err)
				}
				if s.ID != p.ID {
					t.Errorf("loaded key id %s, generated %s", s.ID, p.ID)
				}
				pk, err := keys.LoadPublic(pub)
				if err != nil {
					t.Fatal(err)
				}
				v, err := keys.Verifier(pk)
				if err != nil {
					t.Fatal(err)
				}
				sig, err := s.SignMessage(bytes.NewReader([]byte("msg")))
				if err != nil {
					t.Fatal(err)
				}
				if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader([]byte("msg"))); err != nil {
					t.Errorf("verify: %v", err)
				}
				if encrypted {
					t.Setenv(keys.PassphraseEnv, "wrong")
					if _, err := keys.LoadSigner(ctx, priv, nil); err == nil {
						t.Error("encrypted key loaded with the wrong passphrase")
					}
					os.Unsetenv(keys.PassphraseEnv)
					if _, err := keys.LoadSigner(ctx, priv, nil); err == nil || !strings.Contains(err.Error(), keys.PassphraseEnv) {
						t.Errorf("no passphrase: err = %v, want it to name %s", err, keys.PassphraseEnv)
					}
				}
			})
		}
	}
}

func TestEnvKey(t *testing.T) {
	p, err := keys.Generate(keys.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITFLEET_TEST_KEY", string(p.PrivatePEM))
	s, err := keys.LoadSigner(context.Background(), "env://GITFLEET_TEST_KEY", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != p.ID {
		t.Errorf("key id %s, want %s", s.ID, p.ID)
	}
	if _, err := keys.LoadSigner(context.Background(), "env://GITFLEET_TEST_NO_SUCH_KEY", nil); err == nil || !strings.Contains(err.Error(), "GITFLEET_TEST_NO_SUCH_KEY is not set") {
		t.Errorf("unset variable: err = %v", err)
	}
}

// TestKMSKey loads a key through sigstore's KMS registry, with its in-memory
// fake provider standing in for Vault or a cloud KMS.
func TestKMSKey(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), fake.KmsCtxKey{}, any(priv))
	s, err := keys.LoadSigner(ctx, fake.ReferenceScheme+"release", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := keys.ID(&priv.PublicKey)
	if s.ID != want {
		t.Errorf("KMS key id %s, want %s", s.ID, want)
	}
	if _, err := keys.LoadSigner(context.Background(), "nosuchkms://key", nil); err == nil {
		t.Error("unknown KMS scheme accepted")
	}
}

func TestRefusedKeys(t *testing.T) {
	dir := t.TempDir()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := keys.ID(&p384.PublicKey); err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("P-384 key: err = %v, want it refused by curve", err)
	}
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	if _, err := keys.LoadSigner(context.Background(), garbage, nil); err == nil {
		t.Error("garbage key loaded")
	}
	if _, err := keys.ParseAlgorithm("rsa"); err == nil {
		t.Error("rsa accepted as an algorithm")
	}
}
