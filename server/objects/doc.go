// Package objects is where gitfleet-server keeps the bundles it publishes,
// in the object layout of firmware/bundle (see FORMAT.md there), and how it
// hands devices expiring URLs to download them with.
//
// There are two stores with the same methods, so the server can use either:
//
//   - S3 keeps objects in an S3 bucket (AWS S3, MinIO, versitygw, …) through
//     minio-go and presigns GET URLs that S3 itself checks. It is the store
//     past one machine, when several server replicas share the bucket.
//   - Local, the embedded default, keeps objects in a directory and serves
//     them itself: it is an http.Handler, and its URLs carry an HMAC-SHA256
//     signature and an expiry that the handler checks.
//
// Either way a device gets a URL that works until it expires and reads the
// object with GET requests, resuming with Range headers after a cut.
//
// PutObject makes an object visible only once it is complete: S3 completes a
// multipart upload last and aborts it on any failure, Local renames a synced
// temporary file into place. Keys are content addressed (an image under its
// SHA-256, an envelope under the bundle digest), so PutObject skips a key
// that already holds an object of the same size: releases that share an
// image upload it once.
//
// A key is a slash-separated path of names made of letters, digits, '.',
// '_' and '-', none starting with a dot, as bundle.ObjectKeys makes them.
// Stat and Open report a missing object with an error that wraps
// fs.ErrNotExist.
package objects
