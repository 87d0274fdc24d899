# Entry points: `make demo` and `make test` (each does the set-up it needs).
# A clean CI clone gains nothing from incremental state, which is as large as the build itself.
ifeq ($(CI),true)
export CARGO_INCREMENTAL := 0
endif

.PHONY: setup demo test bench soak proptest clean header docs install c-examples

setup:
	./scripts/setup.sh

demo: setup
	./scripts/demo.sh

test: setup
	./scripts/test.sh

bench:
	./bench/run.sh

# The chaos soak at full length: a million requests over HTTP/1.1, HTTP/2 and HTTP/3 against the
# test server's /chaos (make test runs a 60 s version). SOAK_REQUESTS to change the count.
SOAK_REQUESTS ?= 1000000
soak:
	QUIVER_SOAK_REQUESTS=$(SOAK_REQUESTS) cargo test --release -p quiver-core --test soak -- --nocapture

# The property tests with many more cases than make test runs (PROPTEST_CASES).
PROPTEST_CASES ?= 100000
proptest:
	PROPTEST_CASES=$(PROPTEST_CASES) cargo test --release -p quiver-core --test properties
	PROPTEST_CASES=$(PROPTEST_CASES) cargo test --release -p quiver-core --lib -- any_

clean:
	cargo clean

# Regenerates the checked-in C header from quiver-ffi (cbindgen); tests fail while it is stale.
header:
	QUIVER_UPDATE_HEADER=1 cargo build -p quiver-ffi

# Regenerates docs/options.md from the options table in quiver-core; tests fail while it is stale.
docs:
	QUIVER_UPDATE_DOCS=1 cargo test -q -p quiver-core --test docs

# `make install PREFIX=/usr/local` (also DESTDIR, LIBDIR, INCLUDEDIR; PROFILE=dev installs the
# debug build): libquiver.so with its SONAME links, libquiver.a, quiver.h and quiver.pc.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PROFILE ?= release
CARGO_TARGET_DIR ?= $(CURDIR)/target
QUIVER_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
QUIVER_ABI := $(shell sed -n 's/^const ABI_VERSION: u32 = \([0-9]*\);/\1/p' quiver-ffi/build.rs)
PROFILE_DIR := $(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
LIB_BUILT := $(CARGO_TARGET_DIR)/$(PROFILE_DIR)

install:
	cargo build --locked --profile $(PROFILE) -p quiver-ffi
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(LIB_BUILT)/libquiver.so $(DESTDIR)$(LIBDIR)/libquiver.so.$(QUIVER_VERSION)
	ln -sf libquiver.so.$(QUIVER_VERSION) $(DESTDIR)$(LIBDIR)/libquiver.so.$(QUIVER_ABI)
	ln -sf libquiver.so.$(QUIVER_ABI) $(DESTDIR)$(LIBDIR)/libquiver.so
	install -m 0644 $(LIB_BUILT)/libquiver.a $(DESTDIR)$(LIBDIR)/libquiver.a
	install -m 0644 include/quiver.h $(DESTDIR)$(INCLUDEDIR)/quiver.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(QUIVER_VERSION)|' quiver-ffi/quiver.pc.in \
		> $(DESTDIR)$(LIBDIR)/pkgconfig/quiver.pc

# `make c-examples`: builds the C examples (quiver-ffi/examples/*.c) with pkg-config, into
# EXAMPLES_OUT. By default against the in-tree library, installed first into
# EXAMPLES_OUT/prefix (EXAMPLES_PROFILE=dev, the debug build; release for the optimised one);
# `make c-examples QUIVER_PC_PATH=/usr/local/lib/pkgconfig` builds against an installed one.
EXAMPLES := get stream datagram epoll udp_tunnel
EXAMPLES_OUT ?= $(CARGO_TARGET_DIR)/c-examples
EXAMPLES_PROFILE ?= dev
EXAMPLE_CFLAGS ?= -std=c11 -Wall -Wextra -Werror -O2 -g -pthread
QUIVER_PC_PATH ?=

c-examples:
	@set -e; pc="$(QUIVER_PC_PATH)"; \
	if [ -z "$$pc" ]; then \
		$(MAKE) --no-print-directory -s install PREFIX="$(EXAMPLES_OUT)/prefix" \
			PROFILE=$(EXAMPLES_PROFILE) > /dev/null; \
		pc="$(EXAMPLES_OUT)/prefix/lib/pkgconfig"; \
	fi; \
	libdir="$$(PKG_CONFIG_PATH="$$pc" pkg-config --variable=libdir quiver)"; \
	flags="$$(PKG_CONFIG_PATH="$$pc" pkg-config --cflags --libs quiver)"; \
	mkdir -p "$(EXAMPLES_OUT)"; \
	for e in $(EXAMPLES); do \
		echo "  CC $(EXAMPLES_OUT)/$$e"; \
		$(CC) $(EXAMPLE_CFLAGS) quiver-ffi/examples/$$e.c -o "$(EXAMPLES_OUT)/$$e" $$flags \
			-Wl,-rpath,"$$libdir"; \
	done
