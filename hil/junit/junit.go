// Package junit writes test reports in the JUnit XML format that CI
// systems (Jenkins, GitLab, GitHub Actions reporters) read: testsuites,
// one testsuite per board, one testcase per scenario run, a failure element
// for each failed one. Check validates a report's structure and counts.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"
)

// A Report is a testsuites element.
type Report struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     float64  `xml:"time,attr"`
	Suites   []*Suite `xml:"testsuite"`
}

// A Suite is a testsuite element: the scenarios run on one board.
type Suite struct {
	Name      string  `xml:"name,attr"`
	Tests     int     `xml:"tests,attr"`
	Failures  int     `xml:"failures,attr"`
	Errors    int     `xml:"errors,attr"`
	Skipped   int     `xml:"skipped,attr"`
	Time      float64 `xml:"time,attr"`
	Timestamp string  `xml:"timestamp,attr,omitempty"`
	Cases     []Case  `xml:"testcase"`
}

// A Case is a testcase element: one run of a scenario.
type Case struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Time      float64  `xml:"time,attr"`
	Failure   *Failure `xml:"failure,omitempty"`
	Error     *Failure `xml:"error,omitempty"`
	Skipped   *Skipped `xml:"skipped,omitempty"`
	// SystemOut names the console log, in the [[ATTACHMENT|path]] form
	// that Jenkins and GitLab link to.
	SystemOut string `xml:"system-out,omitempty"`
}

// A Failure is a failure or error element.
type Failure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Skipped is a skipped element.
type Skipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// Suite returns the suite called name, adding it (with its timestamp now)
// if the report has none.
func (r *Report) Suite(name string) *Suite {
	for _, s := range r.Suites {
		if s.Name == name {
			return s
		}
	}
	s := &Suite{Name: name, Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05")}
	r.Suites = append(r.Suites, s)
	return s
}

// Add appends c to the suite and updates its counts.
func (s *Suite) Add(c Case) {
	s.Cases = append(s.Cases, c)
	s.Tests++
	s.Time += c.Time
	switch {
	case c.Failure != nil:
		s.Failures++
	case c.Error != nil:
		s.Errors++
	case c.Skipped != nil:
		s.Skipped++
	}
}

// Total sums the suites' counts into the report's.
func (r *Report) Total() {
	r.Tests, r.Failures, r.Errors, r.Skipped, r.Time = 0, 0, 0, 0, 0
	for _, s := range r.Suites {
		r.Tests += s.Tests
		r.Failures += s.Failures
		r.Errors += s.Errors
		r.Skipped += s.Skipped
		r.Time += s.Time
	}
}

// Write writes the report as an XML document, with its counts totalled.
func (r *Report) Write(w io.Writer) error {
	r.Total()
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	return nil
}

// Parse reads a report and checks it with Check.
func Parse(data []byte) (*Report, error) {
	var r Report
	if err := xml.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("junit report: %w", err)
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Check validates the report's structure: named suites and cases, each case
// at most one of failure, error and skipped, and every count equal to what
// the elements add up to.
func (r *Report) Check() error {
	if r.XMLName.Local != "testsuites" {
		return errors.New("junit report: the root element is not testsuites")
	}
	var t, f, e, s int
	for i, su := range r.Suites {
		if su.Name == "" {
			return fmt.Errorf("junit report: testsuite %d has no name", i)
		}
		var st, sf, se, ss int
		for j, c := range su.Cases {
			if c.Name == "" || c.Classname == "" {
				return fmt.Errorf("junit report: testsuite %s: testcase %d has no name or classname", su.Name, j)
			}
			n := 0
			for _, set := range []bool{c.Failure != nil, c.Error != nil, c.Skipped != nil} {
				if set {
					n++
				}
			}
			if n > 1 {
				return fmt.Errorf("junit report: testcase %s: more than one of failure, error and skipped", c.Name)
			}
			st++
			if c.Failure != nil {
				sf++
			}
			if c.Error != nil {
				se++
			}
			if c.Skipped != nil {
				ss++
			}
		}
		if su.Tests != st || su.Failures != sf || su.Errors != se || su.Skipped != ss {
			return fmt.Errorf("junit report: testsuite %s counts tests/failures/errors/skipped %d/%d/%d/%d, its testcases %d/%d/%d/%d",
				su.Name, su.Tests, su.Failures, su.Errors, su.Skipped, st, sf, se, ss)
		}
		t, f, e, s = t+st, f+sf, e+se, s+ss
	}
	if r.Tests != t || r.Failures != f || r.Errors != e || r.Skipped != s {
		return fmt.Errorf("junit report: testsuites counts tests/failures/errors/skipped %d/%d/%d/%d, its testsuites %d/%d/%d/%d",
			r.Tests, r.Failures, r.Errors, r.Skipped, t, f, e, s)
	}
	return nil
}
