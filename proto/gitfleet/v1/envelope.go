package gitfleetv1

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
)

// Payload types of the messages that travel in a SignedMessage. Each names the
// message and its encoding; being signed, it keeps a signature over one kind
// of message from being accepted as another.
const (
	PayloadTypeChannelState = "application/vnd.gitfleet.channel-state.v1+protobuf"
	PayloadTypeDesiredState = "application/vnd.gitfleet.desired-state.v1+protobuf"
)

// paeMagic begins every pre-authentication encoding. It is DSSE's, so the
// signatures can also be checked by DSSE tooling.
const paeMagic = "DSSEv1"

// PAE returns the bytes that the signatures of a SignedMessage with
// payloadType and payload cover: DSSE's pre-authentication encoding,
//
//	"DSSEv1" SP LEN(payloadType) SP payloadType SP LEN(payload) SP payload
//
// where SP is one space and LEN is a length in bytes, in ASCII decimal without
// leading zeros. Spelling out both lengths means no two pairs of payload type
// and payload encode to the same bytes. Signer and verifier both call PAE, on
// the payload bytes as they travel, never on a re-serialized message.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len(paeMagic)+len(payloadType)+len(payload)+2*20+4)
	b = append(b, paeMagic...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// SigningBytes returns the bytes m's signatures cover: PAE of its payload type
// and payload.
func (m *SignedMessage) SigningBytes() []byte {
	return PAE(m.GetPayloadType(), m.GetPayload())
}

// NewSignedMessage returns an envelope, with no signatures yet, carrying m,
// which must be a valid *ChannelState or *DesiredState. The payload is m
// serialized deterministically; the signer then appends signatures over
// SigningBytes.
func NewSignedMessage(m proto.Message) (*SignedMessage, error) {
	var payloadType string
	var err error
	switch m := m.(type) {
	case *ChannelState:
		payloadType, err = PayloadTypeChannelState, m.Validate()
	case *DesiredState:
		payloadType, err = PayloadTypeDesiredState, m.Validate()
	default:
		return nil, fmt.Errorf("sign %T: only ChannelState and DesiredState travel signed", m)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sign: marshal %s: %w", payloadType, err)
	}
	return &SignedMessage{PayloadType: payloadType, Payload: payload}, nil
}

// DecodeSignedMessage decodes b, the payload of an MQTT message on a channel
// or desired topic, and validates the envelope. It does not verify the
// signatures: the caller does that over SigningBytes before decoding the
// payload with DecodeChannelState or DecodeDesiredState.
func DecodeSignedMessage(b []byte) (*SignedMessage, error) {
	m := new(SignedMessage)
	if err := decode(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeChannelState decodes and validates the ChannelState that env carries.
// Decoding checks form, not authority: call it only after verifying env's
// signatures.
func DecodeChannelState(env *SignedMessage) (*ChannelState, error) {
	m := new(ChannelState)
	if err := decodePayload(env, PayloadTypeChannelState, m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeDesiredState decodes and validates the DesiredState that env carries.
// Decoding checks form, not authority: call it only after verifying env's
// signatures.
func DecodeDesiredState(env *SignedMessage) (*DesiredState, error) {
	m := new(DesiredState)
	if err := decodePayload(env, PayloadTypeDesiredState, m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodePayload decodes env's payload into m after checking that env says it
// carries payloadType.
func decodePayload(env *SignedMessage, payloadType string, m message) error {
	if got := env.GetPayloadType(); got != payloadType {
		return WithCode(ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
			fmt.Errorf("decode %s: envelope carries %q", messageName(m), got))
	}
	return decode(env.GetPayload(), m)
}
