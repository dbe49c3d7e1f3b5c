package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// A Pair is a freshly generated key pair, PEM encoded.
type Pair struct {
	ID         string
	PrivatePEM []byte
	PublicPEM  []byte
}

// Generate makes a key pair of algorithm alg. If pass is not nil, the private
// key is encrypted with the passphrase it returns.
func Generate(alg Algorithm, pass PassphraseFunc) (*Pair, error) {
	var (
		priv crypto.PrivateKey
		pub  crypto.PublicKey
	)
	switch alg {
	case Ed25519:
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", alg, err)
		}
		pub, priv = p, k
	case ECDSAP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", alg, err)
		}
		pub, priv = &k.PublicKey, k
	default:
		return nil, fmt.Errorf("unknown key algorithm %q: use %s or %s", alg, Ed25519, ECDSAP256)
	}
	id, err := ID(pub)
	if err != nil {
		return nil, err
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	var privPEM []byte
	if pass == nil {
		privPEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv)
	} else {
		var der []byte
		der, err = cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.PassFunc(pass))
		privPEM = pem.EncodeToMemory(&pem.Block{Type: string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), Bytes: der})
	}
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return &Pair{ID: id, PrivatePEM: privPEM, PublicPEM: pubPEM}, nil
}

// WriteFiles writes the pair as NAME.key (mode 0600) and NAME.pub in dir.
// It refuses to overwrite either file, so a release key is never lost to a
// typo.
func (p *Pair) WriteFiles(dir, name string) (privPath, pubPath string, err error) {
	privPath = filepath.Join(dir, name+".key")
	pubPath = filepath.Join(dir, name+".pub")
	for _, path := range []string{privPath, pubPath} {
		if _, err := os.Lstat(path); err == nil {
			return "", "", fmt.Errorf("write key %s: %w", path, ErrExists)
		}
	}
	if err := writeNew(privPath, p.PrivatePEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, p.PublicPEM, 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}
