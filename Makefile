# kvs - plain Makefile.  `make run` and `make test` install missing Debian
# packages first (scripts/deps.sh), then build into build/.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CONFIG  ?= config.yaml
PYTHON  ?= /usr/bin/python3

PKGS    := rocksdb libcjson yaml-0.1 uuid libcurl libsystemd
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcivetweb -pthread -lm

# Every module of the node, in include order (STYLE.md, "Include direction").
CORE_OBJS := kvs log metrics version path json record buf config store wire members
NODE_OBJS := $(CORE_OBJS) notify node peer conflict gossip replicate sync http api_kv \
             api_cluster api_peer
CORE := $(patsubst %,$(BUILD)/%.o,$(CORE_OBJS))
NODE := $(patsubst %,$(BUILD)/%.o,$(NODE_OBJS))

UNIT_TESTS := config path json version record store
UNIT_BINS  := $(patsubst %,$(BUILD)/tests/test_%,$(UNIT_TESTS))

.PHONY: all deps test-deps run test unit integration install uninstall clean

all: $(BUILD)/kvs

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/kvs: $(NODE) $(BUILD)/main.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(CORE) | $(BUILD)/tests
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(CORE) $(LDLIBS) -lcmocka

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

run: deps
	$(MAKE) all
	$(BUILD)/kvs $(CONFIG)

test: test-deps
	$(MAKE) all unit integration

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t 2>&1; done

integration: $(BUILD)/kvs
	KVS_BIN=$(abspath $(BUILD)/kvs) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# install: $(PREFIX)/bin/kvs; the systemd unit, its ExecStart pointed at
# that binary; the default config as an example under $(DOCDIR); and
# /etc/kvs/kvs.yaml (data_dir set to the unit's state directory) only when
# no such file exists, so a user's config is never overwritten.
# uninstall removes the binary, the unit and the example; /etc/kvs/kvs.yaml
# and the data in /var/lib/kvs stay.  Both honour DESTDIR (staged installs).
UNITDIR ?= /lib/systemd/system
DOCDIR  ?= /usr/share/doc/kvs

install: $(BUILD)/kvs
	install -D -m 0755 $(BUILD)/kvs $(DESTDIR)$(PREFIX)/bin/kvs
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)/etc/kvs
	sed 's|^ExecStart=[^ ]*|ExecStart=$(PREFIX)/bin/kvs|' config/kvs.service \
		> $(DESTDIR)$(UNITDIR)/kvs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/kvs.service
	install -m 0644 config/kvs.yaml $(DESTDIR)$(DOCDIR)/kvs.yaml.example
	test -e $(DESTDIR)/etc/kvs/kvs.yaml || { \
		sed 's|^data_dir: .*|data_dir: /var/lib/kvs/data|' config/kvs.yaml \
			> $(DESTDIR)/etc/kvs/kvs.yaml && \
		chmod 0644 $(DESTDIR)/etc/kvs/kvs.yaml; }
	@echo "kvs: installed; then: systemctl daemon-reload && systemctl enable --now kvs"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/kvs $(DESTDIR)$(UNITDIR)/kvs.service \
		$(DESTDIR)$(DOCDIR)/kvs.yaml.example
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
