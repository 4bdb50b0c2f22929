# yubin: the two commands are `make run` and `make test` (see README.md).
# Everything else here serves them.

BUILD := build
ASAN := build-asan
FUZZ := build-fuzz
PYTEST := /usr/bin/python3 -m pytest
SECONDS ?= 60
export UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0

.PHONY: all deps deps-test build build-asan run test unit integration fuzz clean valgrind

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN)/build.ninja:
	CC=clang meson setup $(ASAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps-test $(ASAN)/build.ninja
	ninja -C $(ASAN)

# Starts the server in the foreground on the development config: loopback,
# ports 2525 (SMTP) and friends, data in var/ (in /var/lib/yubin-dev when
# run as root from a checkout its user cannot reach, e.g. under /root).
# First start makes a demo domain. The script ends by becoming the server.
run: build
	@exec scripts/dev-setup.sh $(BUILD)/yubin etc/yubin.conf

unit: build build-asan
	meson test -C $(BUILD) --print-errorlogs
	meson test -C $(ASAN) --print-errorlogs

integration: build-asan
	YUBIN_BIN=$(CURDIR)/$(ASAN)/yubin $(PYTEST) -q --durations=25 tests

test: unit integration

$(FUZZ)/build.ninja:
	CC=clang meson setup $(FUZZ) --buildtype=debug -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

# Runs every fuzz target for SECONDS each on its seed corpus.
fuzz: deps-test $(FUZZ)/build.ninja
	ninja -C $(FUZZ)
	@for f in $(FUZZ)/fuzz_*; do \
		[ -f $$f ] && [ -x $$f ] || continue; \
		t=$${f##*/fuzz_}; mkdir -p $(FUZZ)/corpus/$$t; \
		echo "== $$t"; \
		$$f -max_total_time=$(SECONDS) -timeout=10 $(FUZZ)/corpus/$$t fuzz/corpus/$$t || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)

# Long form of the crash-safety tests (M8, tests/proto/crash): the SMTP
# delivery test and the IMAP APPEND/STORE/EXPUNGE/MOVE test that SIGKILL
# the server at random moments, with STRESS_KILLS kills each (default 200;
# `make test` runs them with 20 and 10), against the
# sanitizer build (STRESS_BUILD=build for the optimized one). A body file
# that no row names, left after a restart, fails it (STRESS_NO_ORPHANS=0
# only lists them). The seed is printed; replay a failure with
# `make stress STRESS_SEED=N`.
STRESS_KILLS ?= 200
STRESS_BUILD ?= $(ASAN)
.PHONY: stress
stress: $(if $(filter $(BUILD),$(STRESS_BUILD)),build,build-asan)
	STRESS_KILLS=$(STRESS_KILLS) STRESS_SEED=$(STRESS_SEED) STRESS_NO_ORPHANS=$(STRESS_NO_ORPHANS) \
		YUBIN_BIN=$(CURDIR)/$(STRESS_BUILD)/yubin \
		$(PYTEST) -q -s tests/proto/crash

# A representative subset of the integration tests against the optimized
# build, each `yubin serve` under valgrind's memcheck
# (scripts/valgrind-yubin.sh; VALGRIND_CLI=1 puts the admin commands under
# it too). Passes only with no error and no definite leak in any process:
# the server exits 99 on one (so its test fails) and its report, kept in
# $(VALGRIND_LOGS), must be empty. The command-length bomb test is left
# out: its bound is on the server's VmRSS, which valgrind's own memory
# inflates.
VALGRIND_LOGS ?= $(CURDIR)/$(BUILD)/valgrind-logs
VALGRIND_TESTS ?= tests/proto/smtp/test_smtp_session.py tests/proto/smtp/test_smtp_smuggling.py \
	tests/proto/submission/test_submission_auth.py tests/proto/pop3/test_pop3_session.py \
	tests/proto/imap/test_imap_session.py tests/proto/imap/test_imap_fetch.py \
	tests/proto/attacks/test_attacks.py
valgrind: build deps-test
	rm -rf $(VALGRIND_LOGS) && mkdir -p $(VALGRIND_LOGS) && chmod 1777 $(VALGRIND_LOGS)
	VALGRIND_YUBIN=$(CURDIR)/$(BUILD)/yubin VALGRIND_LOG_DIR=$(VALGRIND_LOGS) \
		YUBIN_BIN=$(CURDIR)/scripts/valgrind-yubin.sh \
		YUBIN_START_TIMEOUT=60 YUBIN_STOP_TIMEOUT=60 YUBIN_IO_TIMEOUT=30 \
		$(PYTEST) -q $(VALGRIND_TESTS) -k 'not command_length_bomb'
	@bad=$$(find $(VALGRIND_LOGS) -name 'vg.*.log' -size +0); \
	if [ -n "$$bad" ]; then cat $$bad; echo "valgrind reported errors: $$bad"; exit 1; fi; \
	echo "valgrind: $$(ls $(VALGRIND_LOGS) | wc -l) server processes, no error, no definite leak"

# Benchmarks (M9, bench/): yubin side by side with private Postfix and
# Dovecot instances on loopback, the optimized build, results in
# bench/results/DATE.md (see docs/benchmarks.md). Under 30 minutes;
# `make bench QUICK=1` is a short smoke run (results in DATE-quick.md).
# Not part of `make test`: timed figures are not pass/fail tests.
.PHONY: bench
bench: build
	@bench/deps.sh
	/usr/bin/python3 bench/run.py --yubin $(CURDIR)/$(BUILD)/yubin $(if $(QUICK),--quick)
