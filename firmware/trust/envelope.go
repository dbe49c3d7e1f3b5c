package trust

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/gitfleet/gitfleet/firmware/keys"
)

// MaxEnvelope bounds the size of a signed envelope a Verifier reads.
const MaxEnvelope = 8 << 20

// Errors a caller decides on. Each is wrapped with the detail of what failed.
var (
	// ErrBadSignature: a signature by a trusted key does not verify, or the
	// envelope has none.
	ErrBadSignature = errors.New("bad signature")
	// ErrUntrustedKey: the envelope is signed only by keys the policy does
	// not trust.
	ErrUntrustedKey = errors.New("untrusted key")
	// ErrThreshold: some trusted keys signed, but fewer than the threshold.
	ErrThreshold = errors.New("signature threshold not met")
	// ErrExpired: the metadata that vouches for the keys has expired.
	ErrExpired = errors.New("metadata expired")
	// ErrMalformed: the envelope is not a canonical DSSE envelope.
	ErrMalformed = errors.New("malformed envelope")
)

// Seal signs payload with every signer and returns the DSSE envelope in its
// canonical JSON encoding (what Verifier.Verify accepts).
func Seal(ctx context.Context, payloadType string, payload []byte, signers ...*keys.Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("seal: no signing key")
	}
	env := dsse.Envelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
	}
	pae := dsse.PAE(payloadType, payload)
	for _, s := range signers {
		if slices.ContainsFunc(env.Signatures, func(sig dsse.Signature) bool { return sig.KeyID == s.ID }) {
			return nil, fmt.Errorf("seal: key %s given twice", short(s.ID))
		}
		sig, err := s.SignMessage(bytes.NewReader(pae), options.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("seal: sign with key %s: %w", short(s.ID), err)
		}
		env.Signatures = append(env.Signatures, dsse.Signature{KeyID: s.ID, Sig: base64.StdEncoding.EncodeToString(sig)})
	}
	return json.Marshal(env)
}

// A Verifier opens envelopes signed by at least Threshold of its keys.
type Verifier struct {
	// Role names the policy in errors, e.g. "targets".
	Role      string
	Threshold int
	// Expires, if not zero, is when the metadata that vouches for the keys
	// stops vouching; Verify refuses from then on.
	Expires time.Time
	// Now returns the current time; nil means time.Now.
	Now  func() time.Time
	keys map[string]signature.Verifier
}

// NewVerifier returns a Verifier trusting pubs with the given threshold.
func NewVerifier(role string, threshold int, pubs ...any) (*Verifier, error) {
	v := &Verifier{Role: role, Threshold: threshold, keys: map[string]signature.Verifier{}}
	for _, pub := range pubs {
		id, err := keys.ID(pub)
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", role, err)
		}
		sv, err := keys.Verifier(pub)
		if err != nil {
			return nil, fmt.Errorf("%s key %s: %w", role, short(id), err)
		}
		v.keys[id] = sv
	}
	if threshold < 1 || threshold > len(v.keys) {
		return nil, fmt.Errorf("%s role: threshold %d with %d distinct keys", role, threshold, len(v.keys))
	}
	return v, nil
}

