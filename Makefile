# kvs - plain Makefile.  `make run` and `make test` install missing Debian
# packages first (scripts/deps.sh), then build into build/.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CONFIG  ?= config.yaml
PYTHON  ?= /usr/bin/python3

PKGS    := rocksdb libcjson yaml-0.1 uuid libcurl libsystemd openssl libzstd

# src/ has one folder per layer; includes point down only (make lint checks):
#   base < config < data < store < node.h < cluster < http < main.c, node.c
LAYERS   := base config data store cluster http
INCLUDES := -Isrc $(patsubst %,-Isrc/%,$(LAYERS))

# CFLAGS is yours (optimisation, sanitizers; `make CFLAGS=-O0` works);
# KVS_CFLAGS are the flags the code needs and are always added.
CFLAGS     ?= -O2 -g
KVS_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
              -pthread -MMD -MP $(INCLUDES) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS  = $(CFLAGS) $(KVS_CFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcivetweb -pthread -lm

# Every module of the node, layer by layer (see above).
CORE_OBJS := base/kvs base/log base/metrics base/buf base/zstd_codec base/fsutil config/config \
             config/config_table config/config_text config/config_check data/version data/path \
             data/json data/record data/wire data/member data/push data/snapshot store/rcache store/store \
             store/store_walk store/changes store/hub store/expiry store/restore \
             cluster/members
NODE_OBJS := $(CORE_OBJS) base/notify node cluster/peer cluster/conflict cluster/gossip \
             cluster/replicate cluster/sync cluster/apply cluster/fetch cluster/anti_entropy \
             cluster/vote cluster/clock http/audit http/server http/conn http/auth http/routes http/api_kv \
             http/api_cluster http/api_peer http/api_watch http/api_txn http/api_admin http/api_ui
CORE := $(patsubst %,$(BUILD)/%.o,$(CORE_OBJS))
NODE := $(patsubst %,$(BUILD)/%.o,$(NODE_OBJS)) $(BUILD)/http/ui_assets.o

UNIT_TESTS := config path json version record rcache store vote members wire buf store_fault \
              apply replicate push api_fault peer store_walk changes batch expiry zstd_codec \
              snapshot clock
UNIT_BINS  := $(patsubst %,$(BUILD)/tests/test_%,$(UNIT_TESTS) client kvsctl_args)

.PHONY: all deps test-deps run test lint unit integration install uninstall clean bench deb

# A recipe that fails (a link cut short) leaves no half-written target behind.
.DELETE_ON_ERROR:

all: $(BUILD)/kvs $(BUILD)/test_conflict client

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

$(BUILD)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The web console (ui/, issue 23): its files become constant arrays in a
# generated C file (scripts/embed_ui.py), served from memory by api_ui.c.
UI_FILES := $(wildcard ui/*)
$(BUILD)/http/ui_assets.c: scripts/embed_ui.py $(UI_FILES)
	$(PYTHON) scripts/embed_ui.py ui $@

$(BUILD)/http/ui_assets.o: $(BUILD)/http/ui_assets.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# civetweb's TLS needs the OpenSSL 1.1 shim of src/compat/ssl_compat.c, found
# next to the binary (build/) or in $(PREFIX)/lib/kvs once installed.  It calls
# nothing of libc, but is linked with it as every shared library is (lintian).
$(BUILD)/libssl.so: src/compat/ssl_compat.c | $(BUILD)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -shared \
		-Wl,-soname,libssl.so -o $@ $< -l:libssl.so.3 -Wl,--no-as-needed -lc

$(BUILD)/kvs: $(NODE) $(BUILD)/main.o $(BUILD)/libssl.so
	$(CC) $(LDFLAGS) -o $@ $(NODE) $(BUILD)/main.o \
		-Wl,-rpath,'$$ORIGIN:$$ORIGIN/../lib/kvs' -Wl,--no-as-needed $(BUILD)/libssl.so \
		-Wl,--as-needed $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(CORE) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE) $(LDLIBS) -lcmocka

# The vote tally alone: vote.o, the versions it compares, and base.
VOTE_OBJS := $(patsubst %,$(BUILD)/%.o,cluster/vote data/version base/kvs)
$(BUILD)/tests/test_vote: tests/unit/test_vote.c $(VOTE_OBJS) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(VOTE_OBJS) $(LDLIBS) -lcmocka

# apply.o on the core; the test stands in for conflict_submit() (the resolver).
$(BUILD)/tests/test_apply: tests/unit/test_apply.c $(CORE) $(BUILD)/cluster/apply.o | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/cluster/apply.o $(CORE) $(LDLIBS) -lcmocka

# The push queue: replicate.o and what it sends with (peer, node), never started.
REPL_OBJS := $(patsubst %,$(BUILD)/%.o,cluster/replicate cluster/peer node base/notify)
$(BUILD)/tests/test_replicate: tests/unit/test_replicate.c $(CORE) $(REPL_OBJS) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(REPL_OBJS) $(CORE) $(LDLIBS) -lcmocka

# A peer's reported status (clock.o), on what replicate.o needs too.
$(BUILD)/tests/test_clock: tests/unit/test_clock.c $(CORE) $(REPL_OBJS) $(BUILD)/cluster/clock.o | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/cluster/clock.o $(REPL_OBJS) $(CORE) $(LDLIBS) -lcmocka

# test_api_fault and test_peer start an in-process node (node_fixture.h):
# they link every node object but main.o.
$(BUILD)/tests/test_api_fault $(BUILD)/tests/test_peer: $(BUILD)/tests/test_%: tests/unit/test_%.c \
		$(NODE) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(NODE) $(LDLIBS) -lcmocka

# test_conflict DIR1 DIR2: two data dirs that conflict (README, "Conflict
# resolution testing"); built on the node's own storage code.
$(BUILD)/test_conflict: test_conflict/test_conflict.c $(CORE) | $(BUILD)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE) $(LDLIBS)

# ---------------------------------------------------------------------------
# libkvs and kvsctl (README "Client library and kvsctl").  Outside the node's
# layers: src/client/ (the library, public header kvs_client.h) and
# src/kvsctl/ (the tool; it reaches nodes through kvs_client.h only).
#   $(BUILD)/libkvs.so.1 (soname libkvs.so.1) + libkvs.so, libkvs.a
#   $(BUILD)/kvsctl (libkvs linked in statically: no run-time path to find)
#   $(BUILD)/stage/  libkvs installed as `make install` would, with kvs.pc;
#                    examples/ build against it through pkg-config
CLIENT_PKGS  := libcurl libcjson
CLIENT_SO    := 1
CLIENT_VER   := 1.0.0
CLIENT_OBJS  := $(patsubst %,$(BUILD)/client/%.o,client client_kv client_watch client_cluster \
                  json_scan)
CLIENT_FLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
                -fPIC -MMD -MP -Isrc/client \
                $(shell pkg-config --cflags $(CLIENT_PKGS) 2>/dev/null)
CLIENT_LIBS  := $(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null)
KVSCTL_OBJS  := $(patsubst %,$(BUILD)/ctl/%.o,main args table cmd_kv cmd_cluster cmd_watch shell)
KVSCTL_FLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
                -MMD -MP -Isrc/client -Isrc/kvsctl $(shell pkg-config --cflags libcjson libedit 2>/dev/null)
STAGE        := $(abspath $(BUILD))/stage
LIBDIR       ?= $(PREFIX)/lib
INCDIR       ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions

.PHONY: client stage

client: $(BUILD)/libkvs.so $(BUILD)/libkvs.a $(BUILD)/kvsctl $(BUILD)/examples/config_watch \
	$(BUILD)/bench/kvs_client_bench

$(CLIENT_OBJS): $(BUILD)/client/%.o: src/client/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLIENT_FLAGS) -c -o $@ $<

$(KVSCTL_OBJS): $(BUILD)/ctl/%.o: src/kvsctl/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KVSCTL_FLAGS) -c -o $@ $<

# Only kvs_* is exported (src/client/libkvs.map); kc_* stays inside.
$(BUILD)/libkvs.so.$(CLIENT_VER): $(CLIENT_OBJS) src/client/libkvs.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libkvs.so.$(CLIENT_SO) \
		-Wl,--version-script=src/client/libkvs.map -o $@ $(CLIENT_OBJS) $(CLIENT_LIBS)

$(BUILD)/libkvs.so: $(BUILD)/libkvs.so.$(CLIENT_VER)
	ln -sf libkvs.so.$(CLIENT_VER) $(BUILD)/libkvs.so.$(CLIENT_SO)
	ln -sf libkvs.so.$(CLIENT_VER) $@

$(BUILD)/libkvs.a: $(CLIENT_OBJS)
	rm -f $@
	ar rcs $@ $(CLIENT_OBJS)

$(BUILD)/kvsctl: $(KVSCTL_OBJS) $(BUILD)/libkvs.a
	$(CC) $(LDFLAGS) -o $@ $(KVSCTL_OBJS) $(BUILD)/libkvs.a $(CLIENT_LIBS) \
		$(shell pkg-config --libs libedit 2>/dev/null)

# kvs.pc for a given prefix: $(call kvs_pc,PREFIX,LIBDIR,INCDIR)
define kvs_pc
sed -e 's|@PREFIX@|$(1)|' -e 's|@LIBDIR@|$(2)|' -e 's|@INCDIR@|$(3)|' \
	-e 's|@VERSION@|$(CLIENT_VER)|' src/client/kvs.pc.in
endef

# The staged install examples/ build against (what `make install` puts in place).
$(STAGE)/lib/pkgconfig/kvs.pc: $(BUILD)/libkvs.so $(BUILD)/libkvs.a src/client/kvs_client.h src/client/kvs.pc.in
	$(MAKE) --no-print-directory install-lib DESTDIR= PREFIX=$(STAGE) LIBDIR=$(STAGE)/lib INCDIR=$(STAGE)/include

$(BUILD)/examples/config_watch: examples/config_watch.c $(STAGE)/lib/pkgconfig/kvs.pc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -Wall -Wextra -Werror -o $@ $< \
		$$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs kvs) \
		-Wl,-rpath,$(STAGE)/lib

# libkvs get/put per second from one thread (bench/run.sh, BENCH_ONLY=client).
$(BUILD)/bench/kvs_client_bench: bench/client_bench.c $(STAGE)/lib/pkgconfig/kvs.pc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -Wall -Wextra -Werror -o $@ $< \
		$$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs kvs) \
		-Wl,-rpath,$(STAGE)/lib

$(BUILD)/tests/test_client: tests/unit/test_client.c $(BUILD)/libkvs.a | $(BUILD)/tests
	$(CC) $(CFLAGS) $(CLIENT_FLAGS) -o $@ $< $(BUILD)/libkvs.a $(CLIENT_LIBS) -lcmocka

$(BUILD)/tests/test_kvsctl_args: tests/unit/test_kvsctl_args.c $(BUILD)/ctl/args.o | $(BUILD)/tests
	$(CC) $(CFLAGS) $(KVSCTL_FLAGS) -o $@ $< $(BUILD)/ctl/args.o -lcmocka

.PHONY: install-lib install-client uninstall-client

# libkvs alone: .so (with its soname links), .a, header, kvs.pc.
install-lib: $(BUILD)/libkvs.so $(BUILD)/libkvs.a
	install -D -m 0755 $(BUILD)/libkvs.so.$(CLIENT_VER) $(DESTDIR)$(LIBDIR)/libkvs.so.$(CLIENT_VER)
	ln -sf libkvs.so.$(CLIENT_VER) $(DESTDIR)$(LIBDIR)/libkvs.so.$(CLIENT_SO)
	ln -sf libkvs.so.$(CLIENT_VER) $(DESTDIR)$(LIBDIR)/libkvs.so
	install -m 0644 $(BUILD)/libkvs.a $(DESTDIR)$(LIBDIR)/libkvs.a
	install -D -m 0644 src/client/kvs_client.h $(DESTDIR)$(INCDIR)/kvs_client.h
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	$(call kvs_pc,$(PREFIX),$(LIBDIR),$(INCDIR)) > $(DESTDIR)$(LIBDIR)/pkgconfig/kvs.pc

# kvsctl, its man page and bash completion, and libkvs.
install-client: install-lib $(BUILD)/kvsctl
	install -D -m 0755 $(BUILD)/kvsctl $(DESTDIR)$(PREFIX)/bin/kvsctl
	install -D -m 0644 man/kvsctl.1 $(DESTDIR)$(MANDIR)/man1/kvsctl.1
	install -D -m 0644 scripts/kvsctl.bash $(DESTDIR)$(BASHCOMPDIR)/kvsctl

uninstall-client:
	rm -f $(DESTDIR)$(PREFIX)/bin/kvsctl $(DESTDIR)$(MANDIR)/man1/kvsctl.1 \
		$(DESTDIR)$(BASHCOMPDIR)/kvsctl $(DESTDIR)$(INCDIR)/kvs_client.h \
		$(DESTDIR)$(LIBDIR)/libkvs.so.$(CLIENT_VER) $(DESTDIR)$(LIBDIR)/libkvs.so.$(CLIENT_SO) \
		$(DESTDIR)$(LIBDIR)/libkvs.so $(DESTDIR)$(LIBDIR)/libkvs.a $(DESTDIR)$(LIBDIR)/pkgconfig/kvs.pc

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

# lint: static analysis of src/ (cppcheck: warnings, performance, portability),
# then scripts/check_style.py: indentation by brace depth and include direction.
lint:
	cppcheck --quiet --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE \
		--inline-suppr --error-exitcode=1 src
	$(PYTHON) scripts/check_style.py src

run: deps
	$(MAKE) all
	$(BUILD)/kvs $(CONFIG)

test: test-deps
	$(MAKE) all lint unit fuzz-regress integration

# bench: the benchmark suite (bench/run.sh, issue 7); installs wrk and etcd when missing.
# Report on stdout and in bench/results/latest.md.  BENCH_QUICK=1 for a short smoke run.
bench:
	@scripts/deps.sh bench
	$(MAKE) all
	bench/run.sh

# Runs every test binary even after a failure, then names the failed ones.
unit: $(UNIT_BINS)
	@failed=""; for t in $(UNIT_BINS); do echo "== $$t"; $$t 2>&1 || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "unit: FAILED:$$failed"; exit 1; fi

integration: $(BUILD)/kvs client
	KVS_BIN=$(abspath $(BUILD)/kvs) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# install: $(PREFIX)/bin/kvs; the systemd unit, its ExecStart pointed at
# that binary; the default config as an example under $(DOCDIR); kvs(1) in
# $(MANDIR); /etc/kvs/kvs.yaml (data_dir set to the unit's state directory)
# only when no such file exists, so a user's config is never overwritten; and
# the client (install-client: kvsctl, its man page and completion, libkvs).
# uninstall removes the binary, the unit, the example, the man page and the
# client; /etc/kvs/kvs.yaml and the data in /var/lib/kvs stay.  Both honour
# DESTDIR (staged installs).
UNITDIR ?= /lib/systemd/system
DOCDIR  ?= /usr/share/doc/kvs

install: $(BUILD)/kvs install-client
	install -D -m 0755 $(BUILD)/kvs $(DESTDIR)$(PREFIX)/bin/kvs
	install -D -m 0644 $(BUILD)/libssl.so $(DESTDIR)$(PREFIX)/lib/kvs/libssl.so
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)/etc/kvs
	sed 's|^ExecStart=[^ ]*|ExecStart=$(PREFIX)/bin/kvs|' config/kvs.service \
		> $(DESTDIR)$(UNITDIR)/kvs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/kvs.service
	install -m 0644 config/kvs.yaml $(DESTDIR)$(DOCDIR)/kvs.yaml.example
	install -D -m 0644 man/kvs.1 $(DESTDIR)$(MANDIR)/man1/kvs.1
	test -e $(DESTDIR)/etc/kvs/kvs.yaml || { \
		sed 's|^data_dir: .*|data_dir: /var/lib/kvs/data|' config/kvs.yaml \
			> $(DESTDIR)/etc/kvs/kvs.yaml && \
		chmod 0644 $(DESTDIR)/etc/kvs/kvs.yaml; }
	@echo "kvs: installed; then: systemctl daemon-reload && systemctl enable --now kvs"

uninstall: uninstall-client
	rm -f $(DESTDIR)$(PREFIX)/bin/kvs $(DESTDIR)$(UNITDIR)/kvs.service \
		$(DESTDIR)$(DOCDIR)/kvs.yaml.example $(DESTDIR)$(PREFIX)/lib/kvs/libssl.so \
		$(DESTDIR)$(MANDIR)/man1/kvs.1
	rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(PREFIX)/lib/kvs 2>/dev/null || true

clean:
	rm -rf $(BUILD)

# deb: the Debian package $(BUILD)/deb/kvs_<version>_amd64.deb (debian/,
# debhelper), built by dpkg-buildpackage in a copy of the tree (tracked and
# new files, not build output) under $(BUILD)/deb/, so that nothing is
# written outside the tree.  The version is KVS_VERSION (src/base/kvs.h),
# which debian/changelog must match.  Installs debhelper and lintian when
# missing; lintian's errors fail the build.
KVS_VERSION := $(shell sed -n 's/^\#define KVS_VERSION "\(.*\)"/\1/p' src/base/kvs.h)
DEB_DIR     := $(BUILD)/deb

deb:
	@scripts/deps.sh deb
	@head -n 1 debian/changelog | grep -q '^kvs ($(KVS_VERSION))' || { \
		echo "deb: debian/changelog's version is not KVS_VERSION $(KVS_VERSION)"; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/kvs-$(KVS_VERSION)
	git ls-files -co --exclude-standard | grep -v '^debian/kvs/' | \
		tar -cf - --ignore-failed-read -T - | tar -xf - -C $(DEB_DIR)/kvs-$(KVS_VERSION)
	cd $(DEB_DIR)/kvs-$(KVS_VERSION) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error $(DEB_DIR)/kvs_$(KVS_VERSION)_amd64.deb \
		$(DEB_DIR)/libkvs1_$(KVS_VERSION)_amd64.deb $(DEB_DIR)/libkvs-dev_$(KVS_VERSION)_amd64.deb
	@echo "deb: $(DEB_DIR)/kvs_$(KVS_VERSION)_amd64.deb (and libkvs1, libkvs-dev)"

# ---------------------------------------------------------------------------
# Fuzzing and sanitizer builds (tests/fuzz/README.md).
#
# make fuzz          each libFuzzer target for FUZZ_SECONDS (default 30), then
#                    fuzz-regress; new crashes land in build/fuzz/crashes/<target>/
# make fuzz-regress  replays tests/fuzz/corpus/ and tests/fuzz/regressions/ only
# make test-asan     kvs + unit + integration built with ASan+UBSan in build-asan/
# make test-tsan     the same with ThreadSanitizer in build-tsan/
# The sanitizer runs fail on a failed test and also on any sanitizer report in
# a node log (nodes log to files, so a report there fails no test by itself).

FUZZ_CC      ?= clang-14
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 30
FUZZ_ARGS    ?=
FUZZ_SKIP_KNOWN ?=
FUZZ_TARGETS := path json config record wire snapshot scan
FUZZ_PKGS    := libcjson yaml-0.1 uuid libcrypto
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP $(INCLUDES) \
                $(FUZZ_SAN) $(shell pkg-config --cflags $(FUZZ_PKGS) 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs $(FUZZ_PKGS) 2>/dev/null) -pthread -lm
# The modules the parsers need; none of them opens RocksDB, curl or civetweb.
FUZZ_OBJS    := base/kvs base/log data/version data/path data/json data/record data/snapshot base/buf \
                config/config config/config_table config/config_text config/config_check \
                data/wire data/member cluster/members
FUZZ_CORE    := $(patsubst %,$(FUZZ_BUILD)/%.o,$(FUZZ_OBJS))
FUZZ_BINS    := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_ENV     := ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:allocator_may_return_null=1 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 FUZZ_SKIP_KNOWN=$(FUZZ_SKIP_KNOWN)
FUZZ_SHOW_RE := 'ERROR:|runtime error|check failed|fuzz_[a-z]+: [a-z]|SUMMARY| in .* [^ ]*/(src|tests/fuzz)/[^ ]*:[0-9]'

SAN_ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                  -fno-sanitize-recover=all
SAN_TSAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
# ASan/UBSan stop the process at the first report (abort: exit by SIGABRT).
# TSan goes on after a race (so one run lists them all) and exits 66 at the end.
SAN_ASAN_ENV   := KVS_SANITIZER=address ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
                  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                  LSAN_OPTIONS=suppressions=$(abspath tests/fuzz/lsan.supp):print_suppressions=0
SAN_TSAN_ENV   := KVS_SANITIZER=thread TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4 suppressions=$(abspath tests/tsan.supp)"

.PHONY: fuzz fuzz-build fuzz-regress test-asan test-tsan

fuzz-build: $(FUZZ_BINS)

# Static pattern rules: explicit, so make never deletes the objects as intermediates.
$(FUZZ_CORE): $(FUZZ_BUILD)/%.o: src/%.c | $(FUZZ_BUILD)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# fuzz_scan includes libkvs's json_scan.c itself (the client is no module of the node).
$(FUZZ_BUILD)/fuzz_scan: FUZZ_CFLAGS += -Isrc/client
$(FUZZ_BUILD)/fuzz_scan: src/client/json_scan.c src/client/client_int.h

$(FUZZ_BINS): $(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_CORE) | $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CORE) $(FUZZ_LIBS)

$(FUZZ_BUILD):
	mkdir -p $@

# Each target fuzzes into a scratch corpus (build/fuzz/corpus/<t>, kept
# between runs) seeded from tests/fuzz/corpus/<t>; all targets run even if
# one fails, and the run fails if any found something.
fuzz: $(FUZZ_BINS)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes/$$t; \
	  dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
	  log=$(FUZZ_BUILD)/fuzz_$$t.log; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS)s (log $$log)"; \
	  if $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	       -rss_limit_mb=2048 -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t/ $$dict $(FUZZ_ARGS) \
	       $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t >$$log 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_runs|stat::peak_rss_mb)' $$log | tr '\n' ' '; \
	    echo; grep -E '^#[0-9]+.*(DONE|pulse)' $$log | tail -n 1; \
	  else \
	    failed="$$failed $$t"; \
	    echo "!! fuzz_$$t FAILED; input saved in $(FUZZ_BUILD)/crashes/$$t/:"; \
	    grep -v NEW_FUNC $$log | grep -E $(FUZZ_SHOW_RE) | head -n 20; grep -E 'Test unit written' $$log; \
	  fi; \
	done; \
	$(MAKE) --no-print-directory fuzz-regress || failed="$$failed (regressions)"; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: FAILED:$$failed -- see $(FUZZ_BUILD)/fuzz_<target>.log; keep each"; \
	  echo "      reproducer as tests/fuzz/regressions/<target>/<name>"; exit 1; \
	fi

