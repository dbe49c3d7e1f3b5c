package gitsource

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// ErrWebhookSignature: a webhook's signature is missing or does not match
// its body.
var ErrWebhookSignature = errors.New("webhook signature does not match")

// VerifyWebhook checks a push webhook's HMAC-SHA256 signature: header is
// the signature header's value, "sha256=<hex>" as GitHub and Forgejo send
// it in X-Hub-Signature-256, or bare hex as Gitea sends it in
// X-Gitea-Signature. The comparison takes the same time whatever the
// signature, so it leaks nothing about the expected one.
func VerifyWebhook(secret, body []byte, header string) error {
	if len(secret) == 0 {
		return errors.New("verify webhook: no secret configured")
	}
	got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(header), "sha256="))
	if err != nil || len(got) != sha256.Size {
		return ErrWebhookSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrWebhookSignature
	}
	return nil
}
