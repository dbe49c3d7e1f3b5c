package gitfleetv1

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// releaseCases break one rule of a Release each; every message that carries a
// required release runs them all.
var releaseCases = []struct {
	name       string
	mutate     func(*Release)
	wantField  string
	wantReason string
}{
	{name: "no version", mutate: func(r *Release) { r.Version = "" }, wantField: "version", wantReason: "empty"},
	{name: "version with space", mutate: func(r *Release) { r.Version = "1.4 .0" }, wantField: "version", wantReason: "contains U+0020"},
	{name: "version too long", mutate: func(r *Release) { r.Version = strings.Repeat("1", MaxNameLen+1) }, wantField: "version", wantReason: "129 bytes, over the limit of 128"},
	{name: "zero counter", mutate: func(r *Release) { r.Counter = 0 }, wantField: "counter", wantReason: "zero"},
	{name: "digest without algorithm", mutate: func(r *Release) { r.BundleDigest = strings.TrimPrefix(testDigest, "sha256:") }, wantField: "bundle_digest", wantReason: `is not "sha256:" followed by 64 lowercase hex digits`},
	{name: "digest of other algorithm", mutate: func(r *Release) { r.BundleDigest = "sha512:" + strings.Repeat("a", 64) }, wantField: "bundle_digest", wantReason: "is not"},
	{name: "digest upper case", mutate: func(r *Release) { r.BundleDigest = strings.ToUpper(testDigest) }, wantField: "bundle_digest", wantReason: "is not"},
	{name: "digest short", mutate: func(r *Release) { r.BundleDigest = testDigest[:70] }, wantField: "bundle_digest", wantReason: "is not"},
	{name: "digest not hex", mutate: func(r *Release) { r.BundleDigest = "sha256:" + strings.Repeat("g", 64) }, wantField: "bundle_digest", wantReason: "is not"},
	{name: "zero size", mutate: func(r *Release) { r.Size = 0 }, wantField: "size", wantReason: "zero"},
	{name: "no tag", mutate: func(r *Release) { r.Tag = "" }, wantField: "tag", wantReason: "empty"},
	{name: "abbreviated commit", mutate: func(r *Release) { r.Commit = testCommit[:12] }, wantField: "commit", wantReason: "is not 40 or 64 lowercase hex digits"},
	{name: "too many device types", mutate: func(r *Release) { r.DeviceTypes = make([]string, MaxDeviceTypes+1) }, wantField: "device_types", wantReason: "65 entries, over the limit of 64"},
	{name: "empty device type", mutate: func(r *Release) { r.DeviceTypes = []string{"rpi4", ""} }, wantField: "device_types[1]", wantReason: "empty"},
	{name: "no manifest URL", mutate: func(r *Release) { r.ManifestUrl = "" }, wantField: "manifest_url", wantReason: "empty"},
	{name: "relative manifest URL", mutate: func(r *Release) { r.ManifestUrl = "/bundles/manifest.json" }, wantField: "manifest_url", wantReason: "is not an absolute http or https URL"},
	{name: "file manifest URL", mutate: func(r *Release) { r.ManifestUrl = "file:///etc/passwd" }, wantField: "manifest_url", wantReason: "is not an absolute http or https URL"},
	{name: "manifest URL without host", mutate: func(r *Release) { r.ManifestUrl = "https:///manifest.json" }, wantField: "manifest_url", wantReason: "is not an absolute"},
	{name: "unparsable manifest URL", mutate: func(r *Release) { r.ManifestUrl = "https://a b\x7f/" }, wantField: "manifest_url", wantReason: "is not a URL: net/url: invalid control character in URL"},
	{name: "manifest URL too long", mutate: func(r *Release) { r.ManifestUrl = "https://h/" + strings.Repeat("a", MaxURLLen) }, wantField: "manifest_url", wantReason: "4106 bytes, over the limit of 4096"},
	{name: "bad base URL", mutate: func(r *Release) { r.BaseUrl = "ftp://h/" }, wantField: "base_url", wantReason: "is not an absolute http or https URL"},
	{name: "nowhere to fetch images", mutate: func(r *Release) { r.BaseUrl, r.Images = "", nil }, wantField: "images", wantReason: "empty, and so is base_url"},
	{name: "too many images", mutate: func(r *Release) { r.Images = make([]*ImageLocation, MaxImages+1) }, wantField: "images", wantReason: "65 entries, over the limit of 64"},
	{name: "image without name", mutate: func(r *Release) { r.Images[0].Name = "" }, wantField: "images[0].name", wantReason: "empty"},
	{name: "image repeated", mutate: func(r *Release) { r.Images = append(r.Images, &ImageLocation{Name: "rootfs", Url: "https://h/x"}) }, wantField: "images[1].name", wantReason: `"rootfs" repeats an earlier image`},
	{name: "image without URL", mutate: func(r *Release) { r.Images[0].Url = "" }, wantField: "images[0].url", wantReason: "empty"},
}

