// Package ctxio makes long copies stop when their context ends: io.Copy
// knows nothing of contexts, and a multi-gigabyte slot write or upload must
// stop on shutdown.
package ctxio

import (
	"context"
	"io"
)

// Reader returns a reader that reads from r until ctx ends, and from then
// on returns ctx's error.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	return &reader{ctx: ctx, r: r}
}

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c *reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
