// Package hil runs hardware-in-the-loop tests of gitfleet: a plan of
// scenarios (update, refusals, rollbacks, power cuts) on every board of a
// rig, in parallel, through each board's serial console and power driver,
// with one console log per board and scenario and a JUnit report. Each
// scenario also checks that the fleet status API of the gitfleet server the
// boards report to says what the board's console said; for virtual boards
// the runner can start that server itself.
//
// The rig file (rig.yaml) and the plan file (plan.yaml) are described in
// README.md; RIG.md shows a rig of real boards. Subpackages hold the parts:
// console (serial console and expect), power (power drivers), vboard (the
// virtual board CI runs on) and junit (the report).
package hil