func TestChannelStateValidate(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*ChannelState)
		wantField  string
		wantReason string
	}{
		{name: "valid", mutate: func(*ChannelState) {}},
		{name: "valid without images", mutate: func(m *ChannelState) { m.Release.Images = nil }},
		{name: "valid without base URL", mutate: func(m *ChannelState) { m.Release.BaseUrl = "" }},
		{name: "valid paused at wave 0", mutate: func(m *ChannelState) {
			m.Wave = &Wave{}
			m.RolloutState = RolloutState_ROLLOUT_STATE_PAUSED
		}},
		{name: "valid full wave", mutate: func(m *ChannelState) { m.Wave.Threshold = MaxThreshold }},
		{name: "valid SHA-256 commit", mutate: func(m *ChannelState) { m.Release.Commit = strings.Repeat("ab", 32) }},
		{name: "no fleet", mutate: func(m *ChannelState) { m.Fleet = "" }, wantField: "fleet", wantReason: "empty"},
		{name: "wildcard fleet", mutate: func(m *ChannelState) { m.Fleet = "+" }, wantField: "fleet", wantReason: `contains '+'`},
		{name: "no channel", mutate: func(m *ChannelState) { m.Channel = "" }, wantField: "channel", wantReason: "empty"},
		{name: "channel with slash", mutate: func(m *ChannelState) { m.Channel = "a/b" }, wantField: "channel", wantReason: `contains '/'`},
		{name: "zero sequence", mutate: func(m *ChannelState) { m.Sequence = 0 }, wantField: "sequence", wantReason: "zero"},
		{name: "no issued_at", mutate: func(m *ChannelState) { m.IssuedAt = nil }, wantField: "issued_at", wantReason: "missing"},
		{name: "no expires_at", mutate: func(m *ChannelState) { m.ExpiresAt = nil }, wantField: "expires_at", wantReason: "missing"},
		{name: "issued_at out of range", mutate: func(m *ChannelState) { m.IssuedAt = &timestamppb.Timestamp{Seconds: -1 << 62} }, wantField: "issued_at", wantReason: "seconds -4611686018427387904 and nanos 0 are not a time in the years 0001 to 9999"},
		{name: "expires_at bad nanos", mutate: func(m *ChannelState) { m.ExpiresAt.Nanos = 1e9 }, wantField: "expires_at", wantReason: "nanos 1000000000 are not a time"},
		{name: "expires when issued", mutate: func(m *ChannelState) { m.ExpiresAt = m.IssuedAt }, wantField: "expires_at", wantReason: "2026-03-01T12:00:00Z is not after issued_at 2026-03-01T12:00:00Z"},
		{name: "expires before issued", mutate: func(m *ChannelState) { m.ExpiresAt = timestamppb.New(testIssued.Add(-time.Nanosecond)) }, wantField: "expires_at", wantReason: "is not after issued_at"},
		{name: "no release", mutate: func(m *ChannelState) { m.Release = nil }, wantField: "release", wantReason: "missing"},
		{name: "no wave", mutate: func(m *ChannelState) { m.Wave = nil }, wantField: "wave", wantReason: "missing"},
		{name: "threshold over 10000", mutate: func(m *ChannelState) { m.Wave.Threshold = MaxThreshold + 1 }, wantField: "wave.threshold", wantReason: "10001 is over 10000 basis points"},
		{name: "rollout state unspecified", mutate: func(m *ChannelState) { m.RolloutState = RolloutState_ROLLOUT_STATE_UNSPECIFIED }, wantField: "rollout_state", wantReason: "unspecified"},
		{name: "rollout state unknown", mutate: func(m *ChannelState) { m.RolloutState = 9 }, wantField: "rollout_state", wantReason: "unknown value 9"},
		{name: "first broken field wins", mutate: func(m *ChannelState) { m.Channel, m.Wave = "", nil }, wantField: "channel", wantReason: "empty"},
	}
	for _, rc := range releaseCases {
		tests = append(tests, struct {
			name       string
			mutate     func(*ChannelState)
			wantField  string
			wantReason string
		}{
			name:       "release " + rc.name,
			mutate:     func(m *ChannelState) { rc.mutate(m.Release) },
			wantField:  "release." + rc.wantField,
			wantReason: rc.wantReason,
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validChannelState()
			tt.mutate(m)
			checkFieldError(t, m.Validate(), tt.wantField, tt.wantReason)
		})
	}
}

