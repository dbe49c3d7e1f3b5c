package gitfleetv1

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// TestPAE pins the bytes that signatures cover. These goldens must never
// change: every signature made in the field depends on them.
func TestPAE(t *testing.T) {
	tests := []struct {
		name        string
		payloadType string
		payload     []byte
		wantHex     string
	}{
		{
			// The example in DSSE's protocol.md.
			name:        "DSSE example",
			payloadType: "http://example.com/HelloWorld",
			payload:     []byte("hello world"),
			wantHex:     hex.EncodeToString([]byte("DSSEv1 29 http://example.com/HelloWorld 11 hello world")),
		},
		{
			name:        "channel state",
			payloadType: PayloadTypeChannelState,
			payload:     []byte{0x18, 0x07}, // sequence: 7
			wantHex: "445353457631203530206170706c69636174696f6e2f766e642e676974666c6565742e6368616e6e656c2d" +
				"73746174652e76312b70726f746f6275662032201807",
		},
		{
			name:    "empty",
			wantHex: "445353457631203020203020", // "DSSEv1 0  0 "
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(PAE(tt.payloadType, tt.payload))
			if got != tt.wantHex {
				t.Errorf("got  %s\nwant %s", got, tt.wantHex)
			}
		})
	}
}

// TestPAEIsInjective checks that moving bytes between payload type and
// payload changes what is signed.
func TestPAEIsInjective(t *testing.T) {
	a := PAE("ab", []byte("c"))
	b := PAE("a", []byte("bc"))
	if bytes.Equal(a, b) {
		t.Errorf("PAE(%q, %q) = PAE(%q, %q) = %q", "ab", "c", "a", "bc", a)
	}
}

func TestSigningBytes(t *testing.T) {
	m := &SignedMessage{PayloadType: PayloadTypeDesiredState, Payload: []byte("x"), Signatures: []*Signature{{KeyId: "k", Sig: []byte("s")}}}
	if got, want := m.SigningBytes(), PAE(PayloadTypeDesiredState, []byte("x")); !bytes.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	var nilMsg *SignedMessage
	if got, want := nilMsg.SigningBytes(), []byte("DSSEv1 0  0 "); !bytes.Equal(got, want) {
		t.Errorf("nil message: got %q, want %q", got, want)
	}
}

func TestNewSignedMessage(t *testing.T) {
	tests := []struct {
		name            string
		msg             proto.Message
		wantPayloadType string
		wantErr         string
	}{
		{name: "channel state", msg: validChannelState(), wantPayloadType: PayloadTypeChannelState},
		{name: "desired state", msg: validDesiredState(), wantPayloadType: PayloadTypeDesiredState},
		{name: "status", msg: validDeviceStatus(), wantErr: "sign *gitfleetv1.DeviceStatus: only ChannelState and DesiredState travel signed"},
		{name: "invalid channel state", msg: &ChannelState{Fleet: "acme"}, wantErr: "sign: invalid ChannelState: channel: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewSignedMessage(tt.msg)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GetPayloadType() != tt.wantPayloadType {
				t.Errorf("got payload type %q, want %q", got.GetPayloadType(), tt.wantPayloadType)
			}
			if len(got.GetSignatures()) != 0 {
				t.Errorf("got %d signatures, want none", len(got.GetSignatures()))
			}
			again, err := NewSignedMessage(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.GetPayload(), again.GetPayload()) {
				t.Errorf("payload differs between two calls: %x, then %x", got.GetPayload(), again.GetPayload())
			}
		})
	}
}

// sign appends a fake signature to env, enough for the envelope to validate.
func sign(t *testing.T, env *SignedMessage) []byte {
	t.Helper()
	env.Signatures = append(env.Signatures, &Signature{KeyId: "online-1", Sig: []byte("sig")})
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignedRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		msg    proto.Message
		decode func(*SignedMessage) (proto.Message, error)
	}{
		{
			name:   "channel state",
			msg:    validChannelState(),
			decode: func(e *SignedMessage) (proto.Message, error) { return DecodeChannelState(e) },
		},
		{
			name:   "desired state",
			msg:    validDesiredState(),
			decode: func(e *SignedMessage) (proto.Message, error) { return DecodeDesiredState(e) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := NewSignedMessage(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			gotEnv, err := DecodeSignedMessage(sign(t, env))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.decode(gotEnv)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.msg, got, protocmp.Transform()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSignedPayloadErrors(t *testing.T) {
	channelEnv, err := NewSignedMessage(validChannelState())
	if err != nil {
		t.Fatal(err)
	}
	desiredEnv, err := NewSignedMessage(validDesiredState())
	if err != nil {
		t.Fatal(err)
	}
	invalid, err := proto.Marshal(&ChannelState{Fleet: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		decode   func(*SignedMessage) error
		env      *SignedMessage
		wantErr  string
		wantCode ErrorCode
	}{
		{
			name:     "desired state as channel state",
			decode:   func(e *SignedMessage) error { _, err := DecodeChannelState(e); return err },
			env:      desiredEnv,
			wantErr:  `decode ChannelState: envelope carries "application/vnd.gitfleet.desired-state.v1+protobuf"`,
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:     "channel state as desired state",
			decode:   func(e *SignedMessage) error { _, err := DecodeDesiredState(e); return err },
			env:      channelEnv,
			wantErr:  `decode DesiredState: envelope carries "application/vnd.gitfleet.channel-state.v1+protobuf"`,
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:     "garbage payload",
			decode:   func(e *SignedMessage) error { _, err := DecodeChannelState(e); return err },
			env:      &SignedMessage{PayloadType: PayloadTypeChannelState, Payload: []byte{0xff}},
			wantErr:  "decode ChannelState: proto:",
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:     "invalid payload",
			decode:   func(e *SignedMessage) error { _, err := DecodeChannelState(e); return err },
			env:      &SignedMessage{PayloadType: PayloadTypeChannelState, Payload: invalid},
			wantErr:  "invalid ChannelState: channel: empty",
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:     "nil envelope",
			decode:   func(e *SignedMessage) error { _, err := DecodeDesiredState(e); return err },
			wantErr:  `decode DesiredState: envelope carries ""`,
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if got := ErrorCodeOf(err); got != tt.wantCode {
				t.Errorf("got code %v, want %v", got, tt.wantCode)
			}
		})
	}
}
