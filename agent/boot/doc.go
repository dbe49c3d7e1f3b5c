// Package boot switches the device between its A and B slot groups through
// the bootloader, with boot counting: the agent arms a trial of the new group,
// the bootloader counts the boots of the trial and falls back to the old group
// past a limit, and the agent commits the new group once it is healthy or
// reverts to the old one.
//
// The convention is U-Boot's boot counter (upgrade_available, bootcount,
// bootlimit, altbootcmd) plus one variable naming the default group; variable
// names are configurable ([Convention]). BOOTCOUNT.md beside this file
// describes it, with the U-Boot script and the grub.cfg that implement it on
// a real board.
//
// Backends implement the update engine's Bootloader:
//
//   - [Env] writes the convention's variables into a [Store]: a U-Boot
//     environment (bootenv.UBootEnv), a GRUB environment block
//     (bootenv.GRUBEnv) or a plain key=value [File], the virtual board's.
//   - [Script] runs the user's commands, for a bootloader this package does
//     not know.
//
// The bootloader's side of the convention is [Convention.PowerOn], which the
// virtual board runs at each power-on to act like U-Boot.
//
// The package depends on the standard library and the module's agent
// packages alone: it is linked into the agent, which must stay small.
package boot
