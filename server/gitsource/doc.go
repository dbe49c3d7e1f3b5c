// Package gitsource is the server's side of Git: it watches a firmware
// repository for release tags, checks their signatures, checks them out for
// the builder, and reads and promotes fleet.yaml on the main branch.
//
// A Repo keeps a bare clone of the repository in a cache directory and
// talks to the server over file://, git://, http(s):// or ssh:// (with a
// known_hosts file or host key callback, never trust on first use). Fetch
// costs one reference listing when nothing changed.
//
// Release tags are tags named "v" and a semantic version (v1.4.0,
// v1.5.0-rc.1). Poll compares them with a State the caller keeps (LoadState,
// State.Save) and reports new, moved and deleted tags; a moved tag is
// reported, never rebuilt on its own. A Watcher polls at an interval with
// jitter and at once on Trigger, which the API's webhook handler calls once
// it has checked the hook's signature.
//
// A Policy says whose signatures a tag needs: OpenPGP keys (an armored
// keyring) or SSH keys (an allowed signers file); Verify refuses unsigned,
// lightweight and wrongly signed tags and names the signer of the others.
// Checkout exports a tag's tree into a clean directory, without .git, for
// recipe.Build.
//
// Promote commits a one-line change of fleet.yaml (see recipe.Fleet.Promote)
// and pushes it, starting over on the new head when someone else pushed
// first; reverting that commit with git is the rollback.
package gitsource
