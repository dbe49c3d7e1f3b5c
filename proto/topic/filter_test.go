package topic

import (
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		fleet   string
		want    string
		wantErr string
	}{
		{name: "channels", kind: KindChannel, fleet: "acme", want: "gitfleet/v1/acme/channels/+"},
		{name: "desired", kind: KindDesired, fleet: "acme", want: "gitfleet/v1/acme/devices/+/desired"},
		{name: "statuses", kind: KindStatus, fleet: "acme", want: "gitfleet/v1/acme/devices/+/status"},
		{name: "events", kind: KindEvents, fleet: "acme", want: "gitfleet/v1/acme/devices/+/events"},
		{name: "statuses of every fleet", kind: KindStatus, fleet: AnyFleet, want: "gitfleet/v1/+/devices/+/status"},
		{name: "bad fleet", kind: KindStatus, fleet: "a#", wantErr: `status filter: fleet: "a#" contains '#'`},
		{name: "empty fleet", kind: KindEvents, fleet: "", wantErr: "events filter: fleet: empty"},
		{name: "unknown kind", kind: 0, fleet: "acme", wantErr: "Kind(0) filter: unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Filter(tt.kind, tt.fleet)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestShared(t *testing.T) {
	tests := []struct {
		name    string
		group   string
		filter  string
		want    string
		wantErr string
	}{
		{name: "statuses", group: "ingest", filter: "gitfleet/v1/acme/devices/+/status", want: "$share/ingest/gitfleet/v1/acme/devices/+/status"},
		{name: "multi-level wildcard", group: "ingest", filter: "gitfleet/v1/#", want: "$share/ingest/gitfleet/v1/#"},
		{name: "lone hash", group: "ingest", filter: "#", want: "$share/ingest/#"},
		{name: "bad group", group: "in/gest", filter: "gitfleet/v1/#", wantErr: `shared subscription: group: "in/gest" contains '/'`},
		{name: "wildcard group", group: "+", filter: "gitfleet/v1/#", wantErr: `group: "+" contains '+'`},
		{name: "empty filter", group: "ingest", filter: "", wantErr: `shared subscription: filter "": empty`},
		{name: "already shared", group: "ingest", filter: "$share/other/gitfleet/v1/#", wantErr: "already shared"},
		{name: "hash not last", group: "ingest", filter: "gitfleet/#/status", wantErr: `"#" is not the last level`},
		{name: "hash inside level", group: "ingest", filter: "gitfleet/v1#", wantErr: `"#" is not a whole level`},
		{name: "plus inside level", group: "ingest", filter: "gitfleet/v1/acme+/channels/+", wantErr: `"+" is not a whole level`},
		{name: "NUL", group: "ingest", filter: "gitfleet/\x00", wantErr: "contains NUL"},
		{name: "invalid UTF-8", group: "ingest", filter: "gitfleet/\xff", wantErr: "not valid UTF-8"},
		{name: "too long", group: "ingest", filter: strings.Repeat("a", 65536), wantErr: "65536 bytes, over MQTT's limit of 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Shared(tt.group, tt.filter)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
