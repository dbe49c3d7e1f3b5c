// Package update is the agent's update engine: one explicit state machine
// that takes a bundle from "offered" to "committed" or "rolled back", and
// survives a power cut at any instant.
//
// Three tables define it, all in states.go: the transitions (what event
// takes which state to which), the resume actions (what a restarted agent
// does in each state, and why that is safe), and the give-up transitions
// taken when the step counter shows the agent keeps dying in one state.
// STATES.md beside this file draws the transition table; a golden test keeps
// the drawing equal to the table.
//
// The engine persists its journal — state, release, progress, sequence
// number — by name before each action (temp file, fsync, rename, fsync
// dir), and every action is idempotent, so resuming is repeating the action
// of the persisted state. The bootloader switch (Arming) is the point of no
// return: before it, any failure leaves the running slot and the bootloader
// untouched; after it, the bootloader's boot counter and the health checks
// decide between commit and rollback.
package update
