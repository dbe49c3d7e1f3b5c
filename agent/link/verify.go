package link

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gitfleet/gitfleet/firmware/trust"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// dsseEnvelope and dsseSignature are DSSE's JSON envelope, field for field
// as trust.Seal writes it (github.com/secure-systems-lab/go-securesystemslib
// /dsse), declared here so the agent links no more than trust already does.
type dsseEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"`
	Signatures  []dsseSignature `json:"signatures"`
}

type dsseSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// verify checks the signatures of m with v: at least v.Threshold distinct
// keys of v's role must have signed m.SigningBytes(). A SignedMessage is a
// DSSE envelope in protobuf clothes — its signatures cover DSSE's PAE of the
// same payload type and payload — so verify re-dresses it as the canonical
// JSON envelope that trust.Verifier checks, and the threshold, key-id and
// expiry rules stay in one place. The error carries the wire code of the
// failure (bad signature, untrusted key, threshold, expired root).
func verify(ctx context.Context, v *trust.Verifier, m *gitfleetv1.SignedMessage) error {
	env := dsseEnvelope{
		PayloadType: m.GetPayloadType(),
		Payload:     base64.StdEncoding.EncodeToString(m.GetPayload()),
		Signatures:  []dsseSignature{},
	}
	for _, s := range m.GetSignatures() {
		env.Signatures = append(env.Signatures, dsseSignature{KeyID: s.GetKeyId(), Sig: base64.StdEncoding.EncodeToString(s.GetSig())})
	}
	b, err := json.Marshal(env)
	if err != nil {
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE, fmt.Errorf("verify: %w", err))
	}
	if _, err := v.Verify(ctx, m.GetPayloadType(), b); err != nil {
		return gitfleetv1.WithCode(trustCode(err), fmt.Errorf("verify: %w", err))
	}
	return nil
}

// trustCode returns the wire code of an error of trust.Verifier.Verify.
func trustCode(err error) gitfleetv1.ErrorCode {
	switch {
	case errors.Is(err, trust.ErrUntrustedKey):
		return gitfleetv1.ErrorCode_ERROR_CODE_UNTRUSTED_KEY
	case errors.Is(err, trust.ErrThreshold):
		return gitfleetv1.ErrorCode_ERROR_CODE_THRESHOLD_NOT_MET
	case errors.Is(err, trust.ErrExpired):
		return gitfleetv1.ErrorCode_ERROR_CODE_EXPIRED
	}
	return gitfleetv1.ErrorCode_ERROR_CODE_BAD_SIGNATURE
}
