# gitfleet — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := bash
GO    ?= go
BIN   := bin

.PHONY: all build demo test test-short vet proto bench fuzz clean

all: build

build:
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...

# demo runs the main job on embedded defaults. Until the server lands it is
# the offline release round trip: keys, a trust root, a signed bundle,
# verification, and a tampered bundle refused.
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

proto:
	proto/generate.sh

bench: build
	bench/run.sh

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzReader -fuzztime=30s ./firmware/bundle/
	$(GO) test -run='^$$' -fuzz=FuzzParseManifest -fuzztime=30s ./firmware/bundle/
	$(GO) test -run='^$$' -fuzz=FuzzVerify -fuzztime=30s ./firmware/trust/

clean:
	rm -rf $(BIN)
