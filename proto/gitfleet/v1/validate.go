package gitfleetv1

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gitfleet/gitfleet/proto/topic"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits on the fields of wire messages. With MaxMessageSize they bound what
// one message can make a peer store.
const (
	// MaxNameLen bounds a name-like field: a version, tag, state, slot, key
	// id, payload type, device type, image name or boot id, in bytes.
	MaxNameLen = 128

	// MaxURLLen bounds a URL, in bytes; presigned object-store URLs are long.
	MaxURLLen = 4096

	// MaxSignatures bounds the signatures on one SignedMessage.
	MaxSignatures = 16

	// MaxSignatureLen bounds one signature, in bytes: room for post-quantum
	// schemes such as ML-DSA.
	MaxSignatureLen = 8 << 10

	// MaxImages bounds the images of a Release.
	MaxImages = 64

	// MaxDeviceTypes bounds the device types of a Release.
	MaxDeviceTypes = 64

	// MaxHealthChecks bounds the checks of a Health.
	MaxHealthChecks = 64

	// MaxThreshold is the wave threshold, in basis points, that reaches every
	// device.
	MaxThreshold = 10000

	// MaxLabels bounds the labels of a DeviceStatus, MaxLabelNameLen a
	// label's name and MaxLabelValueLen its value, in bytes. fleet.yaml's
	// label selectors and agent.yaml's device.labels have the same bounds
	// (CheckLabel).
	MaxLabels        = 64
	MaxLabelNameLen  = 64
	MaxLabelValueLen = 128
)

// FieldError says which field of a wire message breaks which rule. Its wire
// code is ERROR_CODE_MALFORMED_MESSAGE.
type FieldError struct {
	// Message is the message's protobuf name, e.g. "ChannelState".
	Message string

	// Field is the field's path in protobuf names, e.g.
	// "release.images[2].url".
	Field string

	// Reason is the rule the field breaks, e.g. "empty".
	Reason string
}

// Error returns "invalid <Message>: <Field>: <Reason>", one line.
func (e *FieldError) Error() string {
	return "invalid " + e.Message + ": " + e.Field + ": " + e.Reason
}

// ErrorCode returns ERROR_CODE_MALFORMED_MESSAGE.
func (e *FieldError) ErrorCode() ErrorCode { return ErrorCode_ERROR_CODE_MALFORMED_MESSAGE }

var (
	errMissing = errors.New("missing")
	errEmpty   = errors.New("empty")
	errZero    = errors.New("zero")
)

// Validate returns a *FieldError naming the first field of m that breaks the
// protocol's rules, or nil. Freshness (expiry, sequence) depends on the
// reader's clock and history, so the reader checks it after Validate.
func (m *SignedMessage) Validate() error {
	v := validator{message: "SignedMessage"}
	v.check("payload_type", checkName(m.GetPayloadType()))
	if len(m.GetPayload()) == 0 {
		v.check("payload", errEmpty)
	}
	sigs := m.GetSignatures()
	switch {
	case len(sigs) == 0:
		v.check("signatures", errEmpty)
	case len(sigs) > MaxSignatures:
		v.check("signatures", fmt.Errorf("%d signatures, over the limit of %d", len(sigs), MaxSignatures))
	}
	// A verifier counts each key once; a repeated key can only be an attempt
	// to make one key look like a threshold.
	keyIDs := uniqueNames{}
	for i, s := range sigs {
		path := fmt.Sprintf("signatures[%d]", i)
		v.check(path+".key_id", keyIDs.check(s.GetKeyId(), "signature's key"))
		switch n := len(s.GetSig()); {
		case n == 0:
			v.check(path+".sig", errEmpty)
		case n > MaxSignatureLen:
			v.check(path+".sig", fmt.Errorf("%d bytes, over the limit of %d", n, MaxSignatureLen))
		}
	}
	return v.err()
}

// Validate returns a *FieldError naming the first field of m that breaks the
// protocol's rules, or nil. It does not compare expires_at with the clock nor
// sequence with the last one accepted: the reader does.
func (m *ChannelState) Validate() error {
	v := validator{message: "ChannelState"}
	v.check("fleet", topic.CheckID(m.GetFleet()))
	v.check("channel", topic.CheckID(m.GetChannel()))
	v.check("sequence", checkPositive(m.GetSequence()))
	v.validity(m.GetIssuedAt(), m.GetExpiresAt())
	v.release("release", m.GetRelease())
	if w := m.GetWave(); w == nil {
		v.check("wave", errMissing)
	} else if w.GetThreshold() > MaxThreshold {
		v.check("wave.threshold", fmt.Errorf("%d is over %d basis points", w.GetThreshold(), MaxThreshold))
	}
	v.check("rollout_state", checkEnum(m.GetRolloutState()))
	return v.err()
}

