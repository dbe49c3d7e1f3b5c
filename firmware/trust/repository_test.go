package trust_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// publish signs a full metadata set of version v listing targets, valid
// for ttl from now.
func publish(t *testing.T, tr *bundletest.Trust, v int64, ttl time.Duration, targets ...trust.Target) trust.Metadata {
	t.Helper()
	exp := time.Now().Add(ttl)
	tg, err := trust.SignTargets(v, exp, targets, tr.Targets...)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := trust.SignSnapshot(v, exp, tg, tr.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := trust.SignTimestamp(v, exp, sn, tr.Time)
	if err != nil {
		t.Fatal(err)
	}
	return trust.Metadata{Timestamp: ts, Snapshot: sn, Targets: tg}
}

func TestVerifyMetadata(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	envelope := []byte(`{"the":"signed envelope of bundle 1.4.0"}`)
	custom := []byte(`{"version":"1.4.0","counter":14}`)
	target := trust.TargetOf("bundles/abc.dsse.json", envelope, custom)
	v1 := publish(t, tr, 1, time.Hour, target)
	v2 := publish(t, tr, 2, time.Hour, target)
	now := time.Now()

	targets, err := trust.VerifyMetadata(tr.RootJSON, nil, nil, v2, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := targets.Check("bundles/abc.dsse.json", envelope)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(custom) {
		t.Errorf("custom = %s, want %s", got, custom)
	}
	if _, err := targets.Check("bundles/abc.dsse.json", append(envelope, ' ')); !errors.Is(err, trust.ErrBadSignature) {
		t.Errorf("changed envelope: err = %v, want ErrBadSignature", err)
	}
	if _, err := targets.Check("bundles/other.dsse.json", envelope); err == nil {
		t.Error("a name that is not a target was accepted")
	}

	otherSigner := bundletest.Key(t, keys.Ed25519)
	forged := v2
	forged.Timestamp, _ = trust.SignTimestamp(3, now.Add(time.Hour), v2.Snapshot, otherSigner)
	mixed := v2
	mixed.Snapshot = v1.Snapshot
	// A newer snapshot and timestamp that name the older targets.
	oldTargets := v1
	oldTargets.Snapshot, _ = trust.SignSnapshot(3, now.Add(time.Hour), v1.Targets, tr.Snapshot)
	oldTargets.Timestamp, _ = trust.SignTimestamp(3, now.Add(time.Hour), oldTargets.Snapshot, tr.Time)

	cases := []struct {
		name string
		prev *trust.Metadata
		cur  trust.Metadata
		at   time.Time
		want error
	}{
		{"same set again", &v2, v2, now, nil},
		{"newer set", &v1, v2, now, nil},
		{"rollback to an older timestamp", &v2, v1, now, trust.ErrRollback},
		{"rollback of targets under a newer snapshot", &v2, oldTargets, now, trust.ErrRollback},
		{"expired timestamp (freeze)", nil, v2, now.Add(2 * time.Hour), trust.ErrExpired},
		{"timestamp by an untrusted key", nil, forged, now, trust.ErrThreshold},
		{"snapshot of another timestamp (mix and match)", nil, mixed, now, nil /* any error */},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trust.VerifyMetadata(tr.RootJSON, nil, tc.prev, tc.cur, tc.at)
			switch {
			case tc.name == "snapshot of another timestamp (mix and match)":
				if err == nil {
					t.Fatal("accepted")
				}
			case !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
