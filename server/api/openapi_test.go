package api_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

// openAPIDoc is the part of an OpenAPI 3 document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                 `json:"openapi"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string                `json:"operationId"`
	Security    []map[string][]string `json:"security"`
	Scope       string                `json:"x-gitfleet-scope"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	Responses map[string]json.RawMessage `json:"responses"`
}

type openAPISchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
	Enum       []string                   `json:"enum"`
}

func fetchOpenAPI(t *testing.T, s *apitest.Server) (openAPIDoc, []byte) {
	t.Helper()
	a := request(t, s, "GET", "/api/v1/openapi.json", "", "")
	if a.status != 200 {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", a.status, a.body)
	}
	return decode[openAPIDoc](t, a), a.body
}

// TestOpenAPIRoutes: every route the server serves is in the OpenAPI
// document with its security and path parameters, and every operation of the
// document is a route the server serves.
func TestOpenAPIRoutes(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	doc, _ := fetchOpenAPI(t, s)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	served := map[string]bool{}
	for _, r := range s.API.Routes() {
		served[r.Pattern()] = true
		op, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("route %s is not in openapi.json", r.Pattern())
			continue
		}
		var wantSecurity []map[string][]string
		switch {
		case r.Scope != "":
			wantSecurity = []map[string][]string{{"bearer": {}}}
		case r.Signed:
			wantSecurity = []map[string][]string{{"webhookSignature": {}}}
		default:
			wantSecurity = []map[string][]string{}
		}
		if !cmp.Equal(op.Security, wantSecurity) {
			t.Errorf("%s: security %v, want %v", r.Pattern(), op.Security, wantSecurity)
		}
		if got, want := op.Scope, string(r.Scope); got != want {
			t.Errorf("%s: x-gitfleet-scope %q, want %q", r.Pattern(), got, want)
		}
		var gotParams []string
		for _, p := range op.Parameters {
			if p.In == "path" {
				gotParams = append(gotParams, p.Name)
			}
		}
		var wantParams []string
		for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(r.Path, -1) {
			wantParams = append(wantParams, m[1])
		}
		if !cmp.Equal(gotParams, wantParams) {
			t.Errorf("%s: path parameters %q, want %q", r.Pattern(), gotParams, wantParams)
		}
		if r.Scope != "" {
			for _, status := range []string{"401", "403"} {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("%s: no %s response", r.Pattern(), status)
				}
			}
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if p := strings.ToUpper(method) + " " + path; !served[p] {
				t.Errorf("openapi.json has %s, which the server does not serve", p)
			}
		}
	}
}

// TestOpenAPIParameters: the document lists the query parameters the
// server parses.
func TestOpenAPIParameters(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	doc, _ := fetchOpenAPI(t, s)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/api/v1/devices", apiclient.DeviceParams()},
		{"/api/v1/devices/{id}/events", slices.Sorted(func(yield func(string) bool) {
			for k := range (apiclient.EventQuery{Before: "x", Limit: 1}).Values() {
				if !yield(k) {
					return
				}
			}
		})},
	} {
		var got []string
		for _, p := range doc.Paths[tc.path]["get"].Parameters {
			if p.In == "query" {
				got = append(got, p.Name)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if !cmp.Equal(got, want) {
			t.Errorf("GET %s: query parameters %q, want %q", tc.path, got, want)
		}
	}
}

// TestOpenAPISchemas: each schema has the JSON fields of the Go type the
// server answers with, requires those it always sends, and every reference
// resolves.
func TestOpenAPISchemas(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	doc, raw := fetchOpenAPI(t, s)
	types := map[string]any{
		"Error": apiclient.ErrorBody{}, "Status": apiclient.Status{},
		"Device": apiclient.Device{}, "Target": apiclient.Target{}, "Health": apiclient.Health{},
		"HealthCheck": apiclient.HealthCheck{}, "DeviceError": apiclient.DeviceError{}, "DevicePage": apiclient.DevicePage{},
		"Event": apiclient.Event{}, "EventPage": apiclient.EventPage{},
		"Release": apiclient.Release{}, "Provenance": apiclient.Provenance{}, "Bundle": apiclient.Bundle{},
		"Build": apiclient.Build{}, "ReleaseList": apiclient.ReleaseList{},
		"Channel": apiclient.Channel{}, "Condition": apiclient.Condition{}, "Counts": apiclient.Counts{},
		"ChannelList": apiclient.ChannelList{}, "Action": apiclient.Action{}, "PromoteRequest": apiclient.PromoteRequest{}, "PenaltyClear": apiclient.PenaltyClear{},
		"Promotion": apiclient.Promotion{}, "HookResult": apiclient.HookResult{},
	}
	for name := range doc.Components.Schemas {
		if _, ok := types[name]; !ok {
			t.Errorf("schema %s has no Go type in the test", name)
		}
	}
	for name, v := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		var fields, required []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag, opts, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			fields = append(fields, tag)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, tag)
			}
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		slices.Sort(fields)
		slices.Sort(props)
		slices.Sort(required)
		gotRequired := slices.Sorted(slices.Values(schema.Required))
		if !cmp.Equal(props, fields) {
			t.Errorf("schema %s: properties %q, want the fields of %T: %q", name, props, v, fields)
		}
		if !cmp.Equal(gotRequired, required) && !(len(gotRequired) == 0 && len(required) == 0) {
			t.Errorf("schema %s: required %q, want the fields %T always sends: %q", name, gotRequired, v, required)
		}
	}
	var all struct {
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"\$ref": "#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := all.Components[m[1]][m[2]]; !ok {
			t.Errorf("reference %s/%s does not resolve", m[1], m[2])
		}
	}
	codes := []string{
		apiclient.CodeBadRequest, apiclient.CodeMalformedHook, apiclient.CodeUnauthorized, apiclient.CodeBadSignature,
		apiclient.CodeForbidden, apiclient.CodeNotFound, apiclient.CodeNotAllowed, apiclient.CodeConflict,
		apiclient.CodeTooLarge, apiclient.CodeInternal, apiclient.CodeNotConfigured, apiclient.CodeUnavailable,
	}
	var enum []string
	json.Unmarshal(doc.Components.Schemas["Error"].Properties["code"], &struct {
		Enum *[]string `json:"enum"`
	}{&enum})
	if !cmp.Equal(enum, codes) {
		t.Errorf("Error.code enum %q, want apiclient's codes %q", enum, codes)
	}
}
