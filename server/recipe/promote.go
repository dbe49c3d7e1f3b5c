package recipe

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Promote returns the fleet file with channel's release set to version (a
// version or a tag, "1.4.0" or "v1.4.0"), for a commit on the main branch.
//
// A promotion is reviewed and reverted as a Git commit, so it changes
// nothing but the one value: comments, order, quoting and blank lines stay,
// and the diff is one line. The value keeps the spelling of the one it
// replaces (with or without the leading "v", and its quotes); a channel
// without a release gets a "release: vX.Y.Z" line above its first field.
//
// Promote returns an error wrapping ErrUnknownChannel when the fleet has no
// such channel and ErrUnchanged when the channel already runs version.
func (fl *Fleet) Promote(channel, version string) ([]byte, error) {
	v, err := ParseRelease(version)
	if err != nil {
		return nil, fmt.Errorf("promote to %s: %w", channel, err)
	}
	c := fl.Channel(channel)
	if c == nil {
		return nil, fmt.Errorf("promote %s to %s: %w", version, channel, ErrUnknownChannel)
	}
	if c.Release == v {
		return nil, fmt.Errorf("promote %s to %s: %w", version, channel, ErrUnchanged)
	}
	out, err := setRelease(fl.src, channel, v)
	if err != nil {
		return nil, fmt.Errorf("promote %s to %s: edit %s: %w", version, channel, fl.file, err)
	}
	// The edit works on bytes, so check that it did exactly what it meant to.
	got, err := ParseFleet(fl.file, out)
	if err != nil {
		return nil, fmt.Errorf("promote %s to %s: edited %s does not parse: %w", version, channel, fl.file, err)
	}
	want := *fl
	want.Channels = append([]Channel(nil), fl.Channels...)
	want.Channel(channel).Release = v
	if !reflect.DeepEqual(got.Name, want.Name) || !reflect.DeepEqual(got.Channels, want.Channels) {
		return nil, fmt.Errorf("promote %s to %s: edited %s says something else than intended", version, channel, fl.file)
	}
	return out, nil
}

// setRelease edits src in place of its syntax tree: goccy/go-yaml's
// printer normalises comments and scalars, which would turn a one-line
// promotion into a noisy diff.
func setRelease(src []byte, channel, version string) ([]byte, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, err
	}
	var root ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			if _, ok := doc.Body.(*ast.CommentGroupNode); !ok {
				root = doc.Body
				break
			}
		}
	}
	channels := lookup(root, "channels")
	if channels == nil {
		return nil, fmt.Errorf("no channels")
	}
	ch := lookup(channels.Value, channel)
	if ch == nil {
		return nil, fmt.Errorf("no channel %s", channel)
	}
	if rel := lookup(ch.Value, "release"); rel != nil {
		if _, null := rel.Value.(*ast.NullNode); !null {
			return replaceValue(src, rel.Value.GetToken(), version)
		}
		return fillNull(src, rel.Start, "v"+version)
	}
	return insertRelease(src, ch.Value, "v"+version)
}

// lookup returns the entry of mapping n whose key is name, or nil.
func lookup(n ast.Node, name string) *ast.MappingValueNode {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	for _, mv := range values {
		if k, ok := mv.Key.(*ast.StringNode); ok && k.Value == name {
			return mv
		}
	}
	return nil
}

// offset returns the byte offset in src of a token position. goccy/go-yaml
// counts lines from 1 and columns, in runes, from 1; its Offset field is not
// reliable across versions.
func offset(src []byte, pos *token.Position) (int, error) {
	if pos == nil || pos.Line < 1 || pos.Column < 1 {
		return 0, fmt.Errorf("no position")
	}
	off := 0
	for l := 1; l < pos.Line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return 0, fmt.Errorf("line %d past the end", pos.Line)
		}
		off += i + 1
	}
	for c := 1; c < pos.Column; c++ {
		if off >= len(src) || src[off] == '\n' {
			return 0, fmt.Errorf("line %d column %d past the end of the line", pos.Line, pos.Column)
		}
		_, size := utf8.DecodeRune(src[off:])
		off += size
	}
	return off, nil
}

// replaceValue replaces the scalar tk with version, in the same quotes and
// with or without a leading "v" like the value it replaces.
func replaceValue(src []byte, tk *token.Token, version string) ([]byte, error) {
	off, err := offset(src, tk.Position)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(tk.Value, "v") {
		version = "v" + version
	}
	for _, q := range []string{`"`, `'`, ""} {
		old := q + tk.Value + q
		if !bytes.HasPrefix(src[off:], []byte(old)) || (q == "" && !endsScalar(src, off+len(old))) {
			continue
		}
		return splice(src, off, len(old), q+version+q), nil
	}
	return nil, fmt.Errorf("line %d: release %q is not a single-line value", tk.Position.Line, tk.Value)
}

// endsScalar reports whether a plain scalar can end at src[i].
func endsScalar(src []byte, i int) bool {
	return i == len(src) || strings.IndexByte(" \t\r\n,}]#", src[i]) >= 0
}

// fillNull gives a value to "release:", "release: ~" or "release: null".
func fillNull(src []byte, colon *token.Token, value string) ([]byte, error) {
	off, err := offset(src, colon.Position)
	if err != nil {
		return nil, err
	}
	if off >= len(src) || src[off] != ':' {
		return nil, fmt.Errorf("line %d: no ':' after release", colon.Position.Line)
	}
	i := off + 1
	for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
		i++
	}
	for _, null := range []string{"~", "null", "Null", "NULL"} {
		if bytes.HasPrefix(src[i:], []byte(null)) && endsScalar(src, i+len(null)) {
			return splice(src, i, len(null), value), nil
		}
	}
	return splice(src, off+1, 0, " "+value), nil
}

// insertRelease adds a release field to the channel mapping m: a line
// above its first field in block style, the first entry in flow style.
func insertRelease(src []byte, m ast.Node, value string) ([]byte, error) {
	mm, ok := m.(*ast.MappingNode)
	if !ok {
		if mv, ok := m.(*ast.MappingValueNode); ok {
			mm = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
		} else {
			return nil, fmt.Errorf("channel is not a mapping")
		}
	}
	if mm.IsFlowStyle {
		off, err := offset(src, mm.Start.Position)
		if err != nil || src[off] != '{' {
			return nil, fmt.Errorf("channel mapping: no '{'")
		}
		return splice(src, off+1, 0, "release: "+value+", "), nil
	}
	if len(mm.Values) == 0 {
		return nil, fmt.Errorf("empty channel")
	}
	key := mm.Values[0].Key.GetToken()
	off, err := offset(src, key.Position)
	if err != nil {
		return nil, err
	}
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	indent := src[start:off]
	if len(bytes.Trim(indent, " ")) != 0 {
		return nil, fmt.Errorf("line %d: channel's first field does not start its line", key.Position.Line)
	}
	eol := "\n"
	if end := bytes.IndexByte(src[off:], '\n'); end > 0 && src[off+end-1] == '\r' {
		eol = "\r\n"
	}
	return splice(src, start, 0, string(indent)+"release: "+value+eol), nil
}

func splice(src []byte, off, n int, s string) []byte {
	out := make([]byte, 0, len(src)-n+len(s))
	out = append(out, src[:off]...)
	out = append(out, s...)
	return append(out, src[off+n:]...)
}
