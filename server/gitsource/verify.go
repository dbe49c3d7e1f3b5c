package gitsource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// sshNamespace is the namespace git signs tags and commits in.
const sshNamespace = "git"

// Signature methods, as Policy.Method and Signer.Method name them.
const (
	MethodOpenPGP = "openpgp"
	MethodSSH     = "ssh"
)

// The heads of the two kinds of signature a tag can carry.
const (
	openPGPArmorHead = "-----BEGIN PGP SIGNATURE-----"
	sshArmorHead     = "-----BEGIN SSH SIGNATURE-----"
)

// Errors Verify returns, wrapped with which tag and why; a caller refuses
// the tag either way, and tells the two apart in what it reports.
var (
	// ErrUnsigned: the policy wants a signature and the tag has none, or is
	// a lightweight tag, which cannot have one.
	ErrUnsigned = errors.New("tag is not signed")
	// ErrUntrusted: the tag is signed, but not validly by a key the policy
	// lists.
	ErrUntrusted = errors.New("tag signature is not trusted")
)

// A Policy says whose signatures a release tag must carry. A nil *Policy
// accepts every tag.
type Policy struct {
	method  string
	keyring openpgp.EntityList
	signers []allowedSigner
}

// An allowedSigner is one line of an allowed signers file.
type allowedSigner struct {
	principals string
	key        ssh.PublicKey
}

// ParsePolicy returns the policy a configuration names: method "off" (or
// "") with no keys is nil, "openpgp" takes an armored public keyring (see
// OpenPGPPolicy), "ssh" an allowed signers file (see SSHPolicy).
func ParsePolicy(method string, keys []byte) (*Policy, error) {
	switch method {
	case "", "off":
		if len(bytes.TrimSpace(keys)) > 0 {
			return nil, fmt.Errorf("signature policy off: keys given; set the method to %s or %s", MethodOpenPGP, MethodSSH)
		}
		return nil, nil
	case MethodOpenPGP:
		return OpenPGPPolicy(keys)
	case MethodSSH:
		return SSHPolicy(keys)
	}
	return nil, fmt.Errorf("signature policy %q: want off, %s or %s", method, MethodOpenPGP, MethodSSH)
}

// OpenPGPPolicy accepts tags signed with OpenPGP by a key of keyring: one
// or more armored public keys, as "gpg --armor --export" writes them.
func OpenPGPPolicy(keyring []byte) (*Policy, error) {
	var list openpgp.EntityList
	rest := keyring
	// gpg --export of several keys writes one armored block; files written
	// by hand often concatenate several.
	for len(bytes.TrimSpace(rest)) > 0 {
		i := bytes.Index(rest, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"))
		if i < 0 {
			return nil, errors.New("openpgp keyring: no armored public key block")
		}
		end := bytes.Index(rest[i:], []byte("-----END PGP PUBLIC KEY BLOCK-----"))
		if end < 0 {
			return nil, errors.New("openpgp keyring: unterminated public key block")
		}
		end += i + len("-----END PGP PUBLIC KEY BLOCK-----")
		l, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(rest[i:end]))
		if err != nil {
			return nil, fmt.Errorf("openpgp keyring: %w", err)
		}
		list = append(list, l...)
		rest = rest[end:]
	}
	if len(list) == 0 {
		return nil, errors.New("openpgp keyring: no keys")
	}
	return &Policy{method: MethodOpenPGP, keyring: list}, nil
}

// SSHPolicy accepts tags signed with SSH by a key of allowedSigners, in the
// format of git's gpg.ssh.allowedSignersFile (ssh-keygen(1), ALLOWED
// SIGNERS): one key a line, "principals [options] keytype base64 [comment]",
// where the only option understood is namespaces="..." (which must include
// "git"). A line may also be a bare public key, "keytype base64 [comment]",
// whose principal is then its comment.
func SSHPolicy(allowedSigners []byte) (*Policy, error) {
	p := &Policy{method: MethodSSH}
	sc := bufio.NewScanner(bytes.NewReader(allowedSigners))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseAllowedSigner(line)
		if err != nil {
			return nil, fmt.Errorf("ssh allowed signers line %d: %w", n, err)
		}
		p.signers = append(p.signers, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ssh allowed signers: %w", err)
	}
	if len(p.signers) == 0 {
		return nil, errors.New("ssh allowed signers: no keys")
	}
	return p, nil
}

func parseAllowedSigner(line string) (allowedSigner, error) {
	if key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
		return allowedSigner{principals: comment, key: key}, nil
	}
	principals, rest, ok := strings.Cut(line, " ")
	if !ok {
		return allowedSigner{}, errors.New("want principals and a public key")
	}
	key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
	if err != nil {
		return allowedSigner{}, fmt.Errorf("public key: %w", err)
	}
	for _, o := range options {
		name, value, _ := strings.Cut(o, "=")
		switch strings.ToLower(name) {
		case "namespaces":
			found := false
			for ns := range strings.SplitSeq(strings.Trim(value, `"`), ",") {
				found = found || ns == sshNamespace
			}
			if !found {
				return allowedSigner{}, fmt.Errorf("namespaces %s: want %q among them", value, sshNamespace)
			}
		default:
			return allowedSigner{}, fmt.Errorf("option %s is not supported", name)
		}
	}
	return allowedSigner{principals: principals, key: key}, nil
}

