package trust_test

import (
	"context"
	"testing"

	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	a := bundletest.Key(f, keys.Ed25519)
	v, err := trust.NewVerifier("targets", 1, a.Public)
	if err != nil {
		f.Fatal(err)
	}
	env, err := trust.Seal(ctx, "t", []byte("the signed payload"), a)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(`{"payloadType":"t","payload":"","signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, err := v.Verify(ctx, "t", data)
		if err == nil && string(payload) != "the signed payload" {
			t.Fatalf("accepted a payload that was never signed: %q", payload)
		}
		// Whatever Inspect reads, Payload reads the same payload from.
		if _, inspected, _, err := trust.Inspect(data); err == nil {
			if located, err := trust.Payload(data); err != nil || string(located) != string(inspected) {
				t.Fatalf("Inspect read payload %q, Payload %q (%v)", inspected, located, err)
			}
		}
	})
}