func TestDesiredStateValidate(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*DesiredState)
		wantField  string
		wantReason string
	}{
		{name: "pin", mutate: func(*DesiredState) {}},
		{name: "none", mutate: func(m *DesiredState) { m.Action, m.Release = Action_ACTION_NONE, nil }},
		{name: "cancel", mutate: func(m *DesiredState) { m.Action, m.Release = Action_ACTION_CANCEL, nil }},
		{name: "rollback to whatever is in the other slot", mutate: func(m *DesiredState) { m.Action, m.Release = Action_ACTION_ROLLBACK, nil }},
		{name: "rollback to a named release", mutate: func(m *DesiredState) { m.Action = Action_ACTION_ROLLBACK }},
		{name: "no fleet", mutate: func(m *DesiredState) { m.Fleet = "" }, wantField: "fleet", wantReason: "empty"},
		{name: "no device", mutate: func(m *DesiredState) { m.DeviceId = "" }, wantField: "device_id", wantReason: "empty"},
		{name: "device with hash", mutate: func(m *DesiredState) { m.DeviceId = "dev#1" }, wantField: "device_id", wantReason: `contains '#'`},
		{name: "zero sequence", mutate: func(m *DesiredState) { m.Sequence = 0 }, wantField: "sequence", wantReason: "zero"},
		{name: "no issued_at", mutate: func(m *DesiredState) { m.IssuedAt = nil }, wantField: "issued_at", wantReason: "missing"},
		{name: "expires before issued", mutate: func(m *DesiredState) { m.IssuedAt, m.ExpiresAt = m.ExpiresAt, m.IssuedAt }, wantField: "expires_at", wantReason: "is not after issued_at"},
		{name: "action unspecified", mutate: func(m *DesiredState) { m.Action = Action_ACTION_UNSPECIFIED }, wantField: "action", wantReason: "unspecified"},
		{name: "action unknown", mutate: func(m *DesiredState) { m.Action = 77 }, wantField: "action", wantReason: "unknown value 77"},
		{name: "pin without release", mutate: func(m *DesiredState) { m.Release = nil }, wantField: "release", wantReason: "missing"},
		{name: "pin to broken release", mutate: func(m *DesiredState) { m.Release.Tag = "" }, wantField: "release.tag", wantReason: "empty"},
		{name: "rollback to broken release", mutate: func(m *DesiredState) { m.Action, m.Release.Counter = Action_ACTION_ROLLBACK, 0 }, wantField: "release.counter", wantReason: "zero"},
		{name: "none with release", mutate: func(m *DesiredState) { m.Action = Action_ACTION_NONE }, wantField: "release", wantReason: "set for ACTION_NONE, which takes no release"},
		{name: "cancel with release", mutate: func(m *DesiredState) { m.Action = Action_ACTION_CANCEL }, wantField: "release", wantReason: "set for ACTION_CANCEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validDesiredState()
			tt.mutate(m)
			checkFieldError(t, m.Validate(), tt.wantField, tt.wantReason)
		})
	}
}

