# SPDX-License-Identifier: MIT
# Builds every imgw binary and test into $(BUILD). `make V=1` shows commands;
# `make SANITIZE=1` builds with AddressSanitizer and UBSan into build-san/.

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-san
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SAN_FLAGS :=
endif

CC ?= gcc
PKGS := libevent libprotobuf-c sqlite3 jansson libcrypto inih liburing
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	  -D_GNU_SOURCE $(SAN_FLAGS) -Ilib -I$(BUILD)/gen \
	  $(shell pkg-config --cflags $(PKGS))
LDFLAGS += $(SAN_FLAGS)
# Debian's libwslay-dev ships no pkg-config file.
LDLIBS := $(shell pkg-config --libs $(PKGS)) -lwslay -lm
TEST_LDLIBS := $(LDLIBS) $(shell pkg-config --libs cmocka)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
# Keep objects of tools and tests, so a second `make` has nothing to do.
.SECONDARY:
.PHONY: all deps test test-unit test-integ test-san demo clean

GEN := $(BUILD)/gen/imgw.pb-c.c $(BUILD)/gen/imgw.pb-c.h
LIB_SRCS := $(wildcard lib/*.c)
GW_SRCS := $(filter-out userspace/main.c,$(wildcard userspace/*.c))
BIZ_SRCS := $(filter-out bizsvr/main.c,$(wildcard bizsvr/*.c))
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(wildcard tools/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integ/%.c,$(BUILD)/tests/integ/%,$(wildcard tests/integ/test_*.c))
INTEG_HELPERS := $(filter-out tests/integ/test_%.c,$(wildcard tests/integ/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# BPF programs: bpf/*.bpf.c -> $(BUILD)/bpf/*.bpf.o -> skeleton
# $(BUILD)/gen/*.skel.h, which userspace/, tools/ and tests/ include. Built
# against the uapi headers only: no vmlinux BTF on the target machines.
BPF_CLANG ?= clang
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/gen/%.skel.h,$(BPF_SRCS))
BPF_CFLAGS := -target bpf -O2 -g -Wall -Wextra -Werror -Ibpf \
	      -I/usr/include/$(shell $(CC) -dumpmachine)
CFLAGS += -Ibpf
LDLIBS += $(shell pkg-config --libs libbpf)
TEST_LDLIBS += $(shell pkg-config --libs libbpf libxdp)
LIB_OBJS := $(call obj,$(LIB_SRCS)) $(BUILD)/obj/gen/imgw.pb-c.o
GW_OBJS := $(call obj,$(GW_SRCS))
BIZ_OBJS := $(call obj,$(BIZ_SRCS))

all: $(BUILD)/imgw $(BUILD)/bizsvr $(TOOLS) $(UNIT_TESTS) $(INTEG_TESTS)

deps:
	./scripts/deps.sh

all: $(BPF_OBJS) $(BPF_SKELS)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	$(call msg,BPF,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)bpftool gen skeleton $< name $* > $@

# Skeletons must exist before the first compile; later edits are tracked
# through the -MMD dependency files.
$(call obj,$(wildcard userspace/*.c tools/*.c tests/unit/*.c)): | $(BPF_SKELS)

$(BUILD)/imgw-loader: LDLIBS += $(shell pkg-config --libs libxdp)

$(BUILD)/gen/imgw.pb-c.c $(BUILD)/gen/imgw.pb-c.h &: proto/imgw.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(BUILD)/gen
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(GEN)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libimgw.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libgw.a: $(GW_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libbiz.a: $(BIZ_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/imgw: $(BUILD)/obj/userspace/main.o $(BUILD)/libgw.a $(BUILD)/libimgw.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bizsvr: $(BUILD)/obj/bizsvr/main.o $(BUILD)/libbiz.a $(BUILD)/libimgw.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(BUILD)/libimgw.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libgw.a $(BUILD)/libbiz.a $(BUILD)/libimgw.a
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LDLIBS)

$(BUILD)/tests/integ/test_%: $(BUILD)/obj/tests/integ/test_%.o $(call obj,$(INTEG_HELPERS)) $(BUILD)/libimgw.a
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LDLIBS)

test-unit: all
	./tests/run.sh $(BUILD) unit

test-integ: all
	./tests/run.sh $(BUILD) integ

# The full suite: dependencies, a normal build and run, then the same tests
# under AddressSanitizer and UBSan.
test: deps
	$(MAKE) all
	./tests/run.sh build all
	$(MAKE) SANITIZE=1 all
	./tests/run.sh build-san all

demo: deps
	$(MAKE) all
	./scripts/demo.sh build

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The benchmark drives the kernel path directly: link userspace/kpath.c in.
$(BUILD)/imgw-kpath-bench: $(BUILD)/obj/tools/imgw-kpath-bench.o $(BUILD)/obj/userspace/kpath.o $(BUILD)/libimgw.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The peer benchmark subscribes through the peers' own client libraries.
$(BUILD)/bench-peer: LDLIBS += $(shell pkg-config --libs hiredis libmosquitto)
