// Package hil runs hardware-in-the-loop tests of gitfleet: a plan of
// scenarios (update, refusals, rollbacks, power cuts) on every board of a
// rig, in parallel, through each board's serial console and power driver,
// with one console log per board and scenario and a JUnit report. The
// boards report to a gitfleet server, whose fleet status API the runner
// checks against their consoles; for virtual boards it can start that
// server itself.
//
// The rig file (rig.yaml) and the plan file (plan.yaml) are described in
// README.md; RIG.md shows a rig of real boards. Subpackages hold the parts:
// console (serial console and expect), power (power drivers), vboard (the
// virtual board CI runs on) and junit (the report).
package hil
