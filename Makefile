# autopull — plain GNU Makefile. `make`, `make check`, `make demo`, `make install DESTDIR= PREFIX=`.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/autopull
UNITDIR    ?= /lib/systemd/system
USERUNITDIR ?= /usr/lib/systemd/user
GENERATORDIR ?= /lib/systemd/system-generators
CATALOGDIR ?= /usr/lib/systemd/catalog
SYSCONFDIR ?= /etc
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

CC      ?= cc
PKGS    := libgit2 libsystemd yaml-0.1 json-c
# Headers only: http.c loads libcurl when a push needs it (see there why it is not linked).
DLOPEN_PKGS := libcurl
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wvla \
           -Wwrite-strings -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -iquote include -DTESTS_DIR=\"$(CURDIR)/tests\"
# Only the targets that run tests or the demo install packages (scripts/deps.sh: apt-get as
# root on Debian, else it prints the missing packages). Plain `make` and `make install` only
# ask pkg-config, so other distributions build with their own packages.
DEPS_GOALS := deps check demo bench bench-fleet integration system-tests unit-tests asan-tests fuzz fuzz-build \
              fuzz-smoke check-long deb
ifneq ($(filter $(DEPS_GOALS),$(MAKECMDGOALS)),)
DEPCHECK := $(shell sh scripts/deps.sh >&2 || echo fail)
ifeq ($(DEPCHECK),fail)
$(error missing build dependencies, see above)
endif
else ifeq ($(filter clean uninstall deb,$(MAKECMDGOALS)),)
PKG_MISSING := $(shell for p in $(PKGS) $(DLOPEN_PKGS); do pkg-config --exists $$p 2>/dev/null || echo $$p; done)
ifneq ($(strip $(PKG_MISSING)),)
$(error missing libraries (pkg-config): $(PKG_MISSING); on Debian: apt-get install pkg-config libgit2-dev libsystemd-dev libyaml-dev libcurl4-openssl-dev libjson-c-dev)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(DLOPEN_PKGS))
# mbedTLS's crypto library (digest.c) is the one libgit2 already loads; it has no .pc file.
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lmbedcrypto
CMOCKA_LIBS = $(shell pkg-config --libs cmocka)
# test tables initialise char * fields from literals
TEST_CFLAGS := -Wno-write-strings

