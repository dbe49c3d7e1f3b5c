package health_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/health"
)

func TestChecker(t *testing.T) {
	cases := []struct {
		name    string
		checks  []health.Check
		wantErr string
		wantOK  []bool
	}{
		{"all pass", []health.Check{
			health.Command("true", []string{"true"}, 0),
			{Name: "mqtt", Run: func(context.Context) error { return nil }},
		}, "", []bool{true, true}},
		{"a command fails with output", []health.Check{
			health.Command("unit", []string{"sh", "-c", "echo starting; echo 'acme.service: inactive' >&2; exit 3"}, 0),
			health.Command("true", []string{"true"}, 0),
		}, "health check unit: sh: exit status 3: acme.service: inactive", []bool{false, true}},
		{"a hung command times out", []health.Check{
			health.Command("hang", []string{"sh", "-c", "sleep 30 & sleep 30"}, 200*time.Millisecond),
		}, "health check hang: timed out after 200ms", []bool{false}},
		{"a custom check fails", []health.Check{
			{Name: "mqtt", Run: func(context.Context) error { return errors.New("broker unreachable") }},
		}, "health check mqtt: broker unreachable", []bool{false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &health.Checker{Checks: tc.checks}
			start := time.Now()
			err := c.Check(context.Background())
			if time.Since(start) > 10*time.Second {
				t.Fatal("the checker waited for a killed command's children")
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Check = %v, want %q", err, tc.wantErr)
			}
			for i, r := range c.Last {
				if r.OK != tc.wantOK[i] {
					t.Errorf("result %d (%s) ok = %v, want %v", i, r.Name, r.OK, tc.wantOK[i])
				}
			}
		})
	}
}