# Replays the committed seeds (one run per target) and then each kept crash
# on its own, so every failing regression is named; a few seconds in all.
# Needs clang-14 (libclang-rt-14-dev).
fuzz-regress: $(FUZZ_BINS)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  seeds=$$(find tests/fuzz/corpus/$$t -type f ! -name '.*' 2>/dev/null | sort); \
	  log=$(FUZZ_BUILD)/regress_$$t.log; \
	  printf '== fuzz_%s: %s seeds ... ' $$t "$$(echo $$seeds | wc -w)"; \
	  if $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$t $$seeds >$$log 2>&1; then echo ok; \
	  else \
	    echo FAILED; failed="$$failed $$t"; grep -E '^Running:' $$log | tail -n 1; \
	    grep -v NEW_FUNC $$log | grep -E $(FUZZ_SHOW_RE) | head -n 20; \
	  fi; \
	  for r in $$(find tests/fuzz/regressions/$$t -type f ! -name '*.md' ! -name '.*' \
	              2>/dev/null | sort); do \
	    if $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$t $$r >$$log 2>&1; then echo "   ok      $$r"; \
	    else \
	      echo "   FAILED  $$r"; failed="$$failed $$r"; \
	      grep -v NEW_FUNC $$log | grep -E $(FUZZ_SHOW_RE) | grep -vE '^SUMMARY|deadly signal' | \
	        head -n 6 | sed 's/^/           /'; \
	    fi; \
	  done; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz-regress: FAILED:$$failed"; exit 1; }

