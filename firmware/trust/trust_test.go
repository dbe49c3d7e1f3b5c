package trust_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

var farFuture = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

func spec(root, targets []*keys.Signer, rootK, targetsK int, other *keys.Signer) trust.RootSpec {
	return trust.RootSpec{Expires: farFuture, Roles: map[string]trust.RoleKeys{
		trust.RoleRoot:      {Keys: bundletest.Publics(root), Threshold: rootK},
		trust.RoleTargets:   {Keys: bundletest.Publics(targets), Threshold: targetsK},
		trust.RoleSnapshot:  {Keys: bundletest.Publics([]*keys.Signer{other}), Threshold: 1},
		trust.RoleTimestamp: {Keys: bundletest.Publics([]*keys.Signer{other}), Threshold: 1},
	}}
}

func TestSealVerify(t *testing.T) {
	ctx := context.Background()
	a, b, c := bundletest.Key(t, keys.Ed25519), bundletest.Key(t, keys.ECDSAP256), bundletest.Key(t, keys.Ed25519)
	v, err := trust.NewVerifier("targets", 2, a.Public, b.Public)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		signers []*keys.Signer
		want    error
	}{
		{"both keys", []*keys.Signer{a, b}, nil},
		{"both keys and a stranger", []*keys.Signer{c, a, b}, nil},
		{"one of two", []*keys.Signer{a}, trust.ErrThreshold},
		{"stranger only", []*keys.Signer{c}, trust.ErrUntrustedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := trust.Seal(ctx, "t", []byte("payload"), tc.signers...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(ctx, "t", env)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
			if err == nil && string(got) != "payload" {
				t.Errorf("payload = %q, want %q", got, "payload")
			}
		})
	}
	env, _ := trust.Seal(ctx, "t", []byte("payload"), a, b)
	if _, err := v.Verify(ctx, "other", env); !errors.Is(err, trust.ErrMalformed) {
		t.Errorf("wrong payload type: err = %v, want ErrMalformed", err)
	}
	// The same key twice counts once.
	dup := strings.Replace(string(env), b.ID, a.ID, 1)
	if _, err := v.Verify(ctx, "t", []byte(dup)); err == nil {
		t.Error("a signature relabelled with another trusted key id was accepted")
	}
	if _, err := trust.Seal(ctx, "t", []byte("x"), a, a); err == nil {
		t.Error("Seal accepted the same key twice")
	}
}

