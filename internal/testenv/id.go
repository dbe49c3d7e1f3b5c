package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
)

// ID returns a name unique to the calling test and to this run: the words of the test's name in
// lowercase ASCII letters and digits, joined by hyphens and cut at 40 characters, then a hyphen and 8
// random hex digits, as in "testmqtt-device-1-9f86d081". It suits MQTT client ids and fleet names,
// which every test of a run shares, and database and bucket names.
func ID(t testing.TB) string {
	words := strings.FieldsFunc(strings.ToLower(t.Name()), func(r rune) bool {
		return r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	name := strings.Join(words, "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	if name == "" {
		name = "test"
	}
	var suffix [4]byte
	rand.Read(suffix[:]) // never fails
	return name + "-" + hex.EncodeToString(suffix[:])
}
