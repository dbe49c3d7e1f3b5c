package hil

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/internal/yamlfile"
)

// A FileError is a problem in a rig or plan file. Its message alone is
// enough to fix the file:
//
//	rig.yaml:12: boards[1].power.type: "usb": want command, relay, modem or vboard
type FileError = yamlfile.Error

// A doc is a rig or plan file being read: yamlfile's strict decoding, and
// the checks of values rig and plan files share.
type doc struct{ *yamlfile.Doc }

// decode parses data strictly (unknown fields are errors) into v.
func decode(name string, data []byte, v any) doc {
	return doc{yamlfile.Decode(name, data, v)}
}

// bad records a problem with field, located in the file.
func (d doc) bad(field, format string, args ...any) { d.Fail(field, format, args...) }

// duration parses a Go duration field; "" is def.
func (d doc) duration(field, s string, def time.Duration) time.Duration {
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
func (d doc) regexp(field, s, def string) *regexp.Regexp {
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
func (d doc) size(field, s string) int64 {
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
