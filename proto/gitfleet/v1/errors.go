package gitfleetv1

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTextLen is the length limit, in bytes, of a free-text field meant for
// people: Error.message and HealthCheck.message.
const MaxTextLen = 1024

// ErrorCoder is implemented by errors that know their wire error code.
type ErrorCoder interface {
	error
	ErrorCode() ErrorCode
}

// WithCode returns err with the wire error code attached: ErrorCodeOf of the
// result, or of any error wrapping it, is code. It returns nil if err is nil.
func WithCode(code ErrorCode, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// codedError is an error with its wire error code attached.
type codedError struct {
	code ErrorCode
	err  error
}

func (e *codedError) Error() string        { return e.err.Error() }
func (e *codedError) Unwrap() error        { return e.err }
func (e *codedError) ErrorCode() ErrorCode { return e.code }

// ErrorCodeOf returns the code of the first error in err's chain that
// implements ErrorCoder, ERROR_CODE_INTERNAL if none does, and
// ERROR_CODE_UNSPECIFIED if err is nil.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ErrorCode_ERROR_CODE_UNSPECIFIED
	}
	if c, ok := errors.AsType[ErrorCoder](err); ok {
		return c.ErrorCode()
	}
	return ErrorCode_ERROR_CODE_INTERNAL
}

// ErrorOf returns the wire form of err: its ErrorCodeOf and its message made
// fit for Error.message by CleanText. It returns nil if err is nil.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	return &Error{Code: ErrorCodeOf(err), Message: CleanText(err.Error())}
}

// CleanText returns s made fit for a free-text field: invalid UTF-8 becomes
// U+FFFD, each control character (newlines and tabs included) a space, and the
// result is cut at a character boundary to at most MaxTextLen bytes. Senders
// call it on text they did not write, such as a health check's output.
func CleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(s) <= MaxTextLen {
		return s
	}
	cut := MaxTextLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