// Validate returns a *FieldError naming the first field of m that breaks the
// protocol's rules, or nil. It does not compare expires_at with the clock nor
// sequence with the last one accepted: the reader does.
func (m *DesiredState) Validate() error {
	v := validator{message: "DesiredState"}
	v.check("fleet", topic.CheckID(m.GetFleet()))
	v.check("device_id", topic.CheckID(m.GetDeviceId()))
	v.check("sequence", checkPositive(m.GetSequence()))
	v.validity(m.GetIssuedAt(), m.GetExpiresAt())
	v.check("action", checkEnum(m.GetAction()))
	switch action := m.GetAction(); {
	case action == Action_ACTION_PIN, action == Action_ACTION_RETRY:
		v.release("release", m.GetRelease())
	case action == Action_ACTION_ROLLBACK && m.GetRelease() != nil:
		v.release("release", m.GetRelease())
	case m.GetRelease() != nil:
		v.check("release", fmt.Errorf("set for %s, which takes no release", action))
	}
	return v.err()
}

// Validate returns a *FieldError naming the first field of m that breaks the
// protocol's rules, or nil. Only device_id and protocol_version are required,
// so a last will passes.
func (m *DeviceStatus) Validate() error {
	v := validator{message: "DeviceStatus"}
	v.check("device_id", topic.CheckID(m.GetDeviceId()))
	v.check("protocol_version", checkPositive(uint64(m.GetProtocolVersion())))
	v.check("agent_version", optional(m.GetAgentVersion(), checkName))
	if m.GetTime() != nil {
		v.check("time", checkTime(m.GetTime()))
	}
	v.check("device_type", optional(m.GetDeviceType(), checkName))
	v.check("channel", optional(m.GetChannel(), topic.CheckID))
	v.check("boot_id", optional(m.GetBootId(), checkName))
	v.check("booted_slot", optional(m.GetBootedSlot(), checkName))
	v.check("active_slot", optional(m.GetActiveSlot(), checkName))
	v.check("version", optional(m.GetVersion(), checkName))
	v.check("tag", optional(m.GetTag(), checkName))
	v.check("commit", optional(m.GetCommit(), checkCommit))
	v.check("bundle_digest", optional(m.GetBundleDigest(), checkDigest))
	v.check("update_state", optional(m.GetUpdateState(), checkName))
	v.check("target_version", optional(m.GetTargetVersion(), checkName))
	v.check("target_bundle_digest", optional(m.GetTargetBundleDigest(), checkDigest))
	v.progress("progress", m.GetProgress())
	if h := m.GetHealth(); h != nil {
		v.health("health", h)
	}
	v.error("last_error", m.GetLastError())
	v.labels("labels", m.GetLabels())
	return v.err()
}

// Validate returns a *FieldError naming the first field of m that breaks the
// protocol's rules, or nil. Whether sequence is a duplicate or leaves a gap is
// for the reader, which knows the last one it stored.
func (m *DeviceEvent) Validate() error {
	v := validator{message: "DeviceEvent"}
	v.check("device_id", topic.CheckID(m.GetDeviceId()))
	v.check("stream_id", checkName(m.GetStreamId()))
	v.check("sequence", checkPositive(m.GetSequence()))
	v.check("boot_id", optional(m.GetBootId(), checkName))
	v.check("time", checkTime(m.GetTime()))
	v.check("from_state", optional(m.GetFromState(), checkName))
	v.check("to_state", checkName(m.GetToState()))
	v.check("version", optional(m.GetVersion(), checkName))
	v.check("bundle_digest", optional(m.GetBundleDigest(), checkDigest))
	v.progress("progress", m.GetProgress())
	v.error("error", m.GetError())
	return v.err()
}

// validator collects the first broken rule of one message's fields.
type validator struct {
	message string
	first   *FieldError
}

// check records that field breaks a rule, unless err is nil or an earlier
// field already did.
func (v *validator) check(field string, err error) {
	if err != nil && v.first == nil {
		v.first = &FieldError{Message: v.message, Field: field, Reason: err.Error()}
	}
}

