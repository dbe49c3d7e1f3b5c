// Package source serves a bundle to the update engine from where it is: a
// local single-file bundle (USB, a CI artifact), a single-file bundle over
// HTTP(S), or the object layout in object storage. Every form hands out the
// signed envelope and each image's bytes from any offset, so a cut
// download resumes at the last verified chunk with a range request instead
// of starting over. Nothing here verifies: the engine does, chunk by chunk.
package source
