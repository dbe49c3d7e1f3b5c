package topic

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr string // a substring of the error; "" when id is valid
	}{
		{name: "plain", id: "rpi4-0001"},
		{name: "dots colons underscores", id: "acme.prod_eu:01"},
		{name: "uuid", id: "0b8f0e5c-1c5e-4a59-9a42-3a1f1f6a5d0e"},
		{name: "mac address", id: "b8:27:eb:12:34:56"},
		{name: "non-ASCII letters", id: "gerät-ü1"},
		{name: "mosquitto username pattern", id: "%u"},
		{name: "dollar", id: "$fleet"},
		{name: "at the limit", id: strings.Repeat("a", MaxIDLen)},
		{name: "empty", id: "", wantErr: "empty"},
		{name: "over the limit", id: strings.Repeat("a", MaxIDLen+1), wantErr: "129 bytes, over the limit of 128"},
		{name: "multi-byte over the limit", id: strings.Repeat("é", 65), wantErr: "130 bytes"},
		{name: "slash", id: "a/b", wantErr: `contains '/'`},
		{name: "plus", id: "a+b", wantErr: `contains '+'`},
		{name: "hash", id: "a#b", wantErr: `contains '#'`},
		{name: "lone plus", id: "+", wantErr: `contains '+'`},
		{name: "NUL", id: "a\x00b", wantErr: "contains U+0000"},
		{name: "newline", id: "a\nb", wantErr: "contains U+000A"},
		{name: "escape", id: "\x1b[31mred", wantErr: "contains U+001B"},
		{name: "DEL", id: "a\x7f", wantErr: "contains U+007F"},
		{name: "C1 control", id: "a\u0085", wantErr: "contains U+0085"},
		{name: "space", id: "a b", wantErr: "contains U+0020"},
		{name: "no-break space", id: "a\u00a0b", wantErr: "contains U+00A0"},
		{name: "non-character FFFE", id: "a\ufffe", wantErr: "contains U+FFFE"},
		{name: "non-character FDD0", id: "a\ufdd0", wantErr: "contains U+FDD0"},
		{name: "non-character plane 16", id: "a\U0010ffff", wantErr: "contains U+10FFFF"},
		{name: "invalid UTF-8", id: "a\xffb", wantErr: "not valid UTF-8"},
		{name: "surrogate half", id: "a\xed\xa0\x80", wantErr: "not valid UTF-8"},
		{name: "dot", id: ".", wantErr: `"." is not allowed`},
		{name: "dot dot", id: "..", wantErr: `".." is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckID(tt.id), tt.wantErr)
		})
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		build   func(fleet, id string) (string, error)
		fleet   string
		id      string
		want    string
		wantErr string
	}{
		{name: "channel", build: Channel, fleet: "acme", id: "production", want: "gitfleet/v1/acme/channels/production"},
		{name: "desired", build: Desired, fleet: "acme", id: "dev-1", want: "gitfleet/v1/acme/devices/dev-1/desired"},
		{name: "status", build: Status, fleet: "acme", id: "dev-1", want: "gitfleet/v1/acme/devices/dev-1/status"},
		{name: "events", build: Events, fleet: "acme", id: "dev-1", want: "gitfleet/v1/acme/devices/dev-1/events"},
		{name: "ACL pattern", build: Status, fleet: "acme", id: "%u", want: "gitfleet/v1/acme/devices/%u/status"},
		{name: "channel bad fleet", build: Channel, fleet: "ac/me", id: "production", wantErr: `channel topic: fleet: "ac/me" contains '/'`},
		{name: "channel bad channel", build: Channel, fleet: "acme", id: "prod#", wantErr: `channel topic: channel: "prod#" contains '#'`},
		{name: "desired empty device", build: Desired, fleet: "acme", id: "", wantErr: "desired topic: device: empty"},
		{name: "status wildcard device", build: Status, fleet: "acme", id: "+", wantErr: `status topic: device: "+" contains '+'`},
		{name: "events empty fleet", build: Events, fleet: "", id: "dev-1", wantErr: "events topic: fleet: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.build(tt.fleet, tt.id)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTopicName(t *testing.T) {
	tests := []struct {
		name    string
		topic   Topic
		wantErr string
	}{
		{name: "channel with device", topic: Topic{Kind: KindChannel, Fleet: "acme", Channel: "beta", Device: "dev-1"}, wantErr: `channel topic: device "dev-1" given for a channel topic`},
		{name: "device with channel", topic: Topic{Kind: KindStatus, Fleet: "acme", Channel: "beta", Device: "dev-1"}, wantErr: `status topic: channel "beta" given for a device topic`},
		{name: "zero kind", topic: Topic{Fleet: "acme", Device: "dev-1"}, wantErr: "Kind(0) topic: unknown kind"},
		{name: "unknown kind", topic: Topic{Kind: 9, Fleet: "acme", Device: "dev-1"}, wantErr: "Kind(9) topic: unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.topic.Name()
			checkErr(t, err, tt.wantErr)
			if got != "" {
				t.Errorf("got %q, want no name", got)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		want    Topic
		wantErr string
	}{
		{name: "channel", topic: "gitfleet/v1/acme/channels/production", want: Topic{Kind: KindChannel, Fleet: "acme", Channel: "production"}},
		{name: "desired", topic: "gitfleet/v1/acme/devices/dev-1/desired", want: Topic{Kind: KindDesired, Fleet: "acme", Device: "dev-1"}},
		{name: "status", topic: "gitfleet/v1/acme/devices/dev-1/status", want: Topic{Kind: KindStatus, Fleet: "acme", Device: "dev-1"}},
		{name: "events", topic: "gitfleet/v1/acme/devices/dev-1/events", want: Topic{Kind: KindEvents, Fleet: "acme", Device: "dev-1"}},
		{name: "channel named devices", topic: "gitfleet/v1/acme/channels/devices", want: Topic{Kind: KindChannel, Fleet: "acme", Channel: "devices"}},
		{name: "device named status", topic: "gitfleet/v1/acme/devices/status/status", want: Topic{Kind: KindStatus, Fleet: "acme", Device: "status"}},
		{name: "empty", topic: "", wantErr: `parse topic "": not under "gitfleet/v1/"`},
		{name: "other project", topic: "homie/5/dev/$state", wantErr: `not under "gitfleet/v1/"`},
		{name: "leading slash", topic: "/gitfleet/v1/acme/channels/beta", wantErr: `not under "gitfleet/v1/"`},
		{name: "upper case prefix", topic: "GitFleet/v1/acme/channels/beta", wantErr: `not under "gitfleet/v1/"`},
		{name: "version 2", topic: "gitfleet/v2/acme/channels/beta", wantErr: `protocol version "v2" is not supported, want v1`},
		{name: "version missing", topic: "gitfleet/", wantErr: `protocol version "" is not supported`},
		{name: "prefix only", topic: "gitfleet/v1/", wantErr: "fleet: empty"},
		{name: "fleet only", topic: "gitfleet/v1/acme", wantErr: "want channels/<channel> or devices/<device>/<desired|status|events> after the fleet"},
		{name: "fleet and slash", topic: "gitfleet/v1/acme/", wantErr: "want channels/<channel>"},
		{name: "wildcard fleet", topic: "gitfleet/v1/+/channels/beta", wantErr: `fleet: "+" contains '+'`},
		{name: "unknown collection", topic: "gitfleet/v1/acme/releases/v1", wantErr: `"releases" after the fleet is unknown, want channels or devices`},
		{name: "channel empty", topic: "gitfleet/v1/acme/channels/", wantErr: "channel: empty"},
		{name: "channel wildcard", topic: "gitfleet/v1/acme/channels/#", wantErr: `channel: "#" contains '#'`},
		{name: "channel extra level", topic: "gitfleet/v1/acme/channels/beta/x", wantErr: "levels after the channel"},
		{name: "channel trailing slash", topic: "gitfleet/v1/acme/channels/beta/", wantErr: "levels after the channel"},
		{name: "devices without device", topic: "gitfleet/v1/acme/devices", wantErr: "want channels/<channel>"},
		{name: "device without leaf", topic: "gitfleet/v1/acme/devices/dev-1", wantErr: "want desired, status or events after the device"},
		{name: "device empty", topic: "gitfleet/v1/acme/devices//status", wantErr: "device: empty"},
		{name: "device control char", topic: "gitfleet/v1/acme/devices/dev\x01/status", wantErr: "device: \"dev\\x01\" contains U+0001"},
		{name: "device too long", topic: "gitfleet/v1/acme/devices/" + strings.Repeat("d", 200) + "/status", wantErr: "is 200 bytes, over the limit of 128"},
		{name: "unknown leaf", topic: "gitfleet/v1/acme/devices/dev-1/config", wantErr: `device topic "config" is unknown, want desired, status or events`},
		{name: "empty leaf", topic: "gitfleet/v1/acme/devices/dev-1/", wantErr: `device topic "" is unknown`},
		{name: "leaf extra level", topic: "gitfleet/v1/acme/devices/dev-1/status/x", wantErr: "levels after status"},
		{name: "invalid UTF-8 fleet", topic: "gitfleet/v1/\xff/channels/beta", wantErr: `fleet: "\xff" is not valid UTF-8`},
		{name: "shared subscription", topic: "$share/g/gitfleet/v1/acme/devices/+/status", wantErr: `not under "gitfleet/v1/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.topic)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.topic, diff)
			}
			if err != nil {
				return
			}
			name, err := got.Name()
			if err != nil {
				t.Fatalf("Name of parsed %q: %v", tt.topic, err)
			}
			if name != tt.topic {
				t.Errorf("round trip: got %q, want %q", name, tt.topic)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindChannel: "channel",
		KindDesired: "desired",
		KindStatus:  "status",
		KindEvents:  "events",
		0:           "Kind(0)",
		200:         "Kind(200)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// checkErr fails t unless err matches wantErr: nil when wantErr is empty, and
// otherwise a one-line error containing wantErr.
func checkErr(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("got error %q, want none", err)
	case wantErr == "":
	case err == nil:
		t.Fatalf("got no error, want one containing %q", wantErr)
	case !strings.Contains(err.Error(), wantErr):
		t.Errorf("got error %q, want one containing %q", err, wantErr)
	case strings.ContainsAny(err.Error(), "\n\r"):
		t.Errorf("got error %q over several lines, want one line", err)
	}
}