// err returns the first broken rule, as an error, or nil.
func (v *validator) err() error {
	if v.first == nil {
		return nil
	}
	return v.first
}

// validity checks the issued_at and expires_at fields of a signed message.
func (v *validator) validity(issued, expires *timestamppb.Timestamp) {
	v.check("issued_at", checkTime(issued))
	v.check("expires_at", checkTime(expires))
	if v.first == nil && !expires.AsTime().After(issued.AsTime()) {
		v.check("expires_at", fmt.Errorf("%s is not after issued_at %s",
			expires.AsTime().Format(time.RFC3339Nano), issued.AsTime().Format(time.RFC3339Nano)))
	}
}

// release checks the Release at path, which is required.
func (v *validator) release(path string, r *Release) {
	if r == nil {
		v.check(path, errMissing)
		return
	}
	v.check(path+".version", checkName(r.GetVersion()))
	v.check(path+".counter", checkPositive(r.GetCounter()))
	v.check(path+".bundle_digest", checkDigest(r.GetBundleDigest()))
	v.check(path+".size", checkPositive(r.GetSize()))
	v.check(path+".tag", checkName(r.GetTag()))
	v.check(path+".commit", checkCommit(r.GetCommit()))
	v.check(path+".device_types", checkCount(len(r.GetDeviceTypes()), MaxDeviceTypes))
	for i, t := range r.GetDeviceTypes() {
		v.check(fmt.Sprintf("%s.device_types[%d]", path, i), checkName(t))
	}
	v.check(path+".manifest_url", checkURL(r.GetManifestUrl()))
	v.check(path+".base_url", optional(r.GetBaseUrl(), checkURL))
	if r.GetBaseUrl() == "" && len(r.GetImages()) == 0 {
		v.check(path+".images", errors.New("empty, and so is base_url: images cannot be fetched"))
	}
	v.check(path+".images", checkCount(len(r.GetImages()), MaxImages))
	names := uniqueNames{}
	for i, img := range r.GetImages() {
		p := fmt.Sprintf("%s.images[%d]", path, i)
		v.check(p+".name", names.check(img.GetName(), "image"))
		v.check(p+".url", checkURL(img.GetUrl()))
	}
}

// progress checks the optional Progress at path.
func (v *validator) progress(path string, p *Progress) {
	if total := p.GetTotalBytes(); total > 0 && p.GetDoneBytes() > total {
		v.check(path+".done_bytes", fmt.Errorf("%d is over total_bytes %d", p.GetDoneBytes(), total))
	}
}

// health checks the Health at path.
func (v *validator) health(path string, h *Health) {
	v.check(path+".checks", checkCount(len(h.GetChecks()), MaxHealthChecks))
	names := uniqueNames{}
	for i, c := range h.GetChecks() {
		p := fmt.Sprintf("%s.checks[%d]", path, i)
		v.check(p+".name", names.check(c.GetName(), "check"))
		v.check(p+".message", checkText(c.GetMessage()))
	}
}

// error checks the optional Error at path. A code this build does not know is
// accepted, as the error code table's rules require.
func (v *validator) error(path string, e *Error) {
	if e == nil {
		return
	}
	if e.GetCode() == ErrorCode_ERROR_CODE_UNSPECIFIED {
		v.check(path+".code", errors.New("unspecified"))
	}
	v.check(path+".message", checkText(e.GetMessage()))
}

// labels checks the labels at path, in name order, so that of several bad
// labels the same one is named every time.
func (v *validator) labels(path string, labels map[string]string) {
	v.check(path, checkCount(len(labels), MaxLabels))
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		v.check(fmt.Sprintf("%s[%s]", path, quoteShort(name)), CheckLabel(name, labels[name]))
	}
}

// CheckLabel returns an error unless name and value make a device label:
// the name is 1 to MaxLabelNameLen bytes of lowercase letters, digits, '.',
// '_' and '-', starting with a letter or digit (the spelling of names in
// bundle manifests), and the value is 1 to MaxLabelValueLen bytes without
// control characters. The error does not repeat the name, which the caller
// puts in the field it names.
func CheckLabel(name, value string) error {
	if len(name) > MaxLabelNameLen || !IsName(name) {
		return fmt.Errorf("label name: want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most %d bytes", MaxLabelNameLen)
	}
	if value == "" || len(value) > MaxLabelValueLen || strings.ContainsFunc(value, unicode.IsControl) {
		return fmt.Errorf("want a label value of 1 to %d printable characters", MaxLabelValueLen)
	}
	return nil
}

