// Package keys loads and generates the signing keys of a gitfleet release
// process: the TUF roles' keys (root, targets, snapshot, timestamp) that sign
// bundles and trust metadata.
//
// A private key is named by a reference, so that a release key need never sit
// on a disk:
//
//	path/to/targets.key        a PEM file, optionally encrypted
//	env://GITFLEET_TARGETS_KEY an environment variable holding the PEM text
//	hashivault://NAME, awskms://…, any sigstore KMS URI
//
// Encrypted PEM files use sigstore's scrypt + secretbox encoding; their
// passphrase comes from a PassphraseFunc, which by default reads the
// GITFLEET_KEY_PASSPHRASE environment variable.
//
// Every key is identified by its TUF key id, the hex SHA-256 of the key's
// canonical TUF JSON form, so that ids in bundle envelopes and in TUF
// metadata are the same strings.
package keys
