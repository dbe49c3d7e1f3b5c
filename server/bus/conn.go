package bus

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// dial opens a connection to the broker at uri for paho, with its reads
// buffered and its writes combined. paho reads a packet's fixed header a
// byte at a time and writes each packet on its own, every one a system call
// on a bare connection: at a fleet's rates, with a PUBACK for every report,
// those calls were most of what receiving cost.
func dial(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: opts.ConnectTimeout}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "tcp":
		conn, err = d.Dial("tcp", uri.Host)
	case "ssl":
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, opts.TLSConfig)
	default:
		err = fmt.Errorf("scheme %q, want tcp or ssl", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	c := &bufferedConn{
		Conn: conn, r: bufio.NewReaderSize(conn, 32<<10),
		pending: make(chan struct{}, 1), closing: make(chan struct{}), sent: make(chan struct{}),
	}
	go c.send()
	return c, nil
}

// bufferedConn is a connection whose reads go through a buffer and whose
// writes are gathered and sent by a goroutine of its own: what is written
// while it sends goes out together next. Write returns before the bytes are
// sent; after a failure to send, reads and writes fail, and paho
// reconnects. What paho writes is bounded by the messages it has
// in flight and the acknowledgments it owes, so the buffer is too.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu  sync.Mutex
	buf []byte // written, not yet sent
	err error  // why sending failed

	pending   chan struct{} // holds a token while buf has bytes
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	sent      chan struct{} // closed when send returns
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufferedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.buf = append(c.buf, b...)
	select {
	case c.pending <- struct{}{}:
	default:
	}
	return len(b), nil
}

// send sends what was written until Close, then what is left.
func (c *bufferedConn) send() {
	defer close(c.sent)
	var out []byte
	for {
		select {
		case <-c.pending:
		case <-c.closing:
			c.flush(out)
			return
		}
		var ok bool
		if out, ok = c.flush(out); !ok {
			return
		}
	}
}

// flush sends the bytes written so far, swapping buffers with out, and
// returns the buffer to use next time and whether sending worked.
func (c *bufferedConn) flush(out []byte) ([]byte, bool) {
	c.mu.Lock()
	out, c.buf = c.buf, out[:0]
	c.mu.Unlock()
	if len(out) == 0 {
		return out, true
	}
	if _, err := c.Conn.Write(out); err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		// End the reader with an error of its own. Closing the connection
		// would not do: paho takes a read on a closed connection for a
		// close of its own, and would not reconnect.
		c.Conn.SetReadDeadline(time.Unix(1, 0))
		return out, false
	}
	return out, true
}

// Close sends what was written, stops the sender and closes the connection.
func (c *bufferedConn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	<-c.sent
	return c.Conn.Close()
}
