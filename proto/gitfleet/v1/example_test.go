package gitfleetv1_test

import (
	"crypto/ed25519"
	"fmt"
	"log"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This example follows a channel state from the server to a device. The
// ed25519 key stands in for the server's online key and the device's trust
// metadata, which live elsewhere.
func Example() {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)

	// The server wraps the state, signs exactly what PAE says, and publishes
	// the envelope retained on the channel's topic.
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env, err := gitfleetv1.NewSignedMessage(&gitfleetv1.ChannelState{
		Fleet:     "acme",
		Channel:   "production",
		Sequence:  7,
		IssuedAt:  timestamppb.New(issued),
		ExpiresAt: timestamppb.New(issued.Add(24 * time.Hour)),
		Release: &gitfleetv1.Release{
			Version:      "1.4.0",
			Counter:      14,
			BundleDigest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Size:         64 << 20,
			Tag:          "v1.4.0",
			Commit:       "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
			ManifestUrl:  "https://updates.example.com/1.4.0/manifest.json",
			BaseUrl:      "https://updates.example.com/1.4.0/",
		},
		Wave:         &gitfleetv1.Wave{Index: 1, Threshold: 1000},
		RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE,
	})
	if err != nil {
		log.Fatal(err)
	}
	env.Signatures = append(env.Signatures, &gitfleetv1.Signature{
		KeyId: "online-1",
		Sig:   ed25519.Sign(priv, env.SigningBytes()),
	})
	payload, err := proto.Marshal(env)
	if err != nil {
		log.Fatal(err)
	}
	name, err := topic.Channel("acme", "production")
	if err != nil {
		log.Fatal(err)
	}

	// The device parses the topic and the envelope, verifies the signature
	// before trusting the payload, then checks the state belongs on the topic.
	t, err := topic.Parse(name)
	if err != nil {
		log.Fatal(err)
	}
	got, err := gitfleetv1.DecodeSignedMessage(payload)
	if err != nil {
		log.Fatal(err)
	}
	if !ed25519.Verify(pub, got.SigningBytes(), got.GetSignatures()[0].GetSig()) {
		log.Fatal("bad signature")
	}
	state, err := gitfleetv1.DecodeChannelState(got)
	if err != nil {
		log.Fatal(err)
	}
	if err := gitfleetv1.MatchTopic(t, state); err != nil {
		log.Fatal(err)
	}
	bucket := gitfleetv1.WaveBucket(t.Fleet, "dev-1")
	fmt.Printf("release %s, bucket %d, in wave %d: %t\n",
		state.GetRelease().GetVersion(), bucket, state.GetWave().GetIndex(), state.GetWave().Includes(bucket))
	// Output: release 1.4.0, bucket 870, in wave 1: true
}