SRCS    := $(wildcard src/*.c)
LIBSRCS := $(filter-out src/main.c,$(SRCS))
OBJS    := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/%.o)
ASAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

all: autopull

autopull: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

# The whole program with ASan/UBSan, driven by the integration tests (t-40).
build/autopull-asan: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(ASAN) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

build/obj/%.o: src/%.c | build/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<
build/asan/%.o: src/%.c | build/asan
	$(CC) $(CPPFLAGS) $(CFLAGS) $(ASAN) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<
build/obj build/asan build/tests build/tests-asan:
	mkdir -p $@

# Each unit test links only the modules it tests (plus util/log), so a test cannot
# silently depend on the whole program.
# test-bus needs a live systemd manager: the integration harness runs it (as the test user).
LIVE_TESTS := test-bus
ALL_TESTS := $(patsubst tests/%.c,%,$(wildcard tests/test-*.c))
TESTS := $(filter-out $(LIVE_TESTS),$(ALL_TESTS))
BASE  := util log model
test-config_MODS  := config config-schema config-fleet config-walk fsutil fsutil-safe digest
test-repo_MODS    := repo repo-fetch repo-git repo-local repo-tree digest
test-trust_MODS   := trust trust-io digest fsutil fsutil-safe spawn state records journal unitfile
test-plan_MODS    := plan unitfile print journal
test-fsutil_MODS  := fsutil fsutil-safe
test-spawn_MODS   := spawn
test-log_MODS     :=
test-util_MODS    :=
test-bus_MODS     := bus bus-props
test-bus-props_MODS := bus bus-props fsutil fsutil-safe
test-state_MODS   := state state-log state-fileset records fsutil fsutil-safe journal unitfile events
test-records_MODS := records
test-heartbeat_MODS := heartbeat
test-unitfile_MODS := unitfile
test-journal_MODS := journal unitfile
test-events_MODS  := events
test-apply_MODS   := apply journal unitfile
test-engine_MODS  := engine journal unitfile
test-http_MODS    := http
test-fleet_MODS   := fleet fleet-etcd fleet-status http digest fsutil fsutil-safe
test-push_MODS    := push http fsutil fsutil-safe
test-sandbox_MODS := sandbox config config-schema config-fleet config-walk fsutil fsutil-safe digest
test-validate_MODS := validate fsutil fsutil-safe unitfile unitusers probe http config config-schema config-fleet config-walk digest
test-preflight_MODS := preflight fsutil fsutil-safe
test-install_MODS := install fsutil fsutil-safe
test-cmd-fleet_MODS := cmd-fleet
test-review_MODS  := print print-review journal unitfile
test-probe_MODS   := probe http spawn unitfile config config-schema config-fleet config-walk fsutil fsutil-safe digest
test-secrets_MODS := secrets fsutil fsutil-safe spawn plan unitfile repo repo-fetch repo-git repo-local repo-tree digest

define test_rule
build/tests/$(1): tests/$(1).c $(wildcard tests/*.h) $(patsubst %,build/obj/%.o,$(BASE) $($(1)_MODS)) | build/tests
	$$(CC) $$(CFLAGS) $$(TEST_CFLAGS) $$(PKG_CFLAGS) -o $$@ $$(filter %.c %.o,$$^) $$(PKG_LIBS) $$(CMOCKA_LIBS) $$($(1)_LDFLAGS)
build/tests-asan/$(1): tests/$(1).c $(wildcard tests/*.h) $(patsubst %,build/asan/%.o,$(BASE) $($(1)_MODS)) | build/tests-asan
	$$(CC) $$(CFLAGS) $$(TEST_CFLAGS) $$(ASAN) $$(PKG_CFLAGS) -o $$@ $$(filter %.c %.o,$$^) $$(PKG_LIBS) $$(CMOCKA_LIBS) $$($(1)_LDFLAGS)
endef
$(foreach t,$(ALL_TESTS),$(eval $(call test_rule,$(t))))

unit-tests: $(TESTS:%=build/tests/%)
	@set -e; for t in $(TESTS); do echo "== $$t"; ./build/tests/$$t; done

asan-tests: $(TESTS:%=build/tests-asan/%)
	@set -e; for t in $(TESTS); do echo "== $$t (asan/ubsan)"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/tests-asan/$$t; done

# libFuzzer targets (clang): one per tests/fuzz/fuzz-*.c, linking only its modules like the
# unit tests. Objects are built with coverage instrumentation into build/fuzz/obj, binaries
# into build/fuzz; each run's corpus and crash inputs go to build/fuzz/run/<target>/, the
# committed seeds in tests/fuzz/corpus/<target>/ are only read.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE $(WARN) -Wno-unused-command-line-argument \
                -iquote include -iquote tests/fuzz $(FUZZ_SAN)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
fuzz-config_MODS    := config config-schema config-fleet config-walk fsutil fsutil-safe digest
fuzz-path_MODS      := plan unitfile config config-schema config-fleet config-walk fsutil fsutil-safe digest
fuzz-unitfile_MODS  := unitfile
fuzz-heartbeat_MODS := heartbeat
fuzz-state_MODS     := state state-log state-fileset records journal events unitfile fsutil fsutil-safe
fuzz-records_MODS   := records
fuzz-escape_MODS    :=

build/fuzz/obj/%.o: src/%.c | build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c -o $@ $<
build/fuzz/obj:
	mkdir -p $@

define fuzz_rule
build/fuzz/$(1): tests/fuzz/$(1).c tests/fuzz/fuzz.h $(patsubst %,build/fuzz/obj/%.o,$(BASE) $($(1)_MODS)) | build/fuzz/obj
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer $$(PKG_CFLAGS) -o $$@ $$(filter %.c %.o,$$^) $$(PKG_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/%)

# FUZZ_SECONDS per target; prints execs, execs/s and crashes per target, fails on a crash.
fuzz: fuzz-build
	@sh tests/fuzz/run.sh --each $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# 60 s in all, shared by the targets: the seeds plus a short search, for `make check`.
fuzz-smoke: fuzz-build
	@sh tests/fuzz/run.sh --total 60 $(FUZZ_TARGETS)

lint:
	@sh scripts/lint.sh

integration: autopull build/autopull-asan $(LIVE_TESTS:%=build/tests/%) $(LIVE_TESTS:%=build/tests-asan/%)
	bash tests/integration/run.sh

# A real systemd system manager: Debian 12 booted with systemd-nspawn, the build installed
# into it (tests/system/run.sh; as root; the rootfs is built once and cached).
system-tests: autopull
	bash tests/system/run.sh

check: lint unit-tests asan-tests fuzz-smoke integration system-tests

# Not in CI: more kill -9 at random moments during a sequence of applies (t-29 with
# AP_CRASH_RANDOM kills, each followed by a convergence check; `make check` runs 20).
check-long: autopull
	AP_CRASH_RANDOM=$${AP_CRASH_RANDOM:-100} AP_TEST_TIMEOUT=$${AP_TEST_TIMEOUT:-3600} \
	  bash tests/integration/run.sh t-29-crash-random
.PHONY: check-long

# Installs the build and test dependencies (see DEPS_GOALS above); a no-op when present.
deps:
	@:

demo: autopull
	bash scripts/demo.sh

bench: autopull build/bench/linear
	bash bench/run.sh
	bash bench/fleet-sim.sh

# Building 10,000 and 100,000 entries of every growing list: the CPU-time ratio must say
# linear (bench/linear.c). Part of `make bench`; alone with `make bench-linear`.
build/bench/linear: bench/linear.c $(LIBSRCS:src/%.c=build/obj/%.o) | build/bench
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)
build/bench:
	mkdir -p $@
# The fetch of a first run alone, for bench/first-sweep.sh (bench/firstfetch.c).
build/bench/firstfetch: bench/firstfetch.c $(LIBSRCS:src/%.c=build/obj/%.o) | build/bench
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)
bench-linear: build/bench/linear
	./build/bench/linear

# A rollout across 100 simulated hosts on a real etcd (bench/fleet-sim.sh).
bench-fleet: autopull
	bash bench/fleet-sim.sh

install: autopull
	install -Dm0755 autopull $(DESTDIR)$(BINDIR)/autopull
	install -Dm0644 doc/autopull.8 $(DESTDIR)$(MANDIR)/man8/autopull.8
	install -Dm0644 doc/autopull.yaml.5 $(DESTDIR)$(MANDIR)/man5/autopull.yaml.5
	install -Dm0644 completion/autopull.bash $(DESTDIR)$(BASHCOMPDIR)/autopull
	# what `journalctl -x` says about autopull's entries (the MESSAGE_IDs of events.h)
	install -Dm0644 doc/autopull.catalog $(DESTDIR)$(CATALOGDIR)/autopull.catalog
	# the units name the binary where this install puts it
	for u in units/system/*; do install -d $(DESTDIR)$(UNITDIR) && \
	  sed 's|/usr/local/bin/autopull|$(BINDIR)/autopull|' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	for u in units/user/*; do install -d $(DESTDIR)$(USERUNITDIR) && \
	  sed 's|/usr/local/bin/autopull|$(BINDIR)/autopull|' $$u > $(DESTDIR)$(USERUNITDIR)/$${u##*/}; done
	# the generator is the same binary, run by PID 1 under this name (see autopull(8))
	install -d $(DESTDIR)$(GENERATORDIR)
	ln -sf $(BINDIR)/autopull $(DESTDIR)$(GENERATORDIR)/autopull-generator
	install -Dm0644 config/autopull.yaml $(DESTDIR)$(SYSCONFDIR)/autopull/autopull.yaml.example
	# the Grafana dashboard and the VMAlert/Prometheus rules for the metrics
	install -d $(DESTDIR)$(DATADIR)
	install -m0644 share/autopull/* $(DESTDIR)$(DATADIR)/

# What install put there, with the same variables; the state directory, a configuration and
# enabled timers are the operator's and stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/autopull $(DESTDIR)$(GENERATORDIR)/autopull-generator \
	  $(DESTDIR)$(MANDIR)/man8/autopull.8 $(DESTDIR)$(MANDIR)/man5/autopull.yaml.5 \
	  $(DESTDIR)$(BASHCOMPDIR)/autopull $(DESTDIR)$(SYSCONFDIR)/autopull/autopull.yaml.example \
	  $(DESTDIR)$(CATALOGDIR)/autopull.catalog
	for u in units/system/*; do rm -f $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	for u in units/user/*; do rm -f $(DESTDIR)$(USERUNITDIR)/$${u##*/}; done
	for f in share/autopull/*; do rm -f $(DESTDIR)$(DATADIR)/$${f##*/}; done
	rmdir $(DESTDIR)$(DATADIR) $(DESTDIR)$(SYSCONFDIR)/autopull 2>/dev/null || true

# The Debian package, built by dpkg-buildpackage in a temporary copy of the tree and checked
# with lintian (scripts/deb.sh); the .deb lands in build/deb/.
deb:
	sh scripts/deb.sh build/deb

clean:
	rm -rf build autopull

.PHONY: all deps check unit-tests asan-tests integration system-tests lint demo bench bench-fleet bench-linear install \
	uninstall deb clean fuzz fuzz-build fuzz-smoke
-include $(wildcard build/obj/*.d build/asan/*.d build/fuzz/obj/*.d)
