# SPDX-License-Identifier: MIT
# ferry - build, test, run.
#
#   make            release build into build/
#   make demo       install deps, build, start ferryd + the fib worker
#                   (WORKERS="c python node php": one per client)
#   make test       sanitizer build into build/asan/, run every test
#   make test-cluster  the cluster suite alone: ferryd nodes in network
#                   namespaces with etcd (root, iproute2; docs/cluster-tests.md)
#   make fuzz       each libFuzzer target, time-boxed (FUZZ_SECONDS), or
#                   FUZZ_RUNS executions each (tests/fuzz/run.sh)
#   make bench      the bench/ scenarios, rows for docs/benchmarks.md
#
# Sources are picked up by folder, so adding a file needs no edit here.

BUILD    ?= build
SANITIZE ?= 0

CC       ?= cc
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
INC      := -Iinclude -Isrc
DEPFLAGS := -MMD -MP

ifeq ($(SANITIZE),1)
OPT      := -O1 -g -fno-omit-frame-pointer \
            -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -DFERRY_TESTING
LDSAN    := -fsanitize=address,undefined
else
OPT      := -O2 -g -DNDEBUG
LDSAN    :=
# LTO=1: link-time optimisation across files (release only; see
# docs/benchmarks.md for its measured effect).
ifeq ($(LTO),1)
OPT      += -flto=auto
LDSAN    += -flto=auto
AR       := gcc-ar
endif
endif

CFLAGS   += $(CSTD) $(WARN) $(OPT) $(INC) $(DEPFLAGS)
LDFLAGS  += $(LDSAN)

UV_LIBS      := $(shell pkg-config --libs libuv 2>/dev/null || echo -luv)
INIH_LIBS    := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
JANSSON_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
CMOCKA_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
H2O_LIBS     := $(shell pkg-config --libs libh2o 2>/dev/null || echo -lh2o)
SYSTEMD_LIBS := $(shell pkg-config --libs libsystemd 2>/dev/null || \
                  echo -lsystemd)
LMDB_LIBS    := $(shell pkg-config --libs lmdb 2>/dev/null || echo -llmdb)
CURL_LIBS    := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
XXHASH_LIBS  := $(shell pkg-config --libs libxxhash 2>/dev/null || \
                  echo -lxxhash)

# libferry: the codec, the pieces of core it needs (none of them libuv),
# the client and worker. ferryd links these from libferry too.
LIB_CORE   := src/core/buf.c src/core/addr.c src/core/map.c src/core/heap.c \
              src/core/pool.c
