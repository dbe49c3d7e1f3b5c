# gitfleet — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := bash
GO    ?= go
BIN   := bin

.PHONY: all build demo test test-short vet proto bench fuzz hil clean

all: build

# Static binaries: the agent runs on devices without a matching libc.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# demo runs the main job on embedded defaults: a signed tag becomes a
# rollout to three virtual boards; a promotion and a git revert follow.
demo: build
	demo/run.sh

# test installs and starts the real services (Mosquitto, PostgreSQL, an S3
# server) on loopback, runs vet and the race-enabled suite, and stops them.
test:
	scripts/with-services.sh bash -c '$(GO) vet ./... && $(GO) test -race -count=1 ./...'

# test-short runs the suite without starting services; tests that need one
# fail and say how to start it.
test-short:
	$(GO) test -count=1 ./...

vet:
	$(GO) vet ./...

# hil runs the long HIL plan (hundreds of seeded power cuts) on virtual
# boards reporting to a gitfleet-server that gitfleet-hil starts on embedded
# defaults, and keeps the JUnit report and the logs; make test runs the
# short plan.
hil: build
	$(BIN)/gitfleet-hil run --rig hil/rigs/virtual.yaml --plan hil/plans/long.yaml --junit hil-report.xml --logs hil-logs

proto:
	proto/generate.sh

# bench runs every benchmark (bundle, agent install beside dd, the hash
# limit and the installed peers RAUC/SWUpdate/Mender, server, fleet
# simulator) and prints one table of figures, limits and ratios.
bench: build
	bench/all.sh

# fuzz runs every fuzz target of the module (FUZZTIME each, default 20s).
fuzz:
	bench/fuzz.sh

clean:
	rm -rf $(BIN)
