package junit

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteParse(t *testing.T) {
	var r Report
	r.Name = "gitfleet-hil"
	vb1 := r.Suite("vb1")
	vb1.Add(Case{Name: "update 1.4.0", Classname: "hil.vb1", Time: 1.5, SystemOut: "[[ATTACHMENT|logs/vb1/01.log]]"})
	vb1.Add(Case{Name: "broken-image 1.5.0", Classname: "hil.vb1", Failure: &Failure{Message: "no fallback", Text: "console: <panic> & more"}})
	r.Suite("vb2").Add(Case{Name: "update 1.4.0", Classname: "hil.vb2", Skipped: &Skipped{Message: "board did not boot"}})
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "<?xml") || !strings.Contains(buf.String(), `<testsuites name="gitfleet-hil" tests="3" failures="1" errors="0" skipped="1"`) {
		t.Errorf("report:\n%s", buf.String())
	}
	got, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got.Suites[0].Cases[1].Failure.Text != "console: <panic> & more" {
		t.Errorf("failure text: got %q", got.Suites[0].Cases[1].Failure.Text)
	}
}

func TestCheckRefuses(t *testing.T) {
	cases := []struct{ name, xml, want string }{
		{"other root", `<testsuite name="x"/>`, "expected element type <testsuites>"},
		{"suite count", `<testsuites tests="1"><testsuite name="a" tests="2"><testcase name="c" classname="k"/></testsuite></testsuites>`, "testsuite a counts"},
		{"total count", `<testsuites tests="2" failures="0"><testsuite name="a" tests="1"><testcase name="c" classname="k"/></testsuite></testsuites>`, "testsuites counts"},
		{"unnamed case", `<testsuites tests="1"><testsuite name="a" tests="1"><testcase classname="k"/></testsuite></testsuites>`, "no name"},
		{"failure and skipped", `<testsuites tests="1" failures="1" skipped="1"><testsuite name="a" tests="1" failures="1" skipped="1"><testcase name="c" classname="k"><failure message="m"/><skipped/></testcase></testsuite></testsuites>`, "more than one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.xml)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
