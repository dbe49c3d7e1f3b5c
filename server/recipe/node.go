package recipe

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/gitfleet/gitfleet/internal/yamlfile"
)

// MaxFileSize bounds the size of gitfleet.yaml and fleet.yaml. Both are read
// from a repository anyone with push access can write to, so the parser
// refuses to spend memory on anything larger.
const MaxFileSize = yamlfile.MaxSize

// An Error is a problem in gitfleet.yaml or fleet.yaml. It names the file,
// the line and the field, so that its message alone is enough to fix the
// file:
//
//	fleet.yaml:12: channels.production.policy.max_failure_rate: 1.5 is not between 0 and 1
type Error = yamlfile.Error

// A decoder walks the YAML syntax tree of one file by hand rather than
// through reflection, so that every error carries the line and the dotted
// field path of the node it is about. It keeps the first error only:
// fixing a file goes one error at a time, and later errors are often
// consequences of the first.
type decoder struct {
	file string
	err  *Error
}

// A field is a value in the tree together with where it is: its dotted path
// and the line to blame when the value itself has no position (a missing
// field is blamed on its parent's key).
type field struct {
	path string
	line int
	node ast.Node
}

func (d *decoder) failf(line int, path, format string, args ...any) {
	if d.err == nil {
		d.err = &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)}
	}
}

// fail records a problem with f's value.
func (d *decoder) fail(f field, format string, args ...any) {
	d.failf(f.line, f.path, format, args...)
}

// parse parses data as a single YAML document and returns its root node,
// or nil (with the error recorded) when there is none.
func (d *decoder) parse(data []byte) ast.Node {
	root, err := yamlfile.Parse(d.file, data)
	if err != nil && d.err == nil {
		d.err = err
	}
	return root
}

func line(n ast.Node) int { return yamlfile.Line(n) }

// value returns f's node, or nil when f is null or absent. Anchors, aliases
// and tags are refused: they make a file harder to review in a pull
// request, aliases can blow up in size, and a promotion edits one value in
// place, which an alias would silently share.
func (d *decoder) value(f field) ast.Node {
	switch n := f.node.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.AnchorNode, *ast.AliasNode:
		d.fail(f, "YAML anchors and aliases are not supported")
		return nil
	case *ast.TagNode:
		d.fail(f, "YAML tags such as %s are not supported", n.Start.Value)
		return nil
	}
	return f.node
}

// A spec is one field a mapping may have, with what to do with its value.
type spec struct {
	name     string
	required bool
	decode   func(f field)
}

// mapping decodes f as a mapping with the given fields: unknown fields are
// errors, and so are missing required ones. A null value decodes as an empty
// mapping.
func (d *decoder) mapping(f field, specs ...spec) {
	seen := make(map[string]bool)
	d.entries(f, func(key string, v field) {
		for _, s := range specs {
			if s.name == key {
				seen[key] = true
				// A null optional field is the same as no field: its default.
				if _, null := v.node.(*ast.NullNode); s.required || !null {
					s.decode(v)
				}
				return
			}
		}
		d.fail(v, "unknown field (want %s)", fieldNames(specs))
	})
	for _, s := range specs {
		if s.required && !seen[s.name] {
			d.failf(f.line, join(f.path, s.name), "missing")
		}
	}
}

func fieldNames(specs []spec) string {
	var b strings.Builder
	for i, s := range specs {
		switch {
		case i == 0:
		case i == len(specs)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(s.name)
	}
	return b.String()
}

// entries calls fn for each key of the mapping f, in file order, with the
// value's field. Keys must be plain strings. Duplicate keys never reach
// here: the parser refuses them.
func (d *decoder) entries(f field, fn func(key string, v field)) {
	n := d.value(f)
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case nil:
		return
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		d.fail(f, "want a mapping, got %s", kind(n))
		return
	}
	for _, mv := range values {
		kl := line(mv.Key)
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			d.failf(kl, f.path, "YAML merge keys (<<) are not supported")
			return
		}
		k, ok := mv.Key.(*ast.StringNode)
		if !ok {
			d.failf(kl, f.path, "key %s: want a string", kind(mv.Key))
			return
		}
		fn(k.Value, field{path: join(f.path, k.Value), line: kl, node: mv.Value})
	}
}

// sequence calls fn for each element of the sequence f. A null value is an
// empty sequence.
func (d *decoder) sequence(f field, fn func(i int, v field)) {
	n := d.value(f)
	switch s := n.(type) {
	case nil:
	case *ast.SequenceNode:
		for i, v := range s.Values {
			l := line(v)
			if l == 0 {
				l = f.line
			}
			fn(i, field{path: fmt.Sprintf("%s[%d]", f.path, i), line: l, node: v})
		}
	default:
		d.fail(f, "want a list, got %s", kind(n))
	}
}

// scalar returns the text of a scalar value as written, or ok false for a
// null value. The text is the token's, not a converted number, so that
// "release: 1.10" stays "1.10".
func (d *decoder) scalar(f field) (text string, ok bool) {
	n := d.value(f)
	switch s := n.(type) {
	case nil:
		return "", false
	case *ast.StringNode:
		return s.Value, true
	case *ast.LiteralNode:
		return s.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	d.fail(f, "want a single value, got %s", kind(n))
	return "", false
}

// str returns a string value; null is "".
func (d *decoder) str(f field) string {
	s, _ := d.scalar(f)
	return s
}

// number returns a numeric value, or ok false (with the error recorded).
func (d *decoder) number(f field) (float64, bool) {
	n := d.value(f)
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		v, err := strconv.ParseFloat(n.GetToken().Value, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			d.fail(f, "%s: want a decimal number", n.GetToken().Value)
			return 0, false
		}
		return v, true
	case *ast.InfinityNode, *ast.NanNode:
		d.fail(f, "%s: want a decimal number", n.GetToken().Value)
	case nil:
		d.fail(f, "want a number, got null")
	default:
		d.fail(f, "want a number, got %s", kind(n))
	}
	return 0, false
}

// integer returns a decimal integer value from min to max.
func (d *decoder) integer(f field, min, max int) (int, bool) {
	n := d.value(f)
	if _, ok := n.(*ast.IntegerNode); !ok {
		if n == nil {
			d.fail(f, "want a whole number, got null")
		} else {
			d.fail(f, "want a whole number, got %s", kind(n))
		}
		return 0, false
	}
	text := n.GetToken().Value
	v, err := strconv.Atoi(text)
	if err != nil || v < min || v > max || strings.HasPrefix(text, "+") {
		d.fail(f, "%s: want a whole number from %d to %d", text, min, max)
		return 0, false
	}
	return v, true
}

// duration returns a Go duration ("90s", "30m", "1h30m") between min and max.
func (d *decoder) duration(f field, min, max time.Duration) (time.Duration, bool) {
	s, ok := d.scalar(f)
	if !ok {
		if d.err == nil {
			d.fail(f, "want a duration such as 30m or 1h30m, got null")
		}
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(f, "%q: want a duration such as 30m or 1h30m", s)
		return 0, false
	}
	if v < min || v > max {
		d.fail(f, "%s is not between %s and %s", s, fmtDuration(min), fmtDuration(max))
		return 0, false
	}
	return v, true
}

// fmtDuration writes whole hours and minutes the way people write them:
// "24h" rather than "24h0m0s".
func fmtDuration(v time.Duration) string {
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// kind names a node's YAML type for error messages.
func kind(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return strings.ToLower(n.Type().String())
}
