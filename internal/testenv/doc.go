// Package testenv gives tests the real services and programs they talk to: the test Mosquitto broker,
// PostgreSQL server and S3 server (versitygw) that scripts/with-services.sh starts for a run and
// describes in GITFLEET_TEST_* variables, private Mosquitto brokers with a configuration of their
// own, and programs such as fw_printenv or grub-editenv.
//
// A test that cannot find what it needs fails, and its message says how to get it: "make test", or
// scripts/with-services.sh followed by the go test command. Nothing is ever skipped, so a green run
// means every test ran against the real thing.
//
// Every test of a run, in every package, shares the three services, and go test runs packages in
// parallel. Postgres and S3 therefore give each test a database and a bucket of its own; for MQTT
// client ids, fleet names and other shared names, use ID.
package testenv