func TestDeviceStatusValidate(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*DeviceStatus)
		wantField  string
		wantReason string
	}{
		{name: "valid", mutate: func(*DeviceStatus) {}},
		{name: "last will", mutate: func(m *DeviceStatus) {
			*m = DeviceStatus{DeviceId: m.DeviceId, ProtocolVersion: ProtocolVersion}
		}},
		{name: "updating", mutate: func(m *DeviceStatus) {
			m.UpdateState, m.TargetVersion, m.TargetBundleDigest = "downloading", "1.5.0", testDigest
			m.Progress = &Progress{DoneBytes: 5, TotalBytes: 0}
		}},
		{name: "failed health", mutate: func(m *DeviceStatus) {
			m.Health.Ok, m.Health.Checks[1].Ok, m.Health.Checks[1].Message = false, false, "app exited with status 3"
			m.LastError = &Error{Code: ErrorCode_ERROR_CODE_HEALTH_CHECK_FAILED, Message: "check app failed"}
		}},
		{name: "error code from a newer agent", mutate: func(m *DeviceStatus) { m.LastError = &Error{Code: 9999} }},
		{name: "no device", mutate: func(m *DeviceStatus) { m.DeviceId = "" }, wantField: "device_id", wantReason: "empty"},
		{name: "device with NUL", mutate: func(m *DeviceStatus) { m.DeviceId = "dev\x00" }, wantField: "device_id", wantReason: "contains U+0000"},
		{name: "no protocol version", mutate: func(m *DeviceStatus) { m.ProtocolVersion = 0 }, wantField: "protocol_version", wantReason: "zero"},
		{name: "agent version with newline", mutate: func(m *DeviceStatus) { m.AgentVersion = "0.3\n" }, wantField: "agent_version", wantReason: "contains U+000A"},
		{name: "time out of range", mutate: func(m *DeviceStatus) { m.Time = &timestamppb.Timestamp{Seconds: 1 << 62} }, wantField: "time", wantReason: "are not a time in the years 0001 to 9999"},
		{name: "device type with space", mutate: func(m *DeviceStatus) { m.DeviceType = "rpi 4" }, wantField: "device_type", wantReason: "contains U+0020"},
		{name: "channel with plus", mutate: func(m *DeviceStatus) { m.Channel = "beta+" }, wantField: "channel", wantReason: `contains '+'`},
		{name: "boot id too long", mutate: func(m *DeviceStatus) { m.BootId = strings.Repeat("b", 200) }, wantField: "boot_id", wantReason: "200 bytes"},
		{name: "booted slot with tab", mutate: func(m *DeviceStatus) { m.BootedSlot = "a\t" }, wantField: "booted_slot", wantReason: "contains U+0009"},
		{name: "active slot with escape", mutate: func(m *DeviceStatus) { m.ActiveSlot = "\x1b[2J" }, wantField: "active_slot", wantReason: "contains U+001B"},
		{name: "version with space", mutate: func(m *DeviceStatus) { m.Version = "1 4" }, wantField: "version", wantReason: "contains U+0020"},
		{name: "tag with space", mutate: func(m *DeviceStatus) { m.Tag = "v1 4" }, wantField: "tag", wantReason: "contains U+0020"},
		{name: "commit upper case", mutate: func(m *DeviceStatus) { m.Commit = strings.ToUpper(testCommit) }, wantField: "commit", wantReason: "is not 40 or 64 lowercase hex digits"},
		{name: "bad bundle digest", mutate: func(m *DeviceStatus) { m.BundleDigest = "sha256:" }, wantField: "bundle_digest", wantReason: "is not"},
		{name: "update state with space", mutate: func(m *DeviceStatus) { m.UpdateState = "trial boot" }, wantField: "update_state", wantReason: "contains U+0020"},
		{name: "target version with space", mutate: func(m *DeviceStatus) { m.TargetVersion = "1 5" }, wantField: "target_version", wantReason: "contains U+0020"},
		{name: "bad target digest", mutate: func(m *DeviceStatus) { m.TargetBundleDigest = "md5:00" }, wantField: "target_bundle_digest", wantReason: "is not"},
		{name: "progress past total", mutate: func(m *DeviceStatus) { m.Progress = &Progress{DoneBytes: 11, TotalBytes: 10} }, wantField: "progress.done_bytes", wantReason: "11 is over total_bytes 10"},
		{name: "too many checks", mutate: func(m *DeviceStatus) {
			m.Health.Checks = make([]*HealthCheck, MaxHealthChecks+1)
		}, wantField: "health.checks", wantReason: "65 entries, over the limit of 64"},
		{name: "check without name", mutate: func(m *DeviceStatus) { m.Health.Checks[1].Name = "" }, wantField: "health.checks[1].name", wantReason: "empty"},
		{name: "check repeated", mutate: func(m *DeviceStatus) { m.Health.Checks[1].Name = "systemd" }, wantField: "health.checks[1].name", wantReason: `"systemd" repeats an earlier check`},
		{name: "check message over lines", mutate: func(m *DeviceStatus) { m.Health.Checks[0].Message = "a\nb" }, wantField: "health.checks[0].message", wantReason: "contains U+000A at byte 1"},
		{name: "check message too long", mutate: func(m *DeviceStatus) { m.Health.Checks[0].Message = strings.Repeat("m", MaxTextLen+1) }, wantField: "health.checks[0].message", wantReason: "1025 bytes, over the limit of 1024"},
		{name: "error without code", mutate: func(m *DeviceStatus) { m.LastError = &Error{Message: "boom"} }, wantField: "last_error.code", wantReason: "unspecified"},
		{name: "error message with escape", mutate: func(m *DeviceStatus) {
			m.LastError = &Error{Code: ErrorCode_ERROR_CODE_INTERNAL, Message: "\x1b]0;pwned\x07"}
		}, wantField: "last_error.message", wantReason: "contains U+001B at byte 0"},
		{name: "no labels", mutate: func(m *DeviceStatus) { m.Labels = nil }},
		{name: "longest label", mutate: func(m *DeviceStatus) {
			m.Labels = map[string]string{strings.Repeat("n", MaxLabelNameLen): strings.Repeat("v", MaxLabelValueLen)}
		}},
		{name: "too many labels", mutate: func(m *DeviceStatus) {
			m.Labels = map[string]string{}
			for i := range MaxLabels + 1 {
				m.Labels[fmt.Sprint("l", i)] = "v"
			}
		}, wantField: "labels", wantReason: "65 entries, over the limit of 64"},
		{name: "label name upper case", mutate: func(m *DeviceStatus) { m.Labels["Ring"] = "x" }, wantField: `labels["Ring"]`, wantReason: "label name: want lowercase letters"},
		{name: "label name with space", mutate: func(m *DeviceStatus) { m.Labels["a b"] = "x" }, wantField: `labels["a b"]`, wantReason: "label name"},
		{name: "label name starts with dash", mutate: func(m *DeviceStatus) { m.Labels["-x"] = "x" }, wantField: `labels["-x"]`, wantReason: "label name"},
		{name: "empty label name", mutate: func(m *DeviceStatus) { m.Labels[""] = "x" }, wantField: `labels[""]`, wantReason: "label name"},
		{name: "label name too long", mutate: func(m *DeviceStatus) { m.Labels[strings.Repeat("n", MaxLabelNameLen+1)] = "x" }, wantField: `labels["` + strings.Repeat("n", MaxLabelNameLen+1) + `"]`, wantReason: "at most 64 bytes"},
		{name: "label name with newline", mutate: func(m *DeviceStatus) { m.Labels["a\nb"] = "x" }, wantField: `labels["a\nb"]`, wantReason: "label name"},
		{name: "empty label value", mutate: func(m *DeviceStatus) { m.Labels["ring"] = "" }, wantField: `labels["ring"]`, wantReason: "want a label value of 1 to 128 printable characters"},
		{name: "label value too long", mutate: func(m *DeviceStatus) { m.Labels["ring"] = strings.Repeat("v", MaxLabelValueLen+1) }, wantField: `labels["ring"]`, wantReason: "label value"},
		{name: "label value with escape", mutate: func(m *DeviceStatus) { m.Labels["site"] = "\x1b[2J" }, wantField: `labels["site"]`, wantReason: "label value"},
		{name: "first bad label by name", mutate: func(m *DeviceStatus) { m.Labels["zz"], m.Labels["aa"] = "", "" }, wantField: `labels["aa"]`, wantReason: "label value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validDeviceStatus()
			tt.mutate(m)
			checkFieldError(t, m.Validate(), tt.wantField, tt.wantReason)
		})
	}
}

