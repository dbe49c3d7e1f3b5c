// Package yamlfile reads gitfleet's YAML files — agent.yaml, server.yaml,
// gitfleet.yaml, fleet.yaml, HIL rigs and plans — strictly, with errors
// whose message alone is enough to fix the file:
//
//	rig.yaml:12: boards[1].power.type: "usb": want command, relay, modem or vboard
//
// Parse checks a file and returns its syntax tree, for readers that walk
// it themselves; Decode also decodes it into a Go value, refusing unknown
// fields and values of the wrong type.
package yamlfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MaxSize bounds a file: every file gitfleet reads is small, and some come
// from a repository anyone with push access can write to, so no reader
// spends memory on anything larger.
const MaxSize = 1 << 20

// An Error is a problem in a file: its name, the line and the field.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem is with the file as a whole.
	Line int
	// Field is the dotted path of the field, with [i] for list elements:
	// "images[1].path". It is empty for syntax errors and whole-file
	// problems.
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Parse parses data, the file name, as exactly one YAML document and
// returns its body. Files over MaxSize, text that is not UTF-8, syntax
// errors, empty files and a second document are errors; documents holding
// only comments do not count.
func Parse(name string, data []byte) (ast.Node, *Error) {
	fail := func(line int, format string, args ...any) (ast.Node, *Error) {
		return nil, &Error{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxSize {
		return fail(0, "%d bytes: at most %d allowed", len(data), MaxSize)
	}
	if !utf8.Valid(data) {
		return fail(0, "not UTF-8 text")
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var se *yaml.SyntaxError
		if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil {
			return fail(se.Token.Position.Line, "%s", oneLine(se.Message))
		}
		return fail(0, "%s", oneLine(err.Error()))
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if _, ok := doc.Body.(*ast.CommentGroupNode); ok {
			continue
		}
		if body != nil {
			return fail(Line(doc.Body), "a second YAML document: want exactly one")
		}
		body = doc.Body
	}
	if body == nil {
		return fail(0, "empty file")
	}
	return body, nil
}

// Line returns the line of n, or 0 if it has none.
func Line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// A Doc is a file read by Decode. It keeps the first problem found, by
// Decode or by the reader's own checks of the decoded values (Fail), and
// places those checks' errors at the line of the field they name: fixing
// a file goes one error at a time, and later errors are often consequences
// of the first.
type Doc struct {
	name string
	body ast.Node
	err  *Error
}

// Decode parses data, the file name, like Parse and decodes it into v.
// Unknown fields and values of the wrong type are errors, and so are
// anchors, aliases, merge keys and tags: they hide from a reader what the
// file says, and the YAML library panics on some tags.
func Decode(name string, data []byte, v any) *Doc {
	d := &Doc{name: name}
	d.body, d.err = Parse(name, data)
	if d.err != nil {
		return d
	}
	ast.Walk(visitor(func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.TagNode:
			d.Failf(Line(n), pathOf(n), "YAML tags such as %s are not supported", n.Start.Value)
		case *ast.AnchorNode, *ast.AliasNode, *ast.MergeKeyNode:
			d.Failf(Line(n), pathOf(n), "YAML anchors, aliases and merge keys are not supported")
		}
		return d.err == nil
	}), d.body)
	if d.err != nil {
		return d
	}
	if err := unmarshal(data, v); err != nil {
		d.libraryError(err)
	}
	return d
}

// Err returns the first problem found, or nil.
func (d *Doc) Err() error {
	if d.err == nil {
		return nil
	}
	return d.err
}

// Failf records a problem at line with field.
func (d *Doc) Failf(line int, field, format string, args ...any) {
	if d.err == nil {
		d.err = &Error{File: d.name, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
}

// Fail records a problem with field ("boards[1].power.type"), at the line
// of that field or, when it is absent, of its nearest parent in the file.
func (d *Doc) Fail(field, format string, args ...any) {
	if d.err == nil {
		d.Failf(d.LineOf(field), field, format, args...)
	}
}

// LineOf returns the line of field — of its key, for a field in a mapping
// — or of its nearest parent in the file when it is absent; the whole
// file's first line for a field that has no parent in the file.
func (d *Doc) LineOf(field string) int {
	if d.body == nil {
		return 0
	}
	for f := field; ; {
		if l := d.lineOfField(f); l > 0 || f == "" {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			f = ""
		} else {
			f = f[:i]
		}
	}
}

// lineOfField returns the line of field if it is in the file, else 0.
func (d *Doc) lineOfField(field string) int {
	line := 0
	ast.Walk(visitor(func(n ast.Node) bool {
		if mv, ok := n.(*ast.MappingValueNode); ok && mv.Value != nil && pathOf(mv.Value) == field {
			line = Line(mv.Key)
		} else if pathOf(n) == field {
			line = Line(n)
		}
		return line == 0
	}), d.body)
	return line
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

// libraryError records an error of the YAML library's decoder with its line
// and, where the node it is about can be found, its field, in words rather
// than Go type names.
func (d *Doc) libraryError(err error) {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		d.Failf(0, "", "%s", oneLine(err.Error()))
		return
	}
	tk := ye.GetToken()
	msg := oneLine(ye.GetMessage())
	if m := typeError.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("want %s, got %s", goKind(m[2]), describe(tk.Value, m[1]))
	} else if m := kindError.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("want %s, got %s", yamlKind(m[2]), yamlKind(m[1]))
	}
	d.Failf(tk.Position.Line, d.fieldAt(tk.Position.Line, tk.Position.Column), "%s", msg)
}

// typeError matches the library's "cannot unmarshal SRC into Go struct
// field F of type DST": the reader of the file needs only DST and the value.
var typeError = regexp.MustCompile(`^cannot unmarshal (.+?) into Go (?:struct field \S+|value) of type (\S+)`)

// kindError matches the library's "mapping was used where sequence is
// expected".
var kindError = regexp.MustCompile(`^(\w+) was used where (\w+) is expected$`)

// yamlKind names a YAML node kind of the library's messages in the words
// of the other messages.
func yamlKind(k string) string {
	switch k {
	case "sequence":
		return "a list"
	case "mapping":
		return "a mapping"
	}
	return k
}

// describe quotes a scalar value; a list or mapping (the library gives its
// first token, "[" or "{" or "-") is named instead.
func describe(value, goSrc string) string {
	switch {
	case strings.HasPrefix(goSrc, "[]"):
		return "a list"
	case strings.HasPrefix(goSrc, "map"):
		return "a mapping"
	}
	return fmt.Sprintf("%q", value)
}

// goKind names a Go destination type in the words of a YAML file.
func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
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

// fieldAt returns the field path of the node at line and column, "" if
// none.
func (d *Doc) fieldAt(line, col int) string {
	var found ast.Node
	ast.Walk(visitor(func(n ast.Node) bool {
		if tk := n.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line == line && tk.Position.Column == col {
			found = n
			return false
		}
		return found == nil
	}), d.body)
	if found == nil {
		return ""
	}
	return pathOf(found)
}

// pathOf returns n's field path without the library's "$." root.
func pathOf(n ast.Node) string {
	return strings.TrimPrefix(strings.TrimPrefix(n.GetPath(), "$"), ".")
}

type visitor func(ast.Node) bool

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if v(n) {
		return v
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
