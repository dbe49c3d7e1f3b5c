package update_test

import (
	"os"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/update"
)

// TestStatesDiagramMatchesTable keeps STATES.md's drawing equal to the
// transition table. Run with GITFLEET_UPDATE_GOLDEN=1 to rewrite it.
func TestStatesDiagramMatchesTable(t *testing.T) {
	const begin, end = "```mermaid\n", "```\n"
	doc, err := os.ReadFile("STATES.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), begin)
	j := strings.Index(string(doc)[i+len(begin):], end)
	if i < 0 || j < 0 {
		t.Fatal("STATES.md has no mermaid block")
	}
	got := string(doc)[i+len(begin) : i+len(begin)+j]
	want := update.Mermaid()
	if got == want {
		return
	}
	if os.Getenv("GITFLEET_UPDATE_GOLDEN") == "1" {
		out := string(doc)[:i+len(begin)] + want + string(doc)[i+len(begin)+j:]
		if err := os.WriteFile("STATES.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("STATES.md's diagram differs from the transition table; run GITFLEET_UPDATE_GOLDEN=1 go test ./agent/update/ -run Diagram\ngot:\n%s\nwant:\n%s", got, want)
}

func TestTables(t *testing.T) {
	states := map[update.State]bool{}
	seen := map[[2]string]bool{}
	for _, tr := range update.Transitions {
		states[tr.From], states[tr.To] = true, true
		k := [2]string{string(tr.From), string(tr.Event)}
		if seen[k] {
			t.Errorf("two transitions from %s on %s", tr.From, tr.Event)
		}
		seen[k] = true
	}
	for s := range states {
		if _, ok := update.Resume[s]; !ok {
			t.Errorf("state %s has no resume action", s)
		}
	}
	for s := range update.Resume {
		if !states[s] {
			t.Errorf("resume table names state %s, which no transition uses", s)
		}
	}
	// Every state is reachable from idle, and reaches idle again.
	reach := func(from update.State, forward bool) map[update.State]bool {
		r := map[update.State]bool{from: true}
		for changed := true; changed; {
			changed = false
			for _, tr := range update.Transitions {
				a, b := tr.From, tr.To
				if !forward {
					a, b = b, a
				}
				if r[a] && !r[b] {
					r[b], changed = true, true
				}
			}
		}
		return r
	}
	fwd, back := reach(update.Idle, true), reach(update.Idle, false)
	for s := range states {
		if !fwd[s] {
			t.Errorf("state %s is not reachable from idle", s)
		}
		if !back[s] {
			t.Errorf("state %s never gets back to idle", s)
		}
	}
	// Before the point of no return a failure never rolls back (nothing to
	// roll back); after it, it never just fails with the new slot armed.
	for _, tr := range update.Transitions {
		if !update.PastPointOfNoReturn(tr.From) && tr.To == update.RollingBack {
			t.Errorf("%s -> rolling_back on %s: nothing is armed yet", tr.From, tr.Event)
		}
		if tr.From != update.Arming && update.PastPointOfNoReturn(tr.From) && tr.To == update.Failed && tr.From != update.RollingBack {
			t.Errorf("%s -> failed on %s: past the point of no return a failure must roll back", tr.From, tr.Event)
		}
	}
}
