// Package recipe owns the two files gitfleet reads from a firmware
// repository: gitfleet.yaml at a tagged commit (a Recipe: what the release
// is for, how to build it and which images the build produces) and
// fleet.yaml on the main branch (a Fleet: its channels, the release each one
// runs, which devices follow it and the rollout policy).
//
// Both files are parsed strictly: unknown fields, anchors, aliases and tags
// are refused, and every value is validated. Each error is an *Error naming
// the file, the line and the field, as in
//
//	fleet.yaml:12: channels.production.policy.max_failure_rate: 1.5 is not between 0 and 1
//
// Promoting a release is a commit to fleet.yaml: Fleet.Promote returns the
// file with one value changed and everything else byte for byte as it was,
// so the commit is a one-line diff and "git revert" undoes it.
//
// Build runs a recipe in a checkout, with a timeout, in a process group of
// its own and an environment that carries nothing from the server's.
//
// FORMAT.md beside this file describes both files field by field.
package recipe