func TestEnvelopeIsStrict(t *testing.T) {
	env, err := trust.Seal(context.Background(), "t", []byte("payload"), bundletest.Key(t, keys.Ed25519))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := trust.Inspect(env); err != nil {
		t.Fatalf("canonical envelope refused: %v", err)
	}
	const payload = `"cGF5bG9hZA=="` // base64 of "payload"
	if !strings.Contains(string(env), payload) {
		t.Fatalf("envelope %s does not carry %s", env, payload)
	}
	for name, data := range map[string]string{
		"unknown field":     strings.Replace(string(env), `{"payloadType"`, `{"x":1,"payloadType"`, 1),
		"case-folded key":   strings.Replace(string(env), `"payloadType"`, `"PayloadType"`, 1),
		"whitespace":        strings.Replace(string(env), `,"payload"`, `, "payload"`, 1),
		"repeated key":      strings.Replace(string(env), `{"payloadType":"t",`, `{"payloadType":"t","payloadType":"t",`, 1),
		"trailing data":     string(env) + "{}",
		"base64 line break": strings.Replace(string(env), payload, `"cGF5\nbG9hZA=="`, 1),
		"base64 pad bits":   strings.Replace(string(env), payload, `"cGF5bG9hZB=="`, 1),
		"base64 unpadded":   strings.Replace(string(env), payload, `"cGF5bG9hZA"`, 1),
	} {
		if _, _, _, err := trust.Inspect([]byte(data)); !errors.Is(err, trust.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestPayload(t *testing.T) {
	env, err := trust.Seal(context.Background(), "t", []byte("where the images are"), bundletest.Key(t, keys.Ed25519))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := trust.Payload(env); err != nil || string(got) != "where the images are" {
		t.Fatalf("Payload = %q, %v", got, err)
	}
	// Not canonical, which Payload does not mind: it only locates.
	spaced := strings.Replace(string(env), `,"payload"`, `, "payload"`, 1)
	if got, err := trust.Payload([]byte(spaced)); err != nil || string(got) != "where the images are" {
		t.Fatalf("Payload of a non-canonical envelope = %q, %v", got, err)
	}
	for name, data := range map[string]string{
		"not JSON":       `{"payload":`,
		"not base64":     `{"payload":"%%%"}`,
		"payload number": `{"payload":1}`,
	} {
		if _, err := trust.Payload([]byte(data)); !errors.Is(err, trust.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestRootRotation(t *testing.T) {
	ctx := context.Background()
	other := bundletest.Key(t, keys.Ed25519)
	oldRoot := []*keys.Signer{bundletest.Key(t, keys.Ed25519), bundletest.Key(t, keys.ECDSAP256)}
	newRoot := []*keys.Signer{bundletest.Key(t, keys.Ed25519), bundletest.Key(t, keys.Ed25519)}
	oldTargets, newTargets := bundletest.Key(t, keys.Ed25519), bundletest.Key(t, keys.ECDSAP256)

	v1, err := trust.NewRoot(spec(oldRoot, []*keys.Signer{oldTargets}, 2, 1, other), oldRoot...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trust.NewRoot(spec(oldRoot, []*keys.Signer{oldTargets}, 2, 1, other), oldRoot[0]); err == nil {
		t.Fatal("NewRoot signed below its threshold succeeded")
	}
	newSpec := spec(newRoot, []*keys.Signer{newTargets}, 2, 1, other)
	v2, err := trust.Rotate(v1, newSpec, append(append([]*keys.Signer{}, oldRoot...), newRoot...)...)
	if err != nil {
		t.Fatal(err)
	}
	for name, signers := range map[string][]*keys.Signer{
		"new keys only":             newRoot,
		"old keys only":             oldRoot,
		"one old key and both new":  {oldRoot[0], newRoot[0], newRoot[1]},
		"both old keys and one new": {oldRoot[0], oldRoot[1], newRoot[0]},
	} {
		if _, err := trust.Rotate(v1, newSpec, signers...); err == nil {
			t.Errorf("rotation signed by %s succeeded", name)
		}
	}

	// A device pinned to v1 follows the chain to v2 and then trusts only
	// the new targets key.
	root, err := trust.LoadRoot(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if root.Version() != 2 {
		t.Errorf("version = %d, want 2", root.Version())
	}
	v, err := root.Verifier(trust.RoleTargets)
	if err != nil {
		t.Fatal(err)
	}
	envNew, _ := trust.Seal(ctx, "t", []byte("p"), newTargets)
	if _, err := v.Verify(ctx, "t", envNew); err != nil {
		t.Errorf("new targets key refused after rotation: %v", err)
	}
	envOld, _ := trust.Seal(ctx, "t", []byte("p"), oldTargets)
	if _, err := v.Verify(ctx, "t", envOld); !errors.Is(err, trust.ErrUntrustedKey) {
		t.Errorf("old targets key after rotation: err = %v, want ErrUntrustedKey", err)
	}
	// Skipping a version, or replaying v1 as an update, is refused.
	if _, err := trust.LoadRoot(v1, v1); err == nil {
		t.Error("root update to the same version accepted")
	}
	if _, err := trust.LoadRoot(v2); err != nil {
		t.Errorf("v2 as pinned root: %v", err)
	}
}

func TestExpiredRoot(t *testing.T) {
	ctx := context.Background()
	tr := bundletest.NewTrust(t, 1, 1, time.Now().Add(time.Hour))
	root, err := trust.LoadRoot(tr.RootJSON)
	if err != nil {
		t.Fatal(err)
	}
	root.Now = func() time.Time { return time.Now().Add(61 * time.Minute) }
	v, err := root.Verifier(trust.RoleTargets)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := trust.Seal(ctx, "t", []byte("p"), tr.Targets...)
	if _, err := v.Verify(ctx, "t", env); !errors.Is(err, trust.ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
}

func TestBadThreshold(t *testing.T) {
	a := bundletest.Key(t, keys.Ed25519)
	for _, k := range []int{0, 2} {
		if _, err := trust.NewVerifier("targets", k, a.Public); err == nil {
			t.Errorf("threshold %d with one key accepted", k)
		}
	}
	if _, err := trust.NewVerifier("targets", 2, a.Public, a.Public); err == nil {
		t.Error("threshold 2 with one key listed twice accepted")
	}
}
