package topic

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxIDLen is the length limit of an ID, in bytes. It keeps the longest topic
// far below MQTT's 65,535-byte limit and fits database columns and file names.
const MaxIDLen = 128

// CheckID returns an error unless id can name a fleet, channel, device or
// shared-subscription group. An ID is 1 to MaxIDLen bytes of valid UTF-8 and
// contains none of:
//   - "/", "+" and "#", which would change a topic's levels or act as
//     wildcards;
//   - control characters, whitespace and Unicode non-characters, which MQTT
//     asks senders to avoid and which hide in logs and terminals.
//
// An ID is not "." or "..", so it is also safe as one path segment of a URL
// or file name.
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("%s is %d bytes, over the limit of %d", quote(id), len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8", quote(id))
	case id == "." || id == "..":
		return fmt.Errorf("%q is not allowed", id)
	}
	for _, r := range id {
		switch {
		case r == '/' || r == '+' || r == '#':
			return fmt.Errorf("%s contains %q", quote(id), r)
		case unicode.IsControl(r), unicode.IsSpace(r), isNonCharacter(r):
			return fmt.Errorf("%s contains %U", quote(id), r)
		}
	}
	return nil
}

// isNonCharacter reports whether r is one of Unicode's 66 non-characters,
// which MQTT's UTF-8 strings should not contain.
func isNonCharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}

// quote returns s as a Go string literal, cut short if long, so an error
// message stays one readable line whatever bytes s holds.
func quote(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit]) + "..."
}