func TestDeviceEventValidate(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*DeviceEvent)
		wantField  string
		wantReason string
	}{
		{name: "valid", mutate: func(*DeviceEvent) {}},
		{name: "first event of a stream", mutate: func(m *DeviceEvent) {
			*m = DeviceEvent{DeviceId: "dev-1", StreamId: "s", Sequence: 1, Time: m.Time, ToState: "idle"}
		}},
		{name: "no device", mutate: func(m *DeviceEvent) { m.DeviceId = "" }, wantField: "device_id", wantReason: "empty"},
		{name: "no stream", mutate: func(m *DeviceEvent) { m.StreamId = "" }, wantField: "stream_id", wantReason: "empty"},
		{name: "zero sequence", mutate: func(m *DeviceEvent) { m.Sequence = 0 }, wantField: "sequence", wantReason: "zero"},
		{name: "boot id with space", mutate: func(m *DeviceEvent) { m.BootId = "a b" }, wantField: "boot_id", wantReason: "contains U+0020"},
		{name: "no time", mutate: func(m *DeviceEvent) { m.Time = nil }, wantField: "time", wantReason: "missing"},
		{name: "from state with space", mutate: func(m *DeviceEvent) { m.FromState = "a b" }, wantField: "from_state", wantReason: "contains U+0020"},
		{name: "no to state", mutate: func(m *DeviceEvent) { m.ToState = "" }, wantField: "to_state", wantReason: "empty"},
		{name: "version with control", mutate: func(m *DeviceEvent) { m.Version = "1\x7f" }, wantField: "version", wantReason: "contains U+007F"},
		{name: "bad digest", mutate: func(m *DeviceEvent) { m.BundleDigest = "sha256:xyz" }, wantField: "bundle_digest", wantReason: "is not"},
		{name: "progress past total", mutate: func(m *DeviceEvent) { m.Progress.DoneBytes = m.Progress.TotalBytes + 1 }, wantField: "progress.done_bytes", wantReason: "is over total_bytes"},
		{name: "error without code", mutate: func(m *DeviceEvent) { m.Error.Code = 0 }, wantField: "error.code", wantReason: "unspecified"},
		{name: "error message too long", mutate: func(m *DeviceEvent) { m.Error.Message = strings.Repeat("x", 2000) }, wantField: "error.message", wantReason: "2000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validDeviceEvent()
			tt.mutate(m)
			checkFieldError(t, m.Validate(), tt.wantField, tt.wantReason)
		})
	}
}

