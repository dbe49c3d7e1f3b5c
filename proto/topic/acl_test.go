package topic

import "testing"

func TestCheckDevicePublish(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		wantErr string
	}{
		{name: "own status", topic: "gitfleet/v1/acme/devices/dev-1/status"},
		{name: "own events", topic: "gitfleet/v1/acme/devices/dev-1/events"},
		{name: "own desired", topic: "gitfleet/v1/acme/devices/dev-1/desired", wantErr: `device "dev-1" may not publish to desired topic`},
		{name: "channel", topic: "gitfleet/v1/acme/channels/production", wantErr: `device "dev-1" may not publish to channel topic`},
		{name: "other device", topic: "gitfleet/v1/acme/devices/dev-2/status", wantErr: `device "dev-1" of fleet "acme" may not publish to the topics of device "dev-2" of fleet "acme"`},
		{name: "other fleet", topic: "gitfleet/v1/other/devices/dev-1/events", wantErr: `may not publish to the topics of device "dev-1" of fleet "other"`},
		{name: "wildcard", topic: "gitfleet/v1/acme/devices/+/status", wantErr: `device "dev-1" may not publish: parse topic`},
		{name: "outside the grammar", topic: "gitfleet/v1/acme/devices/dev-1/status/x", wantErr: "levels after status"},
		{name: "outside gitfleet", topic: "$SYS/broker/clients", wantErr: `not under "gitfleet/v1/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckDevicePublish("acme", "dev-1", tt.topic), tt.wantErr)
		})
	}
}

func TestCheckDeviceSubscribe(t *testing.T) {
	tests := []struct {
		name    string
		filter  string
		wantErr string
	}{
		{name: "a channel", filter: "gitfleet/v1/acme/channels/production"},
		{name: "another channel", filter: "gitfleet/v1/acme/channels/staging"},
		{name: "own desired", filter: "gitfleet/v1/acme/devices/dev-1/desired"},
		{name: "channel of other fleet", filter: "gitfleet/v1/other/channels/production", wantErr: `device "dev-1" of fleet "acme" may not subscribe to fleet "other"`},
		{name: "other device's desired", filter: "gitfleet/v1/acme/devices/dev-2/desired", wantErr: `may not subscribe to the topics of device "dev-2"`},
		{name: "own status", filter: "gitfleet/v1/acme/devices/dev-1/status", wantErr: `device "dev-1" may not subscribe to status topic`},
		{name: "own events", filter: "gitfleet/v1/acme/devices/dev-1/events", wantErr: "may not subscribe to events topic"},
		{name: "every channel", filter: "gitfleet/v1/acme/channels/+", wantErr: `device "dev-1" may not subscribe: parse topic`},
		{name: "everything", filter: "#", wantErr: `not under "gitfleet/v1/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckDeviceSubscribe("acme", "dev-1", tt.filter), tt.wantErr)
		})
	}
}
