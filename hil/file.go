package hil

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxFileSize bounds a rig or plan file: larger is a mistake.
const maxFileSize = 1 << 20

// A FileError is a problem in a rig or plan file. Its message alone is
// enough to fix the file:
//
//	rig.yaml:12: boards[1].power.type: "usb": want command, relay, modem or vboard
type FileError struct {
	File string
	// Line is 1-based; 0 when the problem is with the file as a whole.
	Line int
	// Field is the dotted path of the field, with [i] for list elements.
	Field string
	Msg   string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// A doc is a parsed YAML file that validation errors are located in.
type doc struct {
	name string
	file *ast.File
	err  *FileError // the first problem; later ones are often its consequences
}

// decode parses data strictly (unknown fields are errors) into v.
func decode(name string, data []byte, v any) *doc {
	d := &doc{name: name}
	if len(data) > maxFileSize {
		d.failf(0, "", "%d bytes: at most %d allowed", len(data), maxFileSize)
		return d
	}
	if !utf8.Valid(data) {
		d.failf(0, "", "not UTF-8 text")
		return d
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.yamlError(err)
		return d
	}
	d.file = f
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		d.failf(0, "", "want exactly one YAML document")
		return d
	}
	// Anchors, aliases, merge keys and tags hide what a reader of the
	// file sees, and the YAML library panics on some tags: refuse them.
	ast.Walk(visitor(func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.TagNode:
			d.failf(line(n), strings.TrimPrefix(strings.TrimPrefix(n.GetPath(), "$"), "."), "YAML tags such as %s are not supported", n.Start.Value)
		case *ast.AnchorNode, *ast.AliasNode, *ast.MergeKeyNode:
			d.failf(line(n), strings.TrimPrefix(strings.TrimPrefix(n.GetPath(), "$"), "."), "YAML anchors, aliases and merge keys are not supported")
		}
		return d.err == nil
	}), f.Docs[0])
	if d.err != nil {
		return d
	}
	if err := unmarshal(data, v); err != nil {
		d.yamlError(err)
	}
	return d
}

// unmarshal decodes strictly, turning a panic of the YAML library on
// unexpected input into an error.
func unmarshal(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot read the file: %v", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, v, yaml.Strict())
}

func line(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// yamlError records an error of the YAML library with its line and, where
// the node it is about can be found, its field.
func (d *doc) yamlError(err error) {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		d.failf(0, "", "%s", oneLine(err.Error()))
		return
	}
	tk := ye.GetToken()
	msg := oneLine(ye.GetMessage())
	// Go type names mean nothing to the reader of a rig file.
	if m := typeErr.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("want %s, got %q", goKind(m[2]), tk.Value)
	}
	d.failf(tk.Position.Line, d.pathOf(tk.Position.Line, tk.Position.Column), "%s", msg)
}

var typeErr = regexp.MustCompile(`^cannot unmarshal (\S+) into Go (?:struct field \S+|value) of type (\S+)`)

func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map"), strings.Contains(t, "."):
		return "a mapping"
	}
	return t
}

// pathOf returns the field path of the node at line and column, "" if none.
func (d *doc) pathOf(line, col int) string {
	if d.file == nil {
		return ""
	}
	var found string
	for _, dd := range d.file.Docs {
		ast.Walk(visitor(func(n ast.Node) bool {
			tk := n.GetToken()
			if tk != nil && tk.Position != nil && tk.Position.Line == line && tk.Position.Column == col {
				found = n.GetPath()
				return false
			}
			return true
		}), dd)
	}
	return strings.TrimPrefix(strings.TrimPrefix(found, "$"), ".")
}

type visitor func(ast.Node) bool

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if v(n) {
		return v
	}
	return nil
}

// lineOf returns the line of field (as "boards[1].power.type"), or of its
// nearest parent in the file when it is absent.
func (d *doc) lineOf(field string) int {
	if d.file == nil {
		return 0
	}
	for f := field; ; {
		p, err := yaml.PathString("$." + f)
		if f == "" {
			p, err = yaml.PathString("$")
		}
		if err == nil {
			if n, err := p.FilterFile(d.file); err == nil && n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
				return n.GetToken().Position.Line
			}
		}
		if f == "" {
			return 0
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			f = ""
		} else {
			f = f[:i]
		}
	}
}

func (d *doc) failf(line int, field, format string, args ...any) {
	if d.err == nil {
		d.err = &FileError{File: d.name, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
}

// bad records a problem with field, located in the file.
func (d *doc) bad(field, format string, args ...any) {
	if d.err == nil {
		d.failf(d.lineOf(field), field, format, args...)
	}
}

// duration parses a Go duration field; "" is def.
func (d *doc) duration(field, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		d.bad(field, "%q: want a positive duration such as 90s or 5m", s)
		return def
	}
	return v
}

// regexp compiles a pattern field; "" is def.
func (d *doc) regexp(field, s, def string) *regexp.Regexp {
	if s == "" {
		s = def
	}
	re, err := regexp.Compile(s)
	if err != nil {
		d.bad(field, "%q: %v", s, err)
		return regexp.MustCompile(`\A\z.`) // matches nothing
	}
	return re
}

// size parses a byte count: 1048576, 1024KiB, 1MiB.
func (d *doc) size(field, s string) int64 {
	if s == "" {
		return 0
	}
	mult := int64(1)
	num := s
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, suffix)), m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		d.bad(field, "%q: want a size such as 1MiB, 512KiB or 1048576", s)
		return 0
	}
	return n * mult
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
