package gitfleetv1

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// TestErrorCodeNumbersAreStable pins every wire error code to its number.
// Devices in the field send these numbers: a failure here means a code was
// renumbered or removed, which error.proto forbids. A new code is added here
// at its new number.
func TestErrorCodeNumbersAreStable(t *testing.T) {
	want := map[string]int32{
		"ERROR_CODE_UNSPECIFIED":          0,
		"ERROR_CODE_BAD_SIGNATURE":        1,
		"ERROR_CODE_UNTRUSTED_KEY":        2,
		"ERROR_CODE_THRESHOLD_NOT_MET":    3,
		"ERROR_CODE_EXPIRED":              4,
		"ERROR_CODE_STALE_MESSAGE":        5,
		"ERROR_CODE_DOWNGRADE":            6,
		"ERROR_CODE_INCOMPATIBLE_DEVICE":  7,
		"ERROR_CODE_DIGEST_MISMATCH":      8,
		"ERROR_CODE_CORRUPT_CHUNK":        9,
		"ERROR_CODE_TRUNCATED":            10,
		"ERROR_CODE_OVERSIZED":            11,
		"ERROR_CODE_UNKNOWN_FORMAT":       12,
		"ERROR_CODE_MALFORMED_MESSAGE":    13,
		"ERROR_CODE_UNSUPPORTED_PROTOCOL": 14,
		"ERROR_CODE_DOWNLOAD_FAILED":      15,
		"ERROR_CODE_TIMEOUT":              16,
		"ERROR_CODE_NO_SPACE":             17,
		"ERROR_CODE_SLOT_WRITE_FAILED":    18,
		"ERROR_CODE_BOOTLOADER_FAILED":    19,
		"ERROR_CODE_HEALTH_CHECK_FAILED":  20,
		"ERROR_CODE_ROLLED_BACK":          21,
		"ERROR_CODE_REBOOT_LOOP":          22,
		"ERROR_CODE_INTERRUPTED":          23,
		"ERROR_CODE_CANCELLED":            24,
		"ERROR_CODE_BUSY":                 25,
		"ERROR_CODE_INTERNAL":             26,
	}
	got := make(map[string]int32)
	values := ErrorCode(0).Descriptor().Values()
	for i := range values.Len() {
		v := values.Get(i)
		got[string(v.Name())] = int32(v.Number())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error codes changed (-pinned +now):\n%s", diff)
	}
}

// codeError is an error type of another package that knows its wire code.
type codeError struct{ code ErrorCode }

func (e codeError) Error() string        { return "coded " + e.code.String() }
func (e codeError) ErrorCode() ErrorCode { return e.code }

func TestErrorCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ErrorCode
	}{
		{name: "nil", err: nil, want: ErrorCode_ERROR_CODE_UNSPECIFIED},
		{name: "plain", err: errors.New("boom"), want: ErrorCode_ERROR_CODE_INTERNAL},
		{name: "with code", err: WithCode(ErrorCode_ERROR_CODE_NO_SPACE, fs.ErrExist), want: ErrorCode_ERROR_CODE_NO_SPACE},
		{name: "wrapped with code", err: fmt.Errorf("write slot b: %w", WithCode(ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED, fs.ErrClosed)), want: ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED},
		{name: "outermost code wins", err: WithCode(ErrorCode_ERROR_CODE_ROLLED_BACK, WithCode(ErrorCode_ERROR_CODE_HEALTH_CHECK_FAILED, fs.ErrInvalid)), want: ErrorCode_ERROR_CODE_ROLLED_BACK},
		{name: "other package's type", err: fmt.Errorf("verify: %w", codeError{ErrorCode_ERROR_CODE_BAD_SIGNATURE}), want: ErrorCode_ERROR_CODE_BAD_SIGNATURE},
		{name: "field error", err: &FieldError{Message: "DeviceEvent", Field: "time", Reason: "missing"}, want: ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "joined", err: errors.Join(errors.New("a"), WithCode(ErrorCode_ERROR_CODE_TIMEOUT, errors.New("b"))), want: ErrorCode_ERROR_CODE_TIMEOUT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCodeOf(tt.err); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWithCode(t *testing.T) {
	if err := WithCode(ErrorCode_ERROR_CODE_INTERNAL, nil); err != nil {
		t.Errorf("WithCode(code, nil) = %v, want nil", err)
	}
	err := WithCode(ErrorCode_ERROR_CODE_NO_SPACE, fs.ErrExist)
	if got, want := err.Error(), fs.ErrExist.Error(); got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("errors.Is(%v, fs.ErrExist) = false, want true", err)
	}
}

func TestErrorOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *Error
	}{
		{name: "nil", err: nil, want: nil},
		{name: "plain", err: errors.New("boom"), want: &Error{Code: ErrorCode_ERROR_CODE_INTERNAL, Message: "boom"}},
		{
			name: "coded over lines",
			err:  WithCode(ErrorCode_ERROR_CODE_HEALTH_CHECK_FAILED, errors.New("check app:\nexit 3")),
			want: &Error{Code: ErrorCode_ERROR_CODE_HEALTH_CHECK_FAILED, Message: "check app: exit 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorOf(tt.err)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "download failed: 503", want: "download failed: 503"},
		{name: "empty", in: "", want: ""},
		{name: "newlines and tabs", in: "a\nb\tc\r\n", want: "a b c  "},
		{name: "terminal escape", in: "\x1b[31mred", want: " [31mred"},
		{name: "C1 control", in: "a\u0085b", want: "a b"},
		{name: "invalid UTF-8", in: "a\xff\xfeb", want: "a\uFFFDb"},
		{name: "non-ASCII kept", in: "Gerät ist voll", want: "Gerät ist voll"},
		{name: "at the limit", in: strings.Repeat("a", MaxTextLen), want: strings.Repeat("a", MaxTextLen)},
		{name: "cut", in: strings.Repeat("a", MaxTextLen+10), want: strings.Repeat("a", MaxTextLen)},
		{name: "cut before a split character", in: strings.Repeat("a", MaxTextLen-1) + "é", want: strings.Repeat("a", MaxTextLen-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CleanText(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err := checkText(got); err != nil {
				t.Errorf("checkText(CleanText(%q)): %v", tt.in, err)
			}
			if !utf8.ValidString(got) {
				t.Errorf("got invalid UTF-8 %q", got)
			}
		})
	}
}
