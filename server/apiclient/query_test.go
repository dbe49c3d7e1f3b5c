package apiclient_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

func ptr[T any](v T) *T { return &v }

// TestDeviceQueryValues: a query survives Values and ParseDeviceQuery.
func TestDeviceQueryValues(t *testing.T) {
	tests := []struct {
		name  string
		q     apiclient.DeviceQuery
		query string
	}{
		{"empty", apiclient.DeviceQuery{}, ""},
		{"strings", apiclient.DeviceQuery{Fleet: "acme", Channel: "staging", Version: "1.4.0", Tag: "v1.4.0", Commit: "0d1e", State: "idle", After: "ZGV2", Limit: 20},
			"after=ZGV2&channel=staging&commit=0d1e&fleet=acme&limit=20&state=idle&tag=v1.4.0&version=1.4.0"},
		{"booleans true", apiclient.DeviceQuery{Healthy: ptr(true), Confirmed: ptr(true), Online: ptr(true)}, "confirmed=true&health=ok&online=true"},
		{"booleans false", apiclient.DeviceQuery{Healthy: ptr(false), Confirmed: ptr(false), Online: ptr(false)}, "confirmed=false&health=failing&online=false"},
		{"labels", apiclient.DeviceQuery{Labels: map[string]string{"region": "eu", "hw": "rev=2"}}, "label=hw%3Drev%3D2&label=region%3Deu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.q.Values()
			if got := v.Encode(); got != tc.query {
				t.Errorf("Values = %q, want %q", got, tc.query)
			}
			got, err := apiclient.ParseDeviceQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(got, tc.q) {
				t.Errorf("ParseDeviceQuery(%q) = %+v, want %+v", tc.query, got, tc.q)
			}
		})
	}
}

func TestParseDeviceQueryLabels(t *testing.T) {
	for query, want := range map[string]string{
		"label=region":                        `label="region": give NAME=VALUE`,
		"label=Region=eu":                     `label="Region=eu": label name: want lowercase letters`,
		"label=region=":                       `label="region=": want a label value of 1 to`,
		"label=region=eu&label=region=us":     "label names region twice",
		"label=region=eu&channel=a&channel=b": "channel given 2 times",
	} {
		v, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apiclient.ParseDeviceQuery(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", query, err, want)
		}
	}
}

// FuzzParseDeviceQuery: whatever query string a caller sends, the parser
// either refuses it in one line or returns a query that Values writes back
// to the same query.
func FuzzParseDeviceQuery(f *testing.F) {
	f.Add("channel=staging&online=true&limit=10")
	f.Add("health=failing&confirmed=false&after=ZGV2LTAwMDEw")
	f.Add("chanel=x&limit=0")
	f.Add("label=region=eu&label=hw=rev=2")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q, err := apiclient.ParseDeviceQuery(v)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			return
		}
		if q.Limit < 0 || q.Limit > apiclient.MaxLimit {
			t.Errorf("limit %d out of range", q.Limit)
		}
		again, err := apiclient.ParseDeviceQuery(q.Values())
		if err != nil || !cmp.Equal(again, q) {
			t.Errorf("%q: parsed %+v, written and parsed again %+v, %v", query, q, again, err)
		}
	})
}
