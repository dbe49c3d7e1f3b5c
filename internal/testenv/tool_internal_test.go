package testenv

import "testing"

// TestToolFindsEveryListedProgram checks that tools.txt and the harness, which installs its packages,
// agree: every program listed is there.
func TestToolFindsEveryListedProgram(t *testing.T) {
	for name, pkg := range packages() {
		t.Run(name, func(t *testing.T) {
			if path := Tool(t, name); path == "" {
				t.Errorf("Tool(%q) = \"\", want the path that package %s installs", name, pkg)
			}
		})
	}
}
