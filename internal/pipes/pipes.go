// Package pipes widens the pipes that bundles stream through. A pipe holds
// 64 KiB by default, so a reader pulling a bundle from one (curl … |
// gitfleet bundle verify -) waits on the writer sixteen times per
// megabyte, and a stream was verified at half a file's speed or less.
// With the pipe holding a whole default chunk, it goes about as fast as
// the hashing.
package pipes

import "io"

// Size is what Widen asks a pipe to hold: one default chunk, 1 MiB, which
// is also the most an unprivileged process may ask for by default
// (/proc/sys/fs/pipe-max-size).
const Size = 1 << 20

// Widen grows the buffer of r to Size when r is a pipe (an *os.File on
// one). Anything else, or a kernel that refuses, is left as it is: a
// narrow pipe is slower, not wrong.
func Widen(r io.Reader) { widen(r) }