# $(call san_run,BUILD DIR,FLAGS,RUNTIME ENV): builds kvs and the unit tests
# with FLAGS into the dir (via the environment: a command-line CFLAGS would
# replace the Makefile's own flags), runs unit and integration with -k (all
# of them even after a failure), then scans every log under the pytest base
# dir for sanitizer reports (tests/fuzz/sanitizer_report.py lists each kind
# once).  KVS_SANITIZER (address or thread) tells tests which run they are in.
define san_run
	@rm -rf $(1)/pytest; rc=0; \
	env CFLAGS="$(2)" LDFLAGS="$(2)" $(3) $(MAKE) -k --no-print-directory BUILD=$(1) \
	  all unit integration \
	  PYTEST_ARGS="--basetemp=$(abspath $(1))/pytest $(PYTEST_ARGS)" || rc=1; \
	$(PYTHON) tests/fuzz/sanitizer_report.py $(1)/pytest || rc=1; \
	if [ $$rc -ne 0 ]; then echo "$@: FAILED"; exit 1; fi; echo "$@: clean"
endef

test-asan: test-deps
	$(call san_run,build-asan,$(SAN_ASAN_FLAGS),$(SAN_ASAN_ENV))

test-tsan: test-deps
	$(call san_run,build-tsan,$(SAN_TSAN_FLAGS),$(SAN_TSAN_ENV))

-include $(wildcard $(FUZZ_BUILD)/*.d $(FUZZ_BUILD)/*/*.d)

-include $(wildcard $(BUILD)/*.d $(BUILD)/*/*.d $(BUILD)/tests/*.d)