// KeyIDs returns the ids of the trusted keys, sorted.
func (v *Verifier) KeyIDs() []string {
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Verify checks that envelope is a canonical DSSE envelope of payloadType
// signed by at least Threshold distinct trusted keys, and returns its payload.
//
// The envelope must be byte for byte the canonical encoding Seal writes, and
// every signature must name its key: so no flipped byte anywhere in it can
// leave it accepted, and one key cannot count twice.
func (v *Verifier) Verify(ctx context.Context, payloadType string, envelope []byte) ([]byte, error) {
	env, payload, sigs, err := decodeEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	if env.PayloadType != payloadType {
		return nil, fmt.Errorf("%w: payload type %q, want %q", ErrMalformed, env.PayloadType, payloadType)
	}
	if !v.Expires.IsZero() {
		if now := v.now(); !now.Before(v.Expires) {
			return nil, fmt.Errorf("%w: %s keys were vouched for until %s", ErrExpired, v.Role, v.Expires.UTC().Format(time.RFC3339))
		}
	}
	pae := dsse.PAE(env.PayloadType, payload)
	valid := map[string]bool{}
	var untrusted, bad []string
	for i, s := range env.Signatures {
		sv, ok := v.keys[s.KeyID]
		if !ok {
			untrusted = append(untrusted, short(s.KeyID))
			continue
		}
		if valid[s.KeyID] {
			continue
		}
		if err := sv.VerifySignature(bytes.NewReader(sigs[i]), bytes.NewReader(pae), options.WithContext(ctx)); err != nil {
			bad = append(bad, short(s.KeyID))
			continue
		}
		valid[s.KeyID] = true
	}
	switch {
	case len(valid) >= v.Threshold:
		return payload, nil
	case len(valid) > 0:
		return nil, fmt.Errorf("%w: %d valid %s signature(s) of %d required", ErrThreshold, len(valid), v.Role, v.Threshold)
	case len(bad) > 0:
		return nil, fmt.Errorf("%w: signature by %s key %s does not verify", ErrBadSignature, v.Role, bad[0])
	case len(untrusted) > 0:
		return nil, fmt.Errorf("%w: signed by key %s, which is not a trusted %s key", ErrUntrustedKey, untrusted[0], v.Role)
	}
	return nil, fmt.Errorf("%w: envelope has no signatures", ErrBadSignature)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// decodeEnvelope parses a DSSE envelope and insists that it is exactly the
// canonical encoding of what it decodes to: Go's JSON decoder matches field
// names case-insensitively and base64 decoders may ignore padding bits, so
// without this check a flipped bit could leave the meaning unchanged.
func decodeEnvelope(data []byte) (*dsse.Envelope, []byte, [][]byte, error) {
	if err := checkEnvelopeSize(data); err != nil {
		return nil, nil, nil, err
	}
	var env dsse.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// Only Go's own encoding of env is accepted, which also refuses unknown
	// fields, other spellings of keys, repeated keys and whitespace.
	canon, err := json.Marshal(env)
	if err != nil || !bytes.Equal(canon, data) {
		return nil, nil, nil, fmt.Errorf("%w: not in canonical form (unknown or misspelt fields, whitespace)", ErrMalformed)
	}
	payload, err := strictBase64(env.Payload)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sigs := make([][]byte, len(env.Signatures))
	for i, s := range env.Signatures {
		if s.KeyID == "" {
			return nil, nil, nil, fmt.Errorf("%w: signature %d names no key", ErrMalformed, i)
		}
		if sigs[i], err = strictBase64(s.Sig); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: signature %d: %v", ErrMalformed, i, err)
		}
	}
	return &env, payload, sigs, nil
}

// checkEnvelopeSize refuses an envelope larger than MaxEnvelope.
func checkEnvelopeSize(envelope []byte) error {
	if len(envelope) > MaxEnvelope {
		return fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrMalformed, len(envelope), MaxEnvelope)
	}
	return nil
}

// strictBase64 decodes the one standard base64 spelling of some bytes:
// padded, zero padding bits (Strict), and none of the line breaks the
// decoder would skip.
func strictBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("base64 not in canonical form: line breaks")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// short abbreviates a key id for messages.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// A Sealer signs with every one of its keys. It is what bundle.Create takes.
type Sealer []*keys.Signer

// Sign seals payload with every key of s (see Seal).
func (s Sealer) Sign(ctx context.Context, payloadType string, payload []byte) ([]byte, error) {
	return Seal(ctx, payloadType, payload, s...)
}

// Payload returns an envelope's payload WITHOUT verifying anything, not
// even that the envelope is canonical: for finding where the things a
// payload describes are (where a bundle's images start in its file),
// never for acting on it. It costs about the payload's size in memory,
// where Inspect's canonical checks cost several times the envelope's.
func Payload(envelope []byte) ([]byte, error) {
	if err := checkEnvelopeSize(envelope); err != nil {
		return nil, err
	}
	var env struct {
		Payload []byte `json:"payload"` // standard base64, as in DSSE
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return env.Payload, nil
}

// Inspect decodes a canonical envelope WITHOUT verifying any signature and
// returns its payload type, payload and the key ids of its signatures. It
// is for showing what a bundle claims; never act on its result.
func Inspect(envelope []byte) (payloadType string, payload []byte, keyIDs []string, err error) {
	env, payload, _, err := decodeEnvelope(envelope)
	if err != nil {
		return "", nil, nil, err
	}
	for _, s := range env.Signatures {
		keyIDs = append(keyIDs, s.KeyID)
	}
	return env.PayloadType, payload, keyIDs, nil
}
