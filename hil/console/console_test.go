package console

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/hil/internal/ptytest"
)

// syncBuffer is a log the test reads while the console writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestExpect(t *testing.T) {
	a, b := ptytest.Pair(t)
	c, err := Open(Config{Port: a, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var log syncBuffer
	c.SetLog(&log)
	board, err := os.OpenFile(b, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer board.Close()
	ctx := context.Background()
	re := regexp.MustCompile

	board.WriteString("U-Boot 2024.01\r\nDRAM:  1 GiB\r\ninstall 10%\rinstall 100%\x1b[K\r\nroot@vb:~# ")
	cases := []struct {
		name     string
		patterns []*regexp.Regexp
		index    int
		line     string
		before   int
	}{
		{"first line", []*regexp.Regexp{re(`^U-Boot (\S+)`)}, 0, "U-Boot 2024.01", 0},
		{"one of, passing a line", []*regexp.Regexp{re(`panic`), re(`install (\d+)%`)}, 1, "install 100%", 1},
		{"a prompt without a newline", []*regexp.Regexp{re(`# $`)}, 0, "root@vb:~# ", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.Expect(ctx, 5*time.Second, tc.patterns...)
			if err != nil {
				t.Fatal(err)
			}
			if m.Index != tc.index || m.Line.Text != tc.line || len(m.Before) != tc.before {
				t.Errorf("got index %d line %q, %d lines before; want %d %q, %d", m.Index, m.Line.Text, len(m.Before), tc.index, tc.line, tc.before)
			}
		})
	}

	// The prompt matched as a partial line is not matched again when the
	// echo of a command completes it.
	if err := c.Send("uname"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := board.Read(got); err != nil || string(got) != "uname\r" {
		t.Fatalf("board read %q, %v; want %q", got, err, "uname\r")
	}
	board.WriteString("uname\r\nLinux\r\n")
	if m, err := c.Expect(ctx, 5*time.Second, re(`uname|Linux`)); err != nil || m.Line.Text != "Linux" {
		t.Fatalf("after the prompt: got %q, %v; want Linux (the echo line holds the consumed prompt)", m.Line.Text, err)
	}

	_, err = c.Expect(ctx, 200*time.Millisecond, re(`never`))
	var te *TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `"never"`) {
		t.Errorf("timeout: err = %v", err)
	}
	if err := c.Break(10 * time.Millisecond); err != nil {
		t.Errorf("break on a pty: %v", err)
	}

	// Every complete line is in the log with a timestamp.
	for _, want := range []string{" U-Boot 2024.01\n", " install 100%\n", " root@vb:~# uname\n", " Linux\n"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if l := strings.SplitN(log.String(), "\n", 2)[0]; !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} `).MatchString(l) {
		t.Errorf("log line %q has no timestamp", l)
	}
}

func TestClosedConsoleFailsExpect(t *testing.T) {
	a, _ := ptytest.Pair(t)
	c, err := Open(Config{Port: a})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Expect(context.Background(), time.Second, regexp.MustCompile(`x`)); !errors.Is(err, ErrClosed) {
		t.Errorf("expect on a closed console: err = %v, want ErrClosed", err)
	}
}

func TestModeNamesTheField(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{}, ""},
		{"7E1", Config{Baud: 9600, DataBits: 7, Parity: "even"}, ""},
		{"bad parity", Config{Parity: "strange"}, "parity:"},
		{"bad data bits", Config{DataBits: 9}, "data_bits:"},
		{"bad stop bits", Config{StopBits: "3"}, "stop_bits:"},
		{"negative baud", Config{Baud: -1}, "baud:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.Mode()
			if (err == nil) != (tc.want == "") || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
}
