# agentkit.h -- make test | make check | make bench | make fuzz | make demo
# Tests link against one object holding the implementation (build/ak.o); BUILD=... and
# CFLAGS=... make the sanitizer builds that `make check` runs.

CC      ?= cc
CFLAGS  ?= -O2 -g
BUILD   ?= build
STD     ?= -std=c99
WARN    := -Wall -Wextra -Werror -pedantic
# Library options every test build uses.
AKDEFS  ?= -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS
LDLIBS  ?= -lm -lmbedtls -lmbedx509 -lmbedcrypto
# Tests and tools are hosted POSIX programs; the library itself needs none of this.
TFLAGS  := -D_DEFAULT_SOURCE -Wno-unknown-warning-option -Wno-format-truncation

SRC      := $(wildcard src/*)
TESTS    := $(patsubst tests/%.c,$(BUILD)/%,$(wildcard tests/test_*.c))
# Code tests and akdriver share (the interop agents).
SUPPORT  := tests/interop_agents.c
DRV_SRC  := tests/akdriver.c $(wildcard tests/drv_*.c)

.PHONY: all test check bench fuzz demo clean
all: agentkit.h $(BUILD)/akdriver $(TESTS) $(BUILD)/remote_scenarios

agentkit.h: amalgamate src/manifest $(SRC) LICENSE
	./amalgamate

$(BUILD)/ak.o: agentkit.h tests/ak_impl.c
	@mkdir -p $(BUILD)
	$(CC) $(STD) $(WARN) $(CFLAGS) $(AKDEFS) -c tests/ak_impl.c -o $@

$(BUILD)/support.o: $(SUPPORT) tests/interop_agents.h agentkit.h
	$(CC) $(STD) $(WARN) $(TFLAGS) $(CFLAGS) $(AKDEFS) -c $(SUPPORT) -o $@

$(BUILD)/test_%: tests/test_%.c tests/test.h tests/test_dirs.h $(BUILD)/ak.o $(BUILD)/support.o
	$(CC) $(STD) $(WARN) $(TFLAGS) $(CFLAGS) $(AKDEFS) $< $(BUILD)/ak.o $(BUILD)/support.o -o $@ $(LDLIBS)

# The remote client's interop scenarios, run by tests/suite_interop.sh against both servers.
$(BUILD)/remote_scenarios: tests/remote_scenarios.c $(BUILD)/ak.o
	$(CC) $(STD) $(WARN) $(TFLAGS) $(CFLAGS) $(AKDEFS) $< $(BUILD)/ak.o -o $@ $(LDLIBS)

$(BUILD)/akdriver: $(DRV_SRC) tests/akdriver.h $(BUILD)/ak.o $(BUILD)/support.o
	$(CC) $(STD) $(WARN) $(TFLAGS) $(CFLAGS) $(AKDEFS) $(DRV_SRC) $(BUILD)/ak.o $(BUILD)/support.o -o $@ $(LDLIBS)

test: all
	@sh tests/run.sh $(BUILD)

check:
	@sh tests/check.sh

bench:
	@sh bench/run.sh

fuzz:
	@sh fuzz/run.sh $${FUZZ_SECONDS:-30}

# The embedded size and RAM table for the README: Cortex-M4 and RISC-V builds of
# tests/embedded, run on QEMU (tests/check_embedded.sh, also a `make check` step).
.PHONY: size
size: agentkit.h
	@sh tests/check_embedded.sh

# The five-minute tour (examples/demo.c): offline on the scripted model, or against the
# provider the environment names. Sessions go to $(BUILD)/demo-sessions.
demo: agentkit.h
	@mkdir -p $(BUILD)
	$(CC) $(STD) $(WARN) $(CFLAGS) $(AKDEFS) -I. examples/demo.c -o $(BUILD)/demo $(LDLIBS)
	@rm -rf $(BUILD)/demo-sessions
	@$(BUILD)/demo $(BUILD)/demo-sessions

clean:
	rm -rf build
