package gitfleetv1

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// fuzzDecode fuzzes decode, a decoder of outside bytes, from seeds. Decoding
// must never panic; a failure must be one line with a MALFORMED or OVERSIZED
// code; and a message that decodes must survive a marshal and decode round
// trip, so what one peer accepts another accepts too.
func fuzzDecode[M proto.Message](f *testing.F, seeds []proto.Message, decode func([]byte) (M, error)) {
	f.Helper()
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q is not one line", err)
			}
			switch code := ErrorCodeOf(err); code {
			case ErrorCode_ERROR_CODE_MALFORMED_MESSAGE, ErrorCode_ERROR_CODE_OVERSIZED:
			default:
				t.Fatalf("error %q has code %v, want MALFORMED_MESSAGE or OVERSIZED", err, code)
			}
			return
		}
		again, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("marshal decoded %T: %v", m, err)
		}
		if _, err := decode(again); err != nil {
			t.Fatalf("decode of re-marshaled %T: %v", m, err)
		}
	})
}

// FuzzDecodeSignedMessage fuzzes the envelope read off channel and desired
// topics.
func FuzzDecodeSignedMessage(f *testing.F) {
	var seeds []proto.Message
	for _, m := range []proto.Message{validChannelState(), validDesiredState()} {
		env, err := NewSignedMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		env.Signatures = []*Signature{{KeyId: "online-1", Sig: make([]byte, 64)}}
		seeds = append(seeds, env)
	}
	fuzzDecode(f, seeds, DecodeSignedMessage)
}

// FuzzDecodeChannelState fuzzes the payload of a channel state envelope.
func FuzzDecodeChannelState(f *testing.F) {
	fuzzDecode(f, []proto.Message{validChannelState()}, func(b []byte) (*ChannelState, error) {
		return DecodeChannelState(&SignedMessage{PayloadType: PayloadTypeChannelState, Payload: b})
	})
}

// FuzzDecodeDesiredState fuzzes the payload of a desired state envelope.
func FuzzDecodeDesiredState(f *testing.F) {
	fuzzDecode(f, []proto.Message{validDesiredState()}, func(b []byte) (*DesiredState, error) {
		return DecodeDesiredState(&SignedMessage{PayloadType: PayloadTypeDesiredState, Payload: b})
	})
}

// FuzzDecodeDeviceStatus fuzzes what the server reads off status topics.
func FuzzDecodeDeviceStatus(f *testing.F) {
	will := &DeviceStatus{DeviceId: "dev-1", ProtocolVersion: ProtocolVersion}
	fuzzDecode(f, []proto.Message{validDeviceStatus(), will}, DecodeDeviceStatus)
}

// FuzzDecodeDeviceEvent fuzzes what the server reads off events topics.
func FuzzDecodeDeviceEvent(f *testing.F) {
	fuzzDecode(f, []proto.Message{validDeviceEvent()}, DecodeDeviceEvent)
}
