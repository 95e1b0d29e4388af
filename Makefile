# Every target calls a script in scripts/ or a plain go command, so CI, the
# Makefile and a developer run the very same thing.

GO       ?= go
FUZZTIME ?= 10s

# Where `make run` listens; the doc tests move them to free ports.
DERPER_DEV_ADDR      ?= 127.0.0.1:3340
DERPER_DEV_STUN_PORT ?= 3478

.PHONY: run test lint unit fuzz bench bench-compare build cover docs soak hostile

## run: start a derper in dev mode on loopback (HTTP :3340, STUN :3478).
run:
	$(GO) run ./cmd/derper -dev -a $(DERPER_DEV_ADDR) -stun-port $(DERPER_DEV_STUN_PORT)

## test: everything CI runs.
test: lint unit fuzz

lint:
	./scripts/lint.sh

unit:
	./scripts/test.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-compare: openderp side by side with Tailscale's v1.76.3 and
## v1.104.5 servers, each in its own process; prints a table of ratios.
## 7.5 minutes on a quiet 2-core machine, up to 40 on a busy one (-max
## bounds it); QUICK=1 for a two-minute smoke run.
bench-compare:
	cd bench/compare && QUICK=$(QUICK) $(GO) run . -json $(CURDIR)/bench-compare.json

build:
	$(GO) build -o bin/ ./cmd/...

## docs: regenerate the generated parts of docs/ (docs/flags.md and the
## flag table of docs/operating.md, one generator in cmd/derper), then
## check them against a freshly built derper's -h.
docs:
	$(GO) test ./cmd/derper -run '^TestFlagsDoc$$' -update-flags-doc -count=1
	$(GO) test ./internal/doctest -run '^TestFlagTables$$' -count=1

cover:
	$(GO) test -coverprofile=coverage.out ./... && $(GO) tool cover -func=coverage.out | tail -1

## soak: opt-in, about 4 minutes (10 at most): a loopback relay under 10,000
## clients with churn and steady traffic; prints RSS, heap, goroutines and
## fds before, during and after. Not part of test. SOAKFLAGS adds flags.
soak:
	$(GO) run ./internal/soak $(SOAKFLAGS)

## hostile: the hostile-input tests at the issue's full sizes (10,000 idle
## connections, 2,000 TLS stalls, the stalled-memory table); about 2 minutes.
hostile:
	OPENDERP_HEAVY_TESTS=1 $(GO) test -count=1 -v -run 'Hostile|Stalled' ./derp ./derphttp ./stun/stunserver