TOPIC_LIB  := src/topic/topic_codec.c src/topic/trie.c
LIB_SRC    := $(wildcard src/proto/*.c) $(LIB_CORE) $(wildcard src/lib/*.c) \
              src/queue/queue_codec.c $(TOPIC_LIB)
# ferryd: the rest of core (libuv), the broker, main.
CORE_SRC   := $(filter-out $(LIB_CORE),$(wildcard src/core/*.c))
BROKER_SRC := $(wildcard src/broker/*.c)
# The HTTP side of ferryd (h2o): server, gateway, admin, dashboard.
HTTP_SRC   := $(wildcard src/http/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
# The in-memory cache (pure C, no libuv): services/cache and the bench.
CACHE_SRC  := $(wildcard src/cache/*.c)
# The durable store (LMDB and its writer thread).
STORE_SRC  := $(wildcard src/store/*.c)
# The services ferryd serves itself on the store (ferry.cache, ferry.kv,
# ferry.id, the memcached face): servants/servants.h.
SERVANTS_SRC := $(wildcard src/servants/*.c)
# Publish/subscribe (ferry.topic): the subject matcher, the rings and the
# payload codec are pure C; the engine is a backend on the loop. The codec
# and the trie whose subject checks it uses are in libferry (TOPIC_LIB).
TOPIC_SRC  := $(filter-out $(TOPIC_LIB),$(wildcard src/topic/*.c))
# Durable queues on the store (ferry.queue); the codec is in libferry.
QUEUE_SRC  := $(filter-out src/queue/queue_codec.c,$(wildcard src/queue/*.c))
# The cluster (docs/cluster.md): etcd through libcurl on the loop,
# membership, the vbucket map, peer links.
CLUSTER_SRC := $(wildcard src/cluster/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ    := $(call obj,$(LIB_SRC))
CORE_OBJ   := $(call obj,$(CORE_SRC))
BROKER_OBJ := $(call obj,$(BROKER_SRC))
HTTP_OBJ   := $(call obj,$(HTTP_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
CACHE_OBJ  := $(call obj,$(CACHE_SRC))
STORE_OBJ  := $(call obj,$(STORE_SRC))
SERVANTS_OBJ := $(call obj,$(SERVANTS_SRC))
TOPIC_OBJ  := $(call obj,$(TOPIC_SRC))
QUEUE_OBJ  := $(call obj,$(QUEUE_SRC))
CLUSTER_OBJ := $(call obj,$(CLUSTER_SRC))

# The dashboard: web/ bundled by esbuild (npm) into $(BUILD)/web/, then
# embedded in ferryd as byte arrays by scripts/embed_assets.py.
WEB_SRC    := web/index.html web/style.css $(wildcard web/src/*.js)
WEB_DEPS   := web/node_modules/.package-lock.json
WEB_OUT    := $(BUILD)/web
WEB_FILES  := $(WEB_OUT)/index.html $(WEB_OUT)/dashboard.js \
              $(WEB_OUT)/dashboard.css
DASH_GEN   := $(BUILD)/gen/dashboard_assets.c
DASH_OBJ   := $(BUILD)/obj/gen/dashboard_assets.o
HTTP_OBJ   += $(DASH_OBJ)

LIBFERRY   := $(BUILD)/libferry.a
# The shared library: the same sources built position-independent, only
# the ferry_* API exported (src/lib/libferry.map), soname libferry.so.0.
VERSION    := $(shell sed -n 's/^\#define FERRYD_VERSION "\(.*\)"/\1/p' \
                src/core/config.h)
SONAME     := libferry.so.0
LIBFERRY_SO := $(BUILD)/libferry.so.$(VERSION).0
PIC_OBJ    := $(patsubst %.c,$(BUILD)/pic/%.o,$(LIB_SRC))

BINS := $(BUILD)/ferryd $(BUILD)/ferry $(BUILD)/fib_worker \
        $(BUILD)/echo_worker $(BUILD)/hello_worker $(BUILD)/bench_echo_server \
        $(BUILD)/bench_cache_shift $(BUILD)/bench_memcache_load \
        $(BUILD)/bench_queue_load $(BUILD)/bench_vbmap_sim \
        $(BUILD)/bench_pubsub_load

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TWORK_SRC  := $(wildcard tests/workers/*.c)
TWORK_BINS := $(patsubst tests/workers/%.c,$(BUILD)/tests/%,$(TWORK_SRC))

# The conformance driver of libferry (tests/conformance/DRIVER.md).
CONF_DRIVER := $(BUILD)/tests/ferry-conformance-driver

.PHONY: all deps demo test test-unit test-integration test-fault \
        test-cluster test-vectors test-browser fuzz bench format lint clean \
        install uninstall deb tests-build

all: $(BINS) $(LIBFERRY_SO)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBFERRY): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(LIBFERRY_SO): $(PIC_OBJ) src/lib/libferry.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) \
	    -Wl,--version-script=src/lib/libferry.map -o $@ $(PIC_OBJ)

$(BUILD)/ferryd: $(call obj,src/ferryd.c) $(HTTP_OBJ) $(BROKER_OBJ) $(CORE_OBJ) \
                 $(SERVANTS_OBJ) $(CACHE_OBJ) $(STORE_OBJ) $(TOPIC_OBJ) $(QUEUE_OBJ) \
                 $(CLUSTER_OBJ) $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(H2O_LIBS) $(UV_LIBS) $(INIH_LIBS) \
	    $(JANSSON_LIBS) $(SYSTEMD_LIBS) $(LMDB_LIBS) $(CURL_LIBS) \
	    $(XXHASH_LIBS) -lm

# The ferry command also uses core's histogram (ferry bench) and default
# paths, and ferry cache / kv / id the payload codecs, none in libferry
# (pub / sub take the topic codec from libferry).
$(BUILD)/ferry: $(CLI_OBJ) $(call obj,src/core/hist.c src/core/paths.c) \
              $(call obj,src/servants/cache_codec.c) \
              $(call obj,src/servants/kv_codec.c) \
              $(call obj,src/servants/id_codec.c) \
              $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS) -lm

$(BUILD)/fib_worker: $(call obj,$(wildcard examples/fib/*.c)) $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^ -lgmp $(JANSSON_LIBS)

$(BUILD)/echo_worker: $(call obj,examples/echo/echo_worker.c) $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/hello_worker: $(call obj,examples/hello/hello_worker.c) $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/bench_echo_server: $(call obj,bench/echo_server.c) $(LIBFERRY)
	$(CC) $(LDFLAGS) -o $@ $^

# The cache under shifting value sizes (bench/cache_shift.sh runs it).
# The text-protocol load of docs/benchmarks.md (memcached vs the face).
$(BUILD)/bench_memcache_load: $(call obj,bench/memcache_load.c)
	$(CC) $(LDFLAGS) -o $@ $^

# The queue benchmark's peers, Redis and beanstalkd (bench/queue_peers.sh),
# with core's histogram (that of ferry bench).
$(BUILD)/bench_queue_load: $(call obj,bench/queue_load.c src/core/hist.c)
	$(CC) $(LDFLAGS) -o $@ $^

# The vbucket map's simulation (docs/benchmarks.md, "Cluster: the vbucket
# map"): src/cluster/vbmap.c alone.
$(BUILD)/bench_vbmap_sim: $(call obj,bench/vbmap_sim.c src/cluster/vbmap.c)
	$(CC) $(LDFLAGS) -o $@ $^ $(XXHASH_LIBS)

# The fan-out benchmark's peer, nats-server (bench/pubsub_peers.sh).
$(BUILD)/bench_pubsub_load: $(call obj,bench/pubsub_load.c src/core/hist.c)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/bench_cache_shift: $(call obj,bench/cache_shift.c) $(CACHE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ -lm

# The bare-h2o baseline of bench/http_run.sh: same h2o, same libuv, no broker.
$(BUILD)/bench_h2o_hello: $(call obj,bench/h2o_hello.c)
	$(CC) $(LDFLAGS) -o $@ $^ -lh2o -luv

# Unit tests link the module under test from core/proto/broker objects.
$(BUILD)/tests/test_%: $(call obj,tests/unit/test_%.c) $(CORE_OBJ) \
                       $(filter-out %/src/ferryd.o,$(BROKER_OBJ)) \
                       $(HTTP_OBJ) $(SERVANTS_OBJ) $(CACHE_OBJ) $(STORE_OBJ) \
                       $(TOPIC_OBJ) $(QUEUE_OBJ) $(CLUSTER_OBJ) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(H2O_LIBS) $(UV_LIBS) \
	    $(INIH_LIBS) $(JANSSON_LIBS) $(SYSTEMD_LIBS) $(LMDB_LIBS) \
	    $(CURL_LIBS) $(XXHASH_LIBS) -lm

# The trie alone, its allocations (the child maps' included) wrapped by
# the test, which fails each in turn to check that a failed add leaves
# the trie as it was.
$(BUILD)/tests/test_topic_trie: $(call obj,tests/unit/test_topic_trie.c \
                                src/topic/trie.c) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
	    -o $@ $^ $(CMOCKA_LIBS)

# ferry.topic's store and rings alone, malloc wrapped so the test can
# fail a ring's growth.
$(BUILD)/tests/test_topic_ring: $(call obj,tests/unit/test_topic_ring.c \
                                src/topic/ring.c) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -Wl,--wrap=malloc -o $@ $^ $(CMOCKA_LIBS)

# The cache's payload codec alone (it needs nothing of the daemon).
$(BUILD)/tests/test_cache_codec: $(call obj,tests/unit/test_cache_codec.c \
                                 src/servants/cache_codec.c) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS)

# ferry.cache's backend against the stand-in broker and timer of the
# test itself: no broker or loop objects linked.
$(BUILD)/tests/test_cache_service: $(call obj,tests/unit/test_cache_service.c \
                                   src/servants/cache_service.c \
                                   src/servants/cache_codec.c \
                                   src/core/config.c src/core/log.c \
                                   src/core/paths.c src/core/timer.c) \
                                   $(CACHE_OBJ) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(UV_LIBS) $(INIH_LIBS) \
	    $(JANSSON_LIBS) -lm

# tests/fault/store_writer: the store driven from outside ferryd.
FAULT_BINS := $(BUILD)/tests/store_writer
$(BUILD)/tests/store_writer: $(call obj,tests/fault/store_writer.c) \
                             $(STORE_OBJ) $(CORE_OBJ) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(UV_LIBS) $(INIH_LIBS) $(SYSTEMD_LIBS) \
	    $(LMDB_LIBS) $(XXHASH_LIBS) -lm

# Test workers (misbehaving on purpose) use libferry only.
$(BUILD)/tests/%: $(call obj,tests/workers/%.c) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(CONF_DRIVER): $(call obj,tests/conformance/drivers/driver.c) $(LIBFERRY)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS)

# npm ci only when node_modules is missing or older than the lock; under
# flock, and checked again inside it, so builds into several BUILD folders
# at once do not install over each other.
$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && flock .npm-ci.lock sh -c '[ node_modules/.package-lock.json \
	    -nt package-lock.json ] && [ node_modules/.package-lock.json \
	    -nt package.json ] || npm ci --no-audit --no-fund'
	@touch $@

$(WEB_OUT)/dashboard.js $(WEB_OUT)/dashboard.css &: $(WEB_SRC) $(WEB_DEPS)
	@mkdir -p $(WEB_OUT)
	web/node_modules/.bin/esbuild web/src/main.js --bundle --minify \
	    --target=es2020 --log-level=warning --outfile=$(WEB_OUT)/dashboard.js

$(WEB_OUT)/index.html: web/index.html
	@mkdir -p $(WEB_OUT)
	cp $< $@

$(DASH_GEN): $(WEB_FILES) scripts/embed_assets.py
	python3 scripts/embed_assets.py $@ $(WEB_FILES)

$(DASH_OBJ): $(DASH_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

tests-build: all $(UNIT_BINS) $(TWORK_BINS) $(FAULT_BINS) $(CONF_DRIVER)

deps:
	bash scripts/deps.sh

demo: deps
	$(MAKE) all
	WORKERS="$(WORKERS)" bash scripts/demo.sh $(BUILD)

# The test build: sanitizers on, its own build folder.
test: deps
	$(MAKE) BUILD=build/asan SANITIZE=1 tests-build
	bash tests/run.sh build/asan all

test-unit test-integration test-fault test-cluster test-vectors test-browser test-clients test-conformance: deps
	$(MAKE) BUILD=build/asan SANITIZE=1 tests-build
	bash tests/run.sh build/asan $(patsubst test-%,%,$@)

FUZZ_SECONDS ?= 60
fuzz: deps
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: all
	bash bench/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# Installing: make install [PREFIX=/usr/local] [DESTDIR=...]. ferryd goes
# to sbin (a daemon, ferryd(8)), the example workers to bin as
# ferry-<name>-worker, the unit to lib/systemd/system with its paths.
PREFIX     ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
BINDIR     := $(PREFIX)/bin
SBINDIR    := $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCDIR     := $(PREFIX)/include
MANDIR     := $(PREFIX)/share/man
DOCDIR     := $(PREFIX)/share/doc/ferry
UNITDIR    ?= $(PREFIX)/lib/systemd/system
PCDIR      := $(LIBDIR)/pkgconfig

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/ferry
	install -m 755 $(BUILD)/ferryd $(DESTDIR)$(SBINDIR)
	install -m 755 $(BUILD)/ferry $(DESTDIR)$(BINDIR)
	install -m 755 $(BUILD)/fib_worker $(DESTDIR)$(BINDIR)/ferry-fib-worker
	install -m 755 $(BUILD)/echo_worker $(DESTDIR)$(BINDIR)/ferry-echo-worker
	install -m 755 $(BUILD)/hello_worker \
	    $(DESTDIR)$(BINDIR)/ferry-hello-worker
	install -m 644 $(LIBFERRY) $(DESTDIR)$(LIBDIR)
	install -m 755 $(LIBFERRY_SO) $(DESTDIR)$(LIBDIR)
	ln -sf $(notdir $(LIBFERRY_SO)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libferry.so
	install -m 644 include/ferry.h include/ferry_servants.h $(DESTDIR)$(INCDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    packaging/ferry.pc.in > $(DESTDIR)$(PCDIR)/ferry.pc
	install -m 644 man/ferry.1 $(DESTDIR)$(MANDIR)/man1
	install -m 644 man/ferryd.conf.5 $(DESTDIR)$(MANDIR)/man5
	install -m 644 man/ferryd.8 $(DESTDIR)$(MANDIR)/man8
	sed -e 's|/usr/sbin/ferryd|$(SBINDIR)/ferryd|' \
	    -e 's|/etc/ferry/|$(SYSCONFDIR)/ferry/|' packaging/ferryd.service \
	    > $(DESTDIR)$(UNITDIR)/ferryd.service
	install -m 644 packaging/ferryd.conf $(DESTDIR)$(DOCDIR)/ferryd.conf.example
	install -m 644 README.md LICENSE $(DESTDIR)$(DOCDIR)
	@# A config the user changed is never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/ferry/ferryd.conf ] || \
	    install -m 644 packaging/ferryd.conf \
	        $(DESTDIR)$(SYSCONFDIR)/ferry/ferryd.conf

# Removes what install put there, but the config file (it may hold edits).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ferryd $(DESTDIR)$(BINDIR)/ferry \
	    $(DESTDIR)$(BINDIR)/ferry-fib-worker \
	    $(DESTDIR)$(BINDIR)/ferry-echo-worker \
	    $(DESTDIR)$(BINDIR)/ferry-hello-worker \
	    $(DESTDIR)$(LIBDIR)/libferry.a $(DESTDIR)$(LIBDIR)/libferry.so \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/$(notdir $(LIBFERRY_SO)) \
	    $(DESTDIR)$(INCDIR)/ferry.h $(DESTDIR)$(INCDIR)/ferry_servants.h $(DESTDIR)$(PCDIR)/ferry.pc \
	    $(DESTDIR)$(MANDIR)/man1/ferry.1 \
	    $(DESTDIR)$(MANDIR)/man5/ferryd.conf.5 \
	    $(DESTDIR)$(MANDIR)/man8/ferryd.8 \
	    $(DESTDIR)$(UNITDIR)/ferryd.service
	rm -rf $(DESTDIR)$(DOCDIR)

# The Debian package, built from this tree by dpkg-buildpackage (debian/).
deb:
	dpkg-buildpackage -us -uc -b
	mkdir -p $(BUILD)
	mv ../ferry_$(VERSION)_*.deb ../ferry-dbgsym_$(VERSION)_*.deb \
	    ../ferry_$(VERSION)_*.buildinfo \
	    ../ferry_$(VERSION)_*.changes $(BUILD)/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/pic -name '*.d' 2>/dev/null)
