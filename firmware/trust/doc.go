// Package trust decides whom a device believes.
//
// The trust chain is TUF's (github.com/theupdateframework/go-tuf/v2): a root
// metadata file, signed by a threshold of offline root keys, names the keys
// and thresholds of the other roles — targets (the release key that signs
// bundles), snapshot and timestamp (online keys with short expiry). A device
// pins only a root; a new root must be signed by a threshold of the previous
// root's keys and of its own, so keys rotate without re-provisioning devices.
//
// A bundle's manifest travels in a DSSE envelope (the signing format of
// in-toto and sigstore). Seal makes one with sigstore signers; a Verifier
// opens one only if a threshold of distinct trusted keys signed it, and
// Root.Verifier derives that policy from a role of a verified, unexpired root.
package trust
