package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// PassphraseEnv is the environment variable the default PassphraseFunc reads.
const PassphraseEnv = "GITFLEET_KEY_PASSPHRASE"

// A PassphraseFunc returns the passphrase of an encrypted private key.
// confirm is true when the passphrase protects a key being written, so an
// interactive implementation can ask twice.
type PassphraseFunc func(confirm bool) ([]byte, error)

// EnvPassphrase is the PassphraseFunc that reads PassphraseEnv.
func EnvPassphrase(bool) ([]byte, error) {
	p, ok := os.LookupEnv(PassphraseEnv)
	if !ok || p == "" {
		return nil, fmt.Errorf("the key is encrypted: set %s to its passphrase", PassphraseEnv)
	}
	return []byte(p), nil
}

// Algorithm names a key algorithm that gitfleet signs with.
type Algorithm string

// The algorithms gitfleet generates and verifies.
const (
	Ed25519   Algorithm = "ed25519"
	ECDSAP256 Algorithm = "ecdsa-p256"
)

// ParseAlgorithm returns the Algorithm called name.
func ParseAlgorithm(name string) (Algorithm, error) {
	switch a := Algorithm(strings.ToLower(name)); a {
	case Ed25519, ECDSAP256:
		return a, nil
	}
	return "", fmt.Errorf("unknown key algorithm %q: use %s or %s", name, Ed25519, ECDSAP256)
}

// A Signer signs with one private key and knows that key's TUF id.
type Signer struct {
	signature.Signer
	// ID is the TUF key id of the public half.
	ID string
	// Public is the public half.
	Public crypto.PublicKey
}

// LoadSigner loads the private key that ref names: a PEM file path,
// env://VAR, or a sigstore KMS URI (scheme://…). pass is asked for the
// passphrase only if the key is encrypted; nil means EnvPassphrase.
func LoadSigner(ctx context.Context, ref string, pass PassphraseFunc) (*Signer, error) {
	if pass == nil {
		pass = EnvPassphrase
	}
	var (
		sv  signature.Signer
		err error
	)
	switch {
	case strings.HasPrefix(ref, "env://"):
		name := strings.TrimPrefix(ref, "env://")
		text, ok := os.LookupEnv(name)
		if !ok || text == "" {
			return nil, fmt.Errorf("load key %s: environment variable %s is not set", ref, name)
		}
		sv, err = signerFromPEM([]byte(text), pass)
	case strings.Contains(ref, "://"):
		// KMS keys are named by URI. ECDSA P-256 signs SHA-256 digests;
		// sigstore's KMS providers use the hash for every key type.
		sv, err = kms.Get(ctx, ref, crypto.SHA256)
	default:
		var text []byte
		text, err = os.ReadFile(ref)
		if err == nil {
			sv, err = signerFromPEM(text, pass)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", ref, err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("load key %s: public key: %w", ref, err)
	}
	id, err := ID(pub)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", ref, err)
	}
	return &Signer{Signer: sv, ID: id, Public: pub}, nil
}

func signerFromPEM(text []byte, pass PassphraseFunc) (signature.Signer, error) {
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(text, cryptoutils.PassFunc(pass))
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	return signerFromKey(priv)
}

func signerFromKey(priv crypto.PrivateKey) (signature.Signer, error) {
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		return signature.LoadED25519Signer(k)
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on curve %s: only P-256 is supported", k.Curve.Params().Name)
		}
		return signature.LoadECDSASigner(k, crypto.SHA256)
	}
	return nil, fmt.Errorf("unsupported private key type %T: use %s or %s", priv, Ed25519, ECDSAP256)
}

// LoadPublic reads a PEM public key ("PUBLIC KEY", PKIX) from path.
func LoadPublic(path string) (crypto.PublicKey, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	pub, err := ParsePublic(text)
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", path, err)
	}
	return pub, nil
}

// ParsePublic parses a PEM public key and checks it is of a supported type.
func ParsePublic(text []byte) (crypto.PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(text)
	if err != nil {
		return nil, err
	}
	if _, err := ID(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// Verifier returns a signature verifier for pub with the hash its algorithm
// signs: none for Ed25519 (it signs the message), SHA-256 for ECDSA P-256.
func Verifier(pub crypto.PublicKey) (signature.Verifier, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return signature.LoadED25519Verifier(k)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on curve %s: only P-256 is supported", k.Curve.Params().Name)
		}
		return signature.LoadECDSAVerifier(k, crypto.SHA256)
	}
	return nil, fmt.Errorf("unsupported public key type %T: use %s or %s", pub, Ed25519, ECDSAP256)
}

// ID returns the TUF key id of pub.
func ID(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on curve %s: only P-256 is supported", k.Curve.Params().Name)
		}
	default:
		return "", fmt.Errorf("unsupported public key type %T: use %s or %s", pub, Ed25519, ECDSAP256)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	return k.ID()
}

// ErrExists is returned by Generate when it would overwrite a key file.
var ErrExists = errors.New("key file exists")
