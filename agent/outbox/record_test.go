package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

func validPayload(t testing.TB) []byte {
	t.Helper()
	b, err := proto.Marshal(&gitfleetv1.DeviceEvent{
		DeviceId: "device-1", StreamId: "0123abcd", Sequence: 7, ToState: "checking",
		Time: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	payload := validPayload(t)
	got, ev, err := decodeRecord(encodeRecord(payload))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("payload = %x, want %x", got, payload)
	}
	if got, want := ev.GetSequence(), uint64(7); got != want {
		t.Errorf("sequence = %d, want %d", got, want)
	}
}

func TestDecodeRecordRefuses(t *testing.T) {
	payload := validPayload(t)
	good := encodeRecord(payload)
	with := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	invalidEvent, err := proto.Marshal(&gitfleetv1.DeviceEvent{DeviceId: "device-1"}) // no stream, sequence...
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"zeros, as a cut can leave", make([]byte, 64)},
		{"header only", good[:headerSize]},
		{"cut in the header", good[:5]},
		{"cut in the payload", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"bad magic", with(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"flipped payload bit", with(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })},
		{"flipped CRC bit", with(func(b []byte) []byte { b[8] ^= 0x80; return b })},
		{"length over the limit", with(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[4:8], gitfleetv1.MaxMessageSize+1)
			return b
		})},
		{"valid framing, invalid event", encodeRecord(invalidEvent)},
		{"valid framing, not protobuf", encodeRecord([]byte{0xff, 0xff, 0xff})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeRecord(tc.b)
			if !errors.Is(err, errCorrupt) {
				t.Errorf("decodeRecord = %v, want an error wrapping %v", err, errCorrupt)
			}
		})
	}
}

func TestRecordName(t *testing.T) {
	for _, tc := range []struct {
		stream string
		seq    uint64
	}{
		{"0123abcd", 1},
		{"a/b/../c", 42},
		{"ünïcode-stream", 1<<64 - 1},
	} {
		name := recordName(tc.stream, tc.seq)
		key, seq, ok := parseRecordName(name)
		if !ok || key != streamKey(tc.stream) || seq != tc.seq {
			t.Errorf("parseRecordName(%q) = %q, %d, %v, want %q, %d, true", name, key, seq, ok, streamKey(tc.stream), tc.seq)
		}
	}
	if a, b := recordName("s", 9), recordName("s", 10); a >= b {
		t.Errorf("%q sorts after %q", a, b)
	}
	for _, name := range []string{
		"delivered.json", "e-", "e-0123456789abcdef-00000000000000000000", // sequence 0
		"e-0123456789ABCDEF-00000000000000000001", "e-0123456789abcdef-0000000000000000001",
		"e-0123456789abcdef-00000000000000000001.corrupt", ".e-0123456789abcdef-00000000000000000001.tmp-1",
	} {
		if _, _, ok := parseRecordName(name); ok {
			t.Errorf("parseRecordName(%q) accepted it", name)
		}
	}
}

// FuzzDecodeRecord checks that no byte string makes the record parser
// panic, that whatever it accepts is a valid event that it would encode to
// the same bytes, and that every valid payload survives a round trip.
func FuzzDecodeRecord(f *testing.F) {
	payload := validPayload(f)
	f.Add(encodeRecord(payload))
	f.Add(encodeRecord(payload)[:20])
	f.Add([]byte(magic))
	f.Add(make([]byte, headerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ev, err := decodeRecord(b)
		if err == nil {
			if verr := ev.Validate(); verr != nil {
				t.Fatalf("accepted an invalid event: %v", verr)
			}
			if got := encodeRecord(p); !bytes.Equal(got, b) {
				t.Fatalf("accepted %x, which encodes back to %x", b, got)
			}
		}
		// b as a payload: a valid event must come back out unchanged.
		if _, derr := gitfleetv1.DecodeDeviceEvent(b); derr == nil {
			got, _, err := decodeRecord(encodeRecord(b))
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("round trip of a valid event: %v", err)
			}
		}
	})
}
