package yamlfile

import (
	"errors"
	"strings"
	"testing"
)

type board struct {
	Name  string `yaml:"name"`
	Baud  int    `yaml:"baud"`
	Debug bool   `yaml:"debug"`
	Power struct {
		Type string `yaml:"type"`
	} `yaml:"power"`
}

type rig struct {
	Boards []board            `yaml:"boards"`
	Labels map[string]string  `yaml:"labels"`
	Tags   []string           `yaml:"tags"`
	Extra  map[string][]int64 `yaml:"extra"`
}

func TestParseRefusesWholeFileProblems(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"too big", "a: 1\n#" + strings.Repeat("x", MaxSize), "f.yaml: 1048582 bytes: at most 1048576 allowed"},
		{"not UTF-8", "a: \xff\n", "f.yaml: not UTF-8 text"},
		{"syntax", "a: [1,\n", "f.yaml:1: "},
		{"empty", "", "f.yaml: empty file"},
		{"only comments", "# nothing here\n", "f.yaml: empty file"},
		{"second document", "a: 1\n---\nb: 2\n", "f.yaml:3: a second YAML document: want exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.data))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Parse: err = %v, want it to start %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseSkipsCommentDocuments(t *testing.T) {
	body, err := Parse("f.yaml", []byte("# header\n---\na: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Line(body); got != 3 {
		t.Errorf("body on line %d, want 3", got)
	}
}

func TestDecode(t *testing.T) {
	var r rig
	d := Decode("rig.yaml", []byte("boards:\n  - name: a\n    baud: 115200\n    power: {type: relay}\n"), &r)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if len(r.Boards) != 1 || r.Boards[0].Name != "a" || r.Boards[0].Baud != 115200 || r.Boards[0].Power.Type != "relay" {
		t.Errorf("decoded %+v", r)
	}
}

func TestDecodeErrorsNameLineAndField(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"unknown field", "boards:\n  - name: a\n    colour: red\n", `rig.yaml:3: boards[0].colour: unknown field "colour"`},
		{"string for a number", "boards:\n  - name: a\n    baud: fast\n", `rig.yaml:3: boards[0].baud: want a whole number, got "fast"`},
		{"list for a string", "boards:\n  - name: [a]\n", `rig.yaml:2: boards[0].name: want a string, got a list`},
		{"mapping for a list", "tags: {a: b}\n", `rig.yaml:1: tags: want a list, got a mapping`},
		{"string for a boolean", "boards:\n  - debug: maybe\n", `rig.yaml:2: boards[0].debug: want true or false, got "maybe"`},
		{"anchor", "boards:\n  - &b {name: a}\n", `rig.yaml:2: boards[0]: YAML anchors, aliases and merge keys are not supported`},
		{"alias", "labels: &l {a: b}\nextra: *l\n", `rig.yaml:1: labels: YAML anchors, aliases and merge keys are not supported`},
		{"merge key", "labels:\n  <<: {a: b}\n", `rig.yaml:2: `},
		{"tag", "tags: !!set {a}\n", `rig.yaml:1: tags: YAML tags such as !!set are not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rig
			err := Decode("rig.yaml", []byte(tc.data), &r).Err()
			var fe *Error
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *Error starting %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestFailLocatesTheField(t *testing.T) {
	data := "boards:\n  - name: a\n  - name: b\n    power:\n      type: usb\n"
	for _, tc := range []struct{ field, want string }{
		{"boards[1].power.type", `rig.yaml:5: boards[1].power.type: bad`},
		// Absent fields are blamed on their nearest parent in the file.
		{"boards[0].power", `rig.yaml:2: boards[0].power: bad`},
		{"boards[1].power.port", `rig.yaml:4: boards[1].power.port: bad`},
		{"server", `rig.yaml:1: server: bad`},
	} {
		var r rig
		d := Decode("rig.yaml", []byte(data), &r)
		if err := d.Err(); err != nil {
			t.Fatal(err)
		}
		d.Fail(tc.field, "bad")
		if err := d.Err(); err == nil || err.Error() != tc.want {
			t.Errorf("Fail(%q): err = %v, want %q", tc.field, err, tc.want)
		}
	}
}

func TestFirstProblemWins(t *testing.T) {
	var r rig
	d := Decode("rig.yaml", []byte("boards: []\n"), &r)
	d.Fail("boards", "first")
	d.Failf(7, "tags", "second")
	if err := d.Err(); err == nil || err.Error() != "rig.yaml:1: boards: first" {
		t.Errorf("err = %v, want the first problem", err)
	}
}
