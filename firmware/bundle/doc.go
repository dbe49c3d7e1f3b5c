// Package bundle reads and writes gitfleet firmware bundles.
//
// A bundle is a signed manifest and the images it describes (a root
// filesystem, a boot partition, …). The manifest names the release (product,
// version, release counter, compatible device types, Git provenance) and,
// for each image, its target slot, size, SHA-256 and a chunk index: the
// SHA-256 of every fixed-size chunk. A reader checks each chunk before it
// hands out a single byte of it, so an installer can stream a bundle into a
// slot without ever writing unverified data, resume at a chunk boundary, and
// a later delta update can reuse chunks a device already has.
//
// A bundle has two forms with the same manifest: a single file (Writer,
// Reader) whose signed manifest comes first, for USB installs and CI
// artifacts, and an object layout (ObjectKeys) with the envelope and each
// image stored apart, for object storage and HTTP range requests.
// FORMAT.md beside this file specifies both.
//
// The package does no I/O of its own beyond the readers and writers it is
// given, and never logs.
package bundle
