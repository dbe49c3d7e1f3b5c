// Package bootenv reads and writes bootloader environments: the U-Boot
// environment (single or redundant, on a block device or a regular file, as
// described by an fw_env.config) and the GRUB environment block (grubenv).
//
// Both formats hold an ordered set of variables, [Vars]. The agent's
// bootloader backends use them to arm a slot switch and count boot attempts;
// the virtual board uses the same code to play the bootloader's part, so both
// sides agree on every byte.
//
// The formats are byte-compatible with the tools a board already ships:
// u-boot-tools' mkenvimage, libubootenv's fw_printenv and fw_setenv, and
// grub-editenv. FORMAT.md beside this file describes the layouts, how a copy
// is chosen, why a write survives a power cut, and how each rule was checked
// against those tools.
//
// The package depends on the standard library alone (and the module's
// internal/atomicfile): it is linked into the agent, which must stay small.
package bootenv
