package broker_test

import (
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/server/broker"
)

func TestRenderMosquittoACL(t *testing.T) {
	acl, err := broker.RenderMosquittoACL("gitfleet-server", []string{"acme", "beta"})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for line := range strings.SplitSeq(string(acl), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			rules = append(rules, line)
		}
	}
	want := []string{
		"user gitfleet-server",
		"topic readwrite #",
		"pattern write gitfleet/v1/acme/devices/%u/status",
		"pattern write gitfleet/v1/acme/devices/%u/events",
		"pattern read gitfleet/v1/acme/channels/+",
		"pattern read gitfleet/v1/acme/devices/%u/desired",
		"pattern write gitfleet/v1/beta/devices/%u/status",
		"pattern write gitfleet/v1/beta/devices/%u/events",
		"pattern read gitfleet/v1/beta/channels/+",
		"pattern read gitfleet/v1/beta/devices/%u/desired",
	}
	if got := strings.Join(rules, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("got rules\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestRenderMosquittoACLRefuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		serverUser string
		fleets     []string
		want       string
	}{
		{"no fleet", "gitfleet-server", nil, "no fleets"},
		{"fleet with a percent sign", "gitfleet-server", []string{"a%ub"}, "which Mosquitto would substitute"},
		{"fleet with a slash", "gitfleet-server", []string{"a/b"}, "render Mosquitto ACL"},
		{"server account with a space", "gitfleet server", []string{"acme"}, "server account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := broker.RenderMosquittoACL(tc.serverUser, tc.fleets)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
