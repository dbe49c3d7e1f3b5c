// Package slot holds the device's A/B slot groups: two groups, A and B, each
// mapping slot classes (rootfs, boot, …) to a block device or, on the virtual
// board and in tests, a regular file holding a partition image.
//
// A [Pair] tells which group is running, opens slots for reading, and opens
// the other group's slots for writing: it refuses to write the running group,
// by name and by file identity, so that a configuration mistake or a device
// alias cannot overwrite the system that is executing. It implements the
// update engine's Slots interface.
//
// The running group comes from a [Detector]: the kernel command line
// ([Cmdline], the default), the bootloader's variables, or a fixed group
// ([Fixed]).
package slot
