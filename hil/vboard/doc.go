// Package vboard is the virtual board of the HIL rig: a board with a
// pseudo-terminal console and a control socket for power, whose bootloader
// counts boots and falls back as U-Boot does (agent/boot.Convention), and
// whose operating system is the real gitfleet-agent working on slot and
// environment files, its daemon reporting to a gitfleet server's broker
// when the board has one. Power off kills the agent at once: that is a
// power cut.
// FORMAT.md beside this file describes its image format.
package vboard