// IsName reports whether s is spelled as gitfleet's names are — product
// names, device types, image and slot names in bundle manifests and
// gitfleet.yaml, label names: lowercase letters, digits, '.', '_' and '-',
// beginning with a letter or digit. Callers bound the length.
// (firmware/bundle, which does not import this package, keeps a copy.)
func IsName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// uniqueNames holds the names seen so far in a repeated field.
type uniqueNames map[string]bool

// check returns an error unless name passes checkName and was not seen
// before; what says what an entry of the field is.
func (seen uniqueNames) check(name, what string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if seen[name] {
		return fmt.Errorf("%q repeats an earlier %s", name, what)
	}
	seen[name] = true
	return nil
}

// optional returns check(s), or nil if s is empty.
func optional(s string, check func(string) error) error {
	if s == "" {
		return nil
	}
	return check(s)
}

// checkPositive returns an error if n is zero, which proto3 cannot tell from
// unset.
func checkPositive(n uint64) error {
	if n == 0 {
		return errZero
	}
	return nil
}

// checkCount returns an error if a repeated field has more than limit entries.
func checkCount(n, limit int) error {
	if n > limit {
		return fmt.Errorf("%d entries, over the limit of %d", n, limit)
	}
	return nil
}

// checkName returns an error unless s is 1 to MaxNameLen bytes without
// control characters or whitespace.
func checkName(s string) error {
	switch {
	case s == "":
		return errEmpty
	case len(s) > MaxNameLen:
		return fmt.Errorf("%d bytes, over the limit of %d", len(s), MaxNameLen)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }); i >= 0 {
		return fmt.Errorf("%q contains %U", s, []rune(s[i:])[0])
	}
	return nil
}

// checkText returns an error unless s fits a free-text field: at most
// MaxTextLen bytes without control characters. CleanText makes any string
// fit.
func checkText(s string) error {
	if len(s) > MaxTextLen {
		return fmt.Errorf("%d bytes, over the limit of %d", len(s), MaxTextLen)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("contains %U at byte %d", []rune(s[i:])[0], i)
	}
	return nil
}

// digestPrefix begins every bundle digest.
const digestPrefix = "sha256:"

// checkDigest returns an error unless s is "sha256:" followed by 64 lowercase
// hex digits.
func checkDigest(s string) error {
	hex, ok := strings.CutPrefix(s, digestPrefix)
	if !ok || len(hex) != 64 || !isLowerHex(hex) {
		return fmt.Errorf("%s is not %q followed by 64 lowercase hex digits", quoteShort(s), digestPrefix)
	}
	return nil
}

// checkCommit returns an error unless s is a full Git object name: 40
// lowercase hex digits (SHA-1) or 64 (SHA-256).
func checkCommit(s string) error {
	if (len(s) != 40 && len(s) != 64) || !isLowerHex(s) {
		return fmt.Errorf("%s is not 40 or 64 lowercase hex digits", quoteShort(s))
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkURL returns an error unless s is an absolute http or https URL of at
// most MaxURLLen bytes.
func checkURL(s string) error {
	switch {
	case s == "":
		return errEmpty
	case len(s) > MaxURLLen:
		return fmt.Errorf("%d bytes, over the limit of %d", len(s), MaxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole URL, which may be kilobytes long.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("%s is not a URL: %w", quoteShort(s), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%s is not an absolute http or https URL", quoteShort(s))
	}
	return nil
}

// checkTime returns an error unless ts is set and within the years 0001 to
// 9999.
func checkTime(ts *timestamppb.Timestamp) error {
	if ts == nil {
		return errMissing
	}
	if ts.CheckValid() != nil {
		return fmt.Errorf("seconds %d and nanos %d are not a time in the years 0001 to 9999", ts.GetSeconds(), ts.GetNanos())
	}
	return nil
}

// checkEnum returns an error unless e is a value its enum declares, other
// than the zero UNSPECIFIED one.
func checkEnum(e protoreflect.Enum) error {
	switch n := e.Number(); {
	case n == 0:
		return errors.New("unspecified")
	case e.Descriptor().Values().ByNumber(n) == nil:
		return fmt.Errorf("unknown value %d", n)
	}
	return nil
}

// quoteShort quotes s for an error message, cut short if long.
func quoteShort(s string) string {
	const limit = 80
	if len(s) <= limit {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:limit])
}