func TestSignedMessageValidate(t *testing.T) {
	valid := func() *SignedMessage {
		return &SignedMessage{
			PayloadType: PayloadTypeChannelState,
			Payload:     []byte{0x0a, 0x04, 'a', 'c', 'm', 'e'},
			Signatures: []*Signature{
				{KeyId: "online-1", Sig: []byte{1, 2, 3}},
				{KeyId: "online-2", Sig: []byte{4, 5, 6}},
			},
		}
	}
	tests := []struct {
		name       string
		mutate     func(*SignedMessage)
		wantField  string
		wantReason string
	}{
		{name: "valid", mutate: func(*SignedMessage) {}},
		{name: "valid with the most signatures", mutate: func(m *SignedMessage) {
			m.Signatures = nil
			for i := range MaxSignatures {
				m.Signatures = append(m.Signatures, &Signature{KeyId: strings.Repeat("k", i+1), Sig: []byte{1}})
			}
		}},
		{name: "valid with the longest signature", mutate: func(m *SignedMessage) { m.Signatures[0].Sig = make([]byte, MaxSignatureLen) }},
		{name: "no payload type", mutate: func(m *SignedMessage) { m.PayloadType = "" }, wantField: "payload_type", wantReason: "empty"},
		{name: "payload type with newline", mutate: func(m *SignedMessage) { m.PayloadType = "a\nb" }, wantField: "payload_type", wantReason: "contains U+000A"},
		{name: "no payload", mutate: func(m *SignedMessage) { m.Payload = nil }, wantField: "payload", wantReason: "empty"},
		{name: "no signatures", mutate: func(m *SignedMessage) { m.Signatures = nil }, wantField: "signatures", wantReason: "empty"},
		{name: "too many signatures", mutate: func(m *SignedMessage) {
			for range MaxSignatures {
				m.Signatures = append(m.Signatures, &Signature{KeyId: "k", Sig: []byte{1}})
			}
		}, wantField: "signatures", wantReason: "18 signatures, over the limit of 16"},
		{name: "no key id", mutate: func(m *SignedMessage) { m.Signatures[1].KeyId = "" }, wantField: "signatures[1].key_id", wantReason: "empty"},
		{name: "repeated key id", mutate: func(m *SignedMessage) { m.Signatures[1].KeyId = "online-1" }, wantField: "signatures[1].key_id", wantReason: `"online-1" repeats an earlier signature's key`},
		{name: "empty sig", mutate: func(m *SignedMessage) { m.Signatures[0].Sig = nil }, wantField: "signatures[0].sig", wantReason: "empty"},
		{name: "sig too long", mutate: func(m *SignedMessage) { m.Signatures[0].Sig = make([]byte, MaxSignatureLen+1) }, wantField: "signatures[0].sig", wantReason: "8193 bytes, over the limit of 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.mutate(m)
			checkFieldError(t, m.Validate(), tt.wantField, tt.wantReason)
		})
	}
}