// Method returns MethodOpenPGP or MethodSSH.
func (p *Policy) Method() string { return p.method }

// A Signer identifies the key that signed a tag.
type Signer struct {
	// Method is MethodOpenPGP or MethodSSH.
	Method string
	// Fingerprint is the key's: the OpenPGP primary key's in uppercase hex,
	// or the SSH key's "SHA256:..." form, as ssh-keygen -l prints it.
	Fingerprint string
	// Identity is the OpenPGP key's primary user id, or the SSH key's
	// principals from the allowed signers file.
	Identity string
}

// String returns "openpgp ABCD… (Release Bot <release@example.com>)".
func (s Signer) String() string {
	if s.Method == "" {
		return "unsigned"
	}
	if s.Identity == "" {
		return s.Method + " " + s.Fingerprint
	}
	return fmt.Sprintf("%s %s (%s)", s.Method, s.Fingerprint, s.Identity)
}

// Verify checks t against the repository's signature policy and returns
// who signed it. With no policy every tag passes with the zero Signer;
// with one, lightweight and unsigned tags are refused with ErrUnsigned, and
// tags signed the other way, by an unlisted key, with a bad signature or
// whose tag object bears another name with ErrUntrusted. A tag that does
// not name a commit is refused too.
func (r *Repo) Verify(t Tag) (Signer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.verify(t)
	if err != nil {
		return Signer{}, fmt.Errorf("verify tag %s: %w", t.Name, err)
	}
	return s, nil
}

func (r *Repo) verify(t Tag) (Signer, error) {
	if t.Commit == "" {
		return Signer{}, errors.New("tag does not name a commit")
	}
	p := r.cfg.Policy
	if p == nil {
		return Signer{}, nil
	}
	if !t.Annotated {
		return Signer{}, fmt.Errorf("%w: a lightweight tag cannot carry a signature", ErrUnsigned)
	}
	to, err := object.GetTag(r.repo.Storer, plumbing.NewHash(t.Object))
	if err != nil {
		return Signer{}, err
	}
	// A signature covers the name inside the tag object, not the reference:
	// a signed v1.0.0 pushed again as v2.0.0 must not pass as v2.0.0.
	if to.Name != t.Name {
		return Signer{}, fmt.Errorf("%w: the tag object is named %q", ErrUntrusted, to.Name)
	}
	sig := strings.TrimLeft(to.PGPSignature, "\n")
	switch {
	case sig == "":
		return Signer{}, ErrUnsigned
	case strings.HasPrefix(sig, openPGPArmorHead) && p.method == MethodOpenPGP:
	case strings.HasPrefix(sig, sshArmorHead) && p.method == MethodSSH:
	case strings.HasPrefix(sig, openPGPArmorHead):
		return Signer{}, fmt.Errorf("%w: signed with %s, the policy wants %s", ErrUntrusted, MethodOpenPGP, p.method)
	case strings.HasPrefix(sig, sshArmorHead):
		return Signer{}, fmt.Errorf("%w: signed with %s, the policy wants %s", ErrUntrusted, MethodSSH, p.method)
	default:
		return Signer{}, fmt.Errorf("%w: unknown signature format", ErrUntrusted)
	}
	// The signed bytes are the tag object without its signature, exactly as
	// stored.
	payload := &plumbing.MemoryObject{}
	if err := to.EncodeWithoutSignature(payload); err != nil {
		return Signer{}, err
	}
	msg, err := payload.Reader()
	if err != nil {
		return Signer{}, err
	}
	if p.method == MethodOpenPGP {
		return p.verifyOpenPGP(msg, sig)
	}
	return p.verifySSH(msg, sig)
}

func (p *Policy) verifyOpenPGP(msg io.Reader, sig string) (Signer, error) {
	e, err := openpgp.CheckArmoredDetachedSignature(p.keyring, msg, strings.NewReader(sig), nil)
	if err != nil {
		return Signer{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	s := Signer{Method: MethodOpenPGP, Fingerprint: fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)}
	if id := e.PrimaryIdentity(); id != nil {
		s.Identity = id.Name
	}
	return s, nil
}

func (p *Policy) verifySSH(msg io.Reader, armored string) (Signer, error) {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return Signer{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	key := sig.PublicKey.Marshal()
	for _, s := range p.signers {
		if !bytes.Equal(s.key.Marshal(), key) {
			continue
		}
		if err := sshsig.Verify(msg, sig, s.key, sig.HashAlgorithm, sshNamespace); err != nil {
			return Signer{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
		}
		return Signer{Method: MethodSSH, Fingerprint: ssh.FingerprintSHA256(s.key), Identity: s.principals}, nil
	}
	return Signer{}, fmt.Errorf("%w: signed by %s, which is not an allowed signer", ErrUntrusted, ssh.FingerprintSHA256(sig.PublicKey))
}
