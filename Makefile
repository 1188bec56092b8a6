# Thin wrappers over the go commands this project runs; .ci/run is the CI itself.
# Each target prints the command it runs. Variables: FUZZTIME (per fuzz target, a count,
# see .ci/run), BENCH, BENCHTIME, BENCHCOUNT and BENCHPKG (the README's benchmark by default),
# NODES and DIR (the demo).

GO ?= go
FUZZTIME ?= 10000x
BENCH ?= SeedDeal|Floors|PlainHTTP|Commitments
BENCHTIME ?= 2048x
BENCHCOUNT ?= 2
BENCHPKG ?= ./node/
NODES ?= 3
DIR ?= /tmp/asp-testnet

# As in .ci/run: the race detector on these packages, and on the command line's bundle
# verification tests.
RACEPKGS := $(foreach d,protocol ledger node p2p,$(if $(wildcard $(d)),./$(d)/...))

.PHONY: build test race fuzz bench demo ci

build:
	$(GO) build ./...

test:
	$(GO) test ./...

race:
	$(GO) test -race $(RACEPKGS)
	$(GO) test -race -run '^TestAuditVerify' ./cmd/asp/internal/cli

# Every "func FuzzX(f *testing.F)" in a _test.go file, one target at a time, as .ci/run does.
fuzz:
	@grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | \
	sed -E 's#^\./##; s#:func (Fuzz[A-Za-z0-9_]*)\($$#:\1#' | sort -u | \
	while IFS=: read -r file name; do \
		dir=$$(dirname "$$file"); \
		echo "$(GO) test -run='^\$$' -fuzz='^$$name\$$' -fuzztime=$(FUZZTIME) ./$$dir"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime="$(FUZZTIME)" "./$$dir" || exit 1; \
	done

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(BENCHPKG)

demo:
	$(GO) run ./cmd/asp testnet --nodes $(NODES) --dir $(DIR) --demo

ci:
	bash .ci/run
