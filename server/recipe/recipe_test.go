package recipe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile("testdata/gitfleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(RecipeFile, data)
	if err != nil {
		t.Fatal(err)
	}
	want := &Recipe{
		Product:     "acme-gateway",
		DeviceTypes: []string{"acme-gw-v2", "acme-gw-v3"},
		Command:     Command{Argv: []string{"make", "-j2", "images"}},
		Timeout:     45 * time.Minute,
		Images: []ImageSpec{
			{Name: "rootfs", Path: "out/rootfs.ext4", Slot: "rootfs"},
			{Name: "kernel", Path: "out/fitImage", Slot: "boot"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse: -want +got:\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/gitfleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, RecipeFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Product, "acme-gateway"; got != want {
		t.Errorf("Product = %q, want %q", got, want)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(empty dir) = %v, want ErrNotExist", err)
	}
}

// minimalRecipe is a valid recipe that tests of single fields start from.
const minimalRecipe = `product: p
device_types: [t]
build:
  command: make
images:
  - {name: rootfs, path: out/rootfs, slot: rootfs}
`

func TestParseValues(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(r *Recipe)
	}{
		{"defaults", minimalRecipe, func(r *Recipe) {}},
		{"shell string", strings.Replace(minimalRecipe, "command: make", "command: make all && ./sign.sh", 1),
			func(r *Recipe) { r.Command = Command{Shell: "make all && ./sign.sh"} }},
		{"literal block", strings.Replace(minimalRecipe, "command: make", "command: |\n    make\n    make install", 1),
			func(r *Recipe) { r.Command = Command{Shell: "make\nmake install\n"} }},
		{"block argv", strings.Replace(minimalRecipe, "command: make", "command:\n    - ./build.sh\n    - 'with space'\n    - 42", 1),
			func(r *Recipe) { r.Command = Command{Argv: []string{"./build.sh", "with space", "42"}} }},
		{"timeout", strings.Replace(minimalRecipe, "command: make", "command: make\n  timeout: 1h30m", 1),
			func(r *Recipe) { r.Timeout = 90 * time.Minute }},
		{"timeout null is default", strings.Replace(minimalRecipe, "command: make", "command: make\n  timeout:", 1),
			func(r *Recipe) {}},
		{"comments and quotes", "# c\nproduct: \"p\" # c\ndevice_types: ['t']\nbuild: {command: make}\nimages: [{name: rootfs, path: out/rootfs, slot: rootfs}]\n",
			func(r *Recipe) {}},
		{"CRLF", strings.ReplaceAll(minimalRecipe, "\n", "\r\n"), func(r *Recipe) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(RecipeFile, []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			want := &Recipe{
				Product:     "p",
				DeviceTypes: []string{"t"},
				Command:     Command{Shell: "make"},
				Timeout:     DefaultTimeout,
				Images:      []ImageSpec{{Name: "rootfs", Path: "out/rootfs", Slot: "rootfs"}},
			}
			tt.want(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse: -want +got:\n%s", diff)
			}
		})
	}
}

// edit returns base with old, which it must contain, replaced by new.
func edit(base, old, new string) string {
	if !strings.Contains(base, old) {
		panic(fmt.Sprintf("test case: %q is not in %q", old, base))
	}
	return strings.Replace(base, old, new, 1)
}

// checkParseError checks that a parser refused its input with the error want.
func checkParseError(t *testing.T, v any, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("parsed %+v, want error %q", v, want)
	}
	if got := err.Error(); got != want {
		t.Errorf("parse error\n got: %s\nwant: %s", got, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("parse error is %T, want *Error", err)
	}
}

func TestParseErrors(t *testing.T) {
	replace := func(old, new string) string { return edit(minimalRecipe, old, new) }
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"empty", "", "gitfleet.yaml: empty file"},
		{"comment only", "# nothing\n", "gitfleet.yaml: empty file"},
		{"not a mapping", "- a\n", "gitfleet.yaml:1: want a mapping, got a list"},
		{"syntax", "product: [a\n", "gitfleet.yaml:1: sequence end token ']' not found"},
		{"duplicate key", minimalRecipe + "product: q\n", `gitfleet.yaml:7: mapping key "product" already defined at [1:1]`},
		{"two documents", minimalRecipe + "---\nproduct: q\n", "gitfleet.yaml:8: a second YAML document: want exactly one"},
		{"not UTF-8", "product: \xff\n", "gitfleet.yaml: not UTF-8 text"},
		{"too big", minimalRecipe + "#" + strings.Repeat("x", MaxFileSize) + "\n", "gitfleet.yaml: 1048689 bytes: at most 1048576 allowed"},
		{"unknown field", replace("product: p", "product: p\nproduckt: q"),
			"gitfleet.yaml:2: produckt: unknown field (want product, device_types, build, images or rollback_index)"},
		{"unknown nested field", replace("command: make", "command: make\n  timout: 1m"),
			"gitfleet.yaml:5: build.timout: unknown field (want command or timeout)"},
		{"missing product", replace("product: p\n", ""), "gitfleet.yaml:1: product: missing"},
		{"missing command", replace("command: make", "timeout: 1m"), "gitfleet.yaml:3: build.command: missing"},
		{"null build", replace("build:\n  command: make", "build:"), "gitfleet.yaml:3: build.command: missing"},
		{"bad product", replace("product: p", "product: Acme Gateway"),
			`gitfleet.yaml:1: product: "Acme Gateway": want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64`},
		{"product list", replace("product: p", "product: [p]"), "gitfleet.yaml:1: product: want a single value, got a list"},
		{"no device types", replace("[t]", "[]"), "gitfleet.yaml:2: device_types: 0 entries: want 1 to 64"},
		{"device type twice", replace("[t]", "[t, u, t]"), `gitfleet.yaml:2: device_types[2]: "t" listed twice`},
		{"device types not a list", replace("[t]", "t"), "gitfleet.yaml:2: device_types: want a list, got a string"},
		{"empty command", replace("command: make", "command: ' '"), "gitfleet.yaml:4: build.command: want a shell command or a list of arguments"},
		{"empty argv", replace("command: make", "command: []"), "gitfleet.yaml:4: build.command: want a program and at most 255 arguments"},
		{"null argument", replace("command: make", "command: [make, null]"), "gitfleet.yaml:4: build.command[1]: want an argument, got null"},
		{"mapping argument", replace("command: make", "command: [make, {a: b}]"), "gitfleet.yaml:4: build.command[1]: want a single value, got a mapping"},
		{"bad timeout", replace("command: make", "command: make\n  timeout: 30"),
			`gitfleet.yaml:5: build.timeout: "30": want a duration such as 30m or 1h30m`},
		{"zero timeout", replace("command: make", "command: make\n  timeout: 0s"),
			"gitfleet.yaml:5: build.timeout: 0s is not between 1s and 24h"},
		{"long timeout", replace("command: make", "command: make\n  timeout: 25h"),
			"gitfleet.yaml:5: build.timeout: 25h is not between 1s and 24h"},
		{"no images", replace("\n  - {name: rootfs, path: out/rootfs, slot: rootfs}", " []"), "gitfleet.yaml:5: images: 0 images: want 1 to 16"},
		{"image missing slot", replace(", slot: rootfs", ""), "gitfleet.yaml:6: images[0].slot: missing"},
		{"image unknown field", replace("slot: rootfs", "slot: rootfs, size: 3"),
			"gitfleet.yaml:6: images[0].size: unknown field (want name, path or slot)"},
		{"absolute path", replace("path: out/rootfs", "path: /etc/passwd"),
			`gitfleet.yaml:6: images[0].path: "/etc/passwd": want a path inside the checkout, relative to it`},
		{"escaping path", replace("path: out/rootfs", "path: out/../../x"),
			`gitfleet.yaml:6: images[0].path: "out/../../x": want a path inside the checkout, relative to it`},
		{"unclean path", replace("path: out/rootfs", "path: ./out//rootfs"),
			`gitfleet.yaml:6: images[0].path: "./out//rootfs": want a clean path (out/rootfs)`},
		{"git path", replace("path: out/rootfs", "path: .git/config"),
			`gitfleet.yaml:6: images[0].path: ".git/config": want a path outside .git`},
		{"backslash path", replace("path: out/rootfs", `path: 'out\rootfs'`),
			`gitfleet.yaml:6: images[0].path: "out\\rootfs": want at most 1024 printable characters and '/' as separator`},
		{"duplicate image", minimalRecipe + "  - {name: rootfs, path: out/b, slot: b}\n", `gitfleet.yaml:7: images[1]: image "rootfs" listed twice`},
		{"duplicate slot", minimalRecipe + "  - {name: b, path: out/b, slot: rootfs}\n", "gitfleet.yaml:7: images[1]: slot \"rootfs\": images rootfs and b both target it"},
		{"duplicate path", minimalRecipe + "  - {name: b, path: out/rootfs, slot: b}\n", "gitfleet.yaml:7: images[1]: path \"out/rootfs\": images rootfs and b are the same file"},
		{"anchor", replace("product: p", "product: &p p"), "gitfleet.yaml:1: product: YAML anchors and aliases are not supported"},
		{"alias", replace("product: p", "product: *p"), "gitfleet.yaml:1: product: YAML anchors and aliases are not supported"},
		{"tag", replace("product: p", "product: !!str p"), "gitfleet.yaml:1: product: YAML tags such as !!str are not supported"},
		{"merge key", replace("command: make", "<<: {command: make}"), "gitfleet.yaml:4: build: YAML merge keys (<<) are not supported"},
		{"non-string key", replace("product: p", "product: p\n1: x"), "gitfleet.yaml:2: key an integer: want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(RecipeFile, []byte(tt.yaml))
			checkParseError(t, r, err, tt.want)
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("Parse error has several lines: %q", err)
			}
		})
	}
}
