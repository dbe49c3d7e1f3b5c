package gitfleetv1

import (
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeDeviceMessages(t *testing.T) {
	status, event := validDeviceStatus(), validDeviceEvent()
	decodeStatus := func(b []byte) (proto.Message, error) { return DecodeDeviceStatus(b) }
	decodeEvent := func(b []byte) (proto.Message, error) { return DecodeDeviceEvent(b) }
	tests := []struct {
		name     string
		decode   func([]byte) (proto.Message, error)
		in       []byte
		want     proto.Message
		wantErr  string
		wantCode ErrorCode
	}{
		{name: "status", decode: decodeStatus, in: mustMarshal(t, status), want: status},
		{name: "event", decode: decodeEvent, in: mustMarshal(t, event), want: event},
		{
			name:   "status with a field from a newer agent",
			decode: decodeStatus,
			// Field 1000, varint 1: unknown here, and kept.
			in:   append(mustMarshal(t, status), 0xc0, 0x3e, 0x01),
			want: status,
		},
		{
			name:     "status oversized",
			decode:   decodeStatus,
			in:       make([]byte, MaxMessageSize+1),
			wantErr:  "decode DeviceStatus: 131073 bytes, over the limit of 131072",
			wantCode: ErrorCode_ERROR_CODE_OVERSIZED,
		},
		{
			name:     "event truncated",
			decode:   decodeEvent,
			in:       mustMarshal(t, event)[:10],
			wantErr:  "decode DeviceEvent: proto:",
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:   "status with invalid UTF-8",
			decode: decodeStatus,
			// Field 1 (device_id), 2 bytes: "\xff\xfe".
			in:       []byte{0x0a, 0x02, 0xff, 0xfe},
			wantErr:  "decode DeviceStatus: string field contains invalid UTF-8",
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:     "empty status",
			decode:   decodeStatus,
			in:       nil,
			wantErr:  "invalid DeviceStatus: device_id: empty",
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
		{
			name:     "event without sequence",
			decode:   decodeEvent,
			in:       mustMarshal(t, &DeviceEvent{DeviceId: "dev-1", StreamId: "s"}),
			wantErr:  "invalid DeviceEvent: sequence: zero",
			wantCode: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.decode(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				if code := ErrorCodeOf(err); code != tt.wantCode {
					t.Errorf("got code %v, want %v", code, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform(), protocmp.IgnoreUnknown()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchTopic(t *testing.T) {
	channel := topic.Topic{Kind: topic.KindChannel, Fleet: "acme", Channel: "production"}
	desired := topic.Topic{Kind: topic.KindDesired, Fleet: "acme", Device: "dev-1"}
	status := topic.Topic{Kind: topic.KindStatus, Fleet: "acme", Device: "dev-1"}
	events := topic.Topic{Kind: topic.KindEvents, Fleet: "acme", Device: "dev-1"}
	with := func(t topic.Topic, edit func(*topic.Topic)) topic.Topic {
		edit(&t)
		return t
	}
	tests := []struct {
		name    string
		topic   topic.Topic
		msg     proto.Message
		wantErr string
	}{
		{name: "channel state", topic: channel, msg: validChannelState()},
		{name: "desired state", topic: desired, msg: validDesiredState()},
		{name: "status", topic: status, msg: validDeviceStatus()},
		{name: "status in any fleet", topic: with(status, func(t *topic.Topic) { t.Fleet = "other" }), msg: validDeviceStatus()},
		{name: "event", topic: events, msg: validDeviceEvent()},
		{
			name:    "channel state of another channel",
			topic:   with(channel, func(t *topic.Topic) { t.Channel = "staging" }),
			msg:     validChannelState(),
			wantErr: `ChannelState for "gitfleet/v1/acme/channels/production" arrived on "gitfleet/v1/acme/channels/staging"`,
		},
		{
			name:    "channel state of another fleet",
			topic:   with(channel, func(t *topic.Topic) { t.Fleet = "other" }),
			msg:     validChannelState(),
			wantErr: `ChannelState for "gitfleet/v1/acme/channels/production" arrived on "gitfleet/v1/other/channels/production"`,
		},
		{
			name:    "desired state of another device",
			topic:   with(desired, func(t *topic.Topic) { t.Device = "dev-2" }),
			msg:     validDesiredState(),
			wantErr: `DesiredState for "gitfleet/v1/acme/devices/dev-1/desired" arrived on "gitfleet/v1/acme/devices/dev-2/desired"`,
		},
		{
			name:    "status of another device",
			topic:   with(status, func(t *topic.Topic) { t.Device = "dev-2" }),
			msg:     validDeviceStatus(),
			wantErr: `DeviceStatus for "gitfleet/v1/acme/devices/dev-1/status" arrived on "gitfleet/v1/acme/devices/dev-2/status"`,
		},
		{
			name:    "event on the status topic",
			topic:   status,
			msg:     validDeviceEvent(),
			wantErr: `DeviceEvent for "gitfleet/v1/acme/devices/dev-1/events" arrived on "gitfleet/v1/acme/devices/dev-1/status"`,
		},
		{
			name:    "channel state on a desired topic",
			topic:   desired,
			msg:     validChannelState(),
			wantErr: `ChannelState for "gitfleet/v1/acme/channels/production" arrived on "gitfleet/v1/acme/devices/dev-1/desired"`,
		},
		{
			name:    "envelope",
			topic:   channel,
			msg:     &SignedMessage{},
			wantErr: "match topic gitfleet/v1/acme/channels/production: *gitfleetv1.SignedMessage is not a gitfleet wire message",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := MatchTopic(tt.topic, tt.msg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %q, want none", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("got error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
