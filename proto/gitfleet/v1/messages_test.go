package gitfleetv1

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Fixtures: one valid message of each kind, which tests copy and break.

var (
	testIssued  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testExpires = testIssued.Add(24 * time.Hour)
)

const (
	testDigest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testCommit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
)

func validRelease() *Release {
	return &Release{
		Version:      "1.4.0",
		Counter:      14,
		BundleDigest: testDigest,
		Size:         64 << 20,
		Tag:          "v1.4.0",
		Commit:       testCommit,
		DeviceTypes:  []string{"rpi4", "rpi5"},
		ManifestUrl:  "https://updates.example.com/bundles/1.4.0/manifest.json",
		BaseUrl:      "https://updates.example.com/bundles/1.4.0/",
		Images: []*ImageLocation{
			{Name: "rootfs", Url: "https://s3.example.com/b/rootfs.img?X-Amz-Signature=abc"},
		},
	}
}

func validChannelState() *ChannelState {
	return &ChannelState{
		Fleet:        "acme",
		Channel:      "production",
		Sequence:     7,
		IssuedAt:     timestamppb.New(testIssued),
		ExpiresAt:    timestamppb.New(testExpires),
		Release:      validRelease(),
		Wave:         &Wave{Index: 1, Threshold: 1000},
		RolloutState: RolloutState_ROLLOUT_STATE_ACTIVE,
	}
}

func validDesiredState() *DesiredState {
	return &DesiredState{
		Fleet:     "acme",
		DeviceId:  "dev-1",
		Sequence:  3,
		IssuedAt:  timestamppb.New(testIssued),
		ExpiresAt: timestamppb.New(testExpires),
		Action:    Action_ACTION_PIN,
		Release:   validRelease(),
	}
}

func validDeviceStatus() *DeviceStatus {
	return &DeviceStatus{
		DeviceId:        "dev-1",
		ProtocolVersion: ProtocolVersion,
		AgentVersion:    "0.3.0",
		Time:            timestamppb.New(testIssued),
		Online:          true,
		DeviceType:      "rpi4",
		Channel:         "production",
		BootId:          "5f2c1d0e-7a44-4b3e-9d4b-1c2b3a4d5e6f",
		BootedSlot:      "b",
		ActiveSlot:      "b",
		Version:         "1.4.0",
		Tag:             "v1.4.0",
		Commit:          testCommit,
		BundleDigest:    testDigest,
		BootConfirmed:   true,
		UpdateState:     "idle",
		Progress:        &Progress{DoneBytes: 10, TotalBytes: 10},
		Health: &Health{Ok: true, Checks: []*HealthCheck{
			{Name: "systemd", Ok: true, Message: "0 failed units"},
			{Name: "app", Ok: true},
		}},
		Labels: map[string]string{"ring": "canary", "site": "Building 4"},
	}
}

func validDeviceEvent() *DeviceEvent {
	return &DeviceEvent{
		DeviceId:     "dev-1",
		StreamId:     "8d3e6b1a",
		Sequence:     42,
		BootId:       "5f2c1d0e-7a44-4b3e-9d4b-1c2b3a4d5e6f",
		Time:         timestamppb.New(testIssued),
		FromState:    "downloading",
		ToState:      "failed",
		Version:      "1.4.0",
		BundleDigest: testDigest,
		Progress:     &Progress{DoneBytes: 1 << 20, TotalBytes: 64 << 20},
		Error:        &Error{Code: ErrorCode_ERROR_CODE_CORRUPT_CHUNK, Message: "chunk 17 of rootfs: sha256 mismatch"},
	}
}

// checkFieldError fails t unless err matches wantField and wantReason: nil
// when wantField is empty, and otherwise a one-line *FieldError for wantField
// whose reason contains wantReason.
func checkFieldError(t *testing.T, err error, wantField, wantReason string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("got error %q, want none", err)
		}
		return
	}
	fe, ok := errors.AsType[*FieldError](err)
	if !ok {
		t.Fatalf("got error %v, want a *FieldError for %s", err, wantField)
	}
	if fe.Field != wantField {
		t.Errorf("got field %q, want %q (error %q)", fe.Field, wantField, err)
	}
	if !strings.Contains(fe.Reason, wantReason) {
		t.Errorf("got reason %q, want one containing %q", fe.Reason, wantReason)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("got error %q over several lines, want one line", err)
	}
	if got, want := ErrorCodeOf(err), ErrorCode_ERROR_CODE_MALFORMED_MESSAGE; got != want {
		t.Errorf("got code %v, want %v", got, want)
	}
}
