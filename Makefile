# SPDX-License-Identifier: GPL-2.0
#
# Top-level targets. The module itself is built by kbuild from ./Kbuild.
#
#   make [all]         cbm.ko, userspace/ and selftests/
#   make check         every test: host suites, then the selftests in a QEMU
#                      VM on Debian's stock kernel, then on the debug kernel;
#                      T='entry...' runs only the selected run_list entries
#   make check-host    only the host suites
#   make check-stock   only the selftests on the stock kernel
#   make check-debug   only the selftests on the debug kernel
#   make debug-kernel  build (once) the KASAN/lockdep/kmemleak/UBSAN/KUnit
#                      guest kernel from linux-source-6.1
#   make debug-modules cbm.ko for the debug kernel, in build/debug-mod/
#   make demo          the userspace demo in the VM
#   make bench         the benchmarks in the VM: timed on two CPUs, then
#                      deterministic (-icount) on one; BENCH_ARGS adds
#                      cbm-bench options, BENCH_MODES picks timed/icount
#   make vm-shell      an interactive shell in the VM with cbm.ko loaded
#   make vm-shell-debug the same on the debug kernel
#   make checkpatch    checkpatch.pl --strict over the module and the uapi
#                      header
#   make install       libcbm's headers, libraries and libcbm.pc, and
#                      cbmctl, under DESTDIR and PREFIX (default
#                      /usr/local; see userspace/Makefile for LIBDIR,
#                      INCLUDEDIR and BINDIR)
#   make deps          install the Debian packages all this needs
#   make fetch         cache the guest kernel and a few kernel-tree files
#
# STRESS_SECS and FUZZ_SECS (default 10 and 20) reach the tests as
# CBM_STRESS_SECS and CBM_FUZZ_SECS: how long the stress and fuzz entries run.
# W=1, C=1 (sparse) and V=1 go to kbuild for the module only.
# Documentation/testing.rst describes the VM harness.

# Debian's kernel ABI name; it changes when Debian updates the kernel.
KVER := 6.1.0-56-amd64
KDIR ?= /lib/modules/$(KVER)/build
CBM_CACHE ?= $(HOME)/.cache/cbm
export KVER CBM_CACHE

KSRC := $(CBM_CACHE)/src/linux-source-6.1
# Made by selftests/vm/debug-kernel.sh
DEBUG_KDIR := $(CBM_CACHE)/debug-kernel/build
KSFT_DIR := $(KSRC)/tools/testing/selftests
# Scripts run through bash, as kbuild runs its own through $(CONFIG_SHELL),
# so they work even where the executable bit got lost.
VM := selftests/vm
BUILD := build
# check.sh takes the debug kernel's cbm.ko from here.
DEBUG_MOD := $(BUILD)/debug-mod

STRESS_SECS ?= 10
FUZZ_SECS ?= 20
export CBM_STRESS_SECS := $(STRESS_SECS)
export CBM_FUZZ_SECS := $(FUZZ_SECS)

DEB_PACKAGES := build-essential gcc make linux-headers-$(KVER) \
	linux-source-6.1 qemu-system-x86 busybox-static cpio sparse kmod \
	xz-utils libnl-3-dev libnl-genl-3-dev pkg-config perl \
	flex bison bc libelf-dev trinity stress-ng

# Command-line variables reach every sub-make through MAKEFLAGS and the
# environment. W= and C= mean something only to kbuild, and kbuild honours
# them only when they come from its command line, so they are handed to it
# explicitly and kept away from the userspace and selftests builds.
MAKEOVERRIDES := $(filter-out W=% C=%,$(MAKEOVERRIDES))
unexport W C
KBUILD_ARGS := $(if $(W),W=$(W)) $(if $(C),C=$(C))

CHECKPATCH_FILES = $(sort $(wildcard module/*.[ch])) uapi/linux/cbm.h
DEBUG_MOD_SRCS = Kbuild $(shell find module uapi -type f -name '*.[chS]')
# trinity and stress-ng, with their shared libraries, for the fuzz and
# stress entries.
VM_PROGS := -e /usr/bin/trinity -e /usr/bin/stress-ng

.PHONY: all modules userspace install selftests deps fetch check check-host \
	check-stock check-debug debug-kernel debug-modules demo bench vm-shell \
	vm-shell-debug checkpatch clean

all: modules userspace selftests

deps:
	@bash $(VM)/deps.sh $(DEB_PACKAGES)

fetch: deps
	@bash $(VM)/fetch.sh

modules: deps
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KBUILD_ARGS) modules

debug-kernel: deps
	@bash $(VM)/debug-kernel.sh

# Built in a directory of its own, of symbolic links to the sources, so that
# ./cbm.ko stays the stock kernel's and both builds stay incremental.
debug-modules: debug-kernel
	@mkdir -p $(DEBUG_MOD)
	@find $(DEBUG_MOD) -type l -delete
	@for f in $(DEBUG_MOD_SRCS); do \
		mkdir -p $(DEBUG_MOD)/$$(dirname $$f) && \
		ln -s $(CURDIR)/$$f $(DEBUG_MOD)/$$f || exit; \
	done
	$(MAKE) -C $(DEBUG_KDIR) M=$(CURDIR)/$(DEBUG_MOD) $(KBUILD_ARGS) modules

userspace: deps
	$(MAKE) -C userspace

install: userspace
	$(MAKE) -C userspace install

selftests: fetch
	$(MAKE) -C selftests KSFT_DIR=$(KSFT_DIR)

# userspace/ too: check is what CI runs, and a build that breaks must fail it.
check: modules debug-modules userspace selftests fetch
	@bash $(VM)/check.sh host stock debug

check-host: userspace
	@bash $(VM)/check.sh host

check-stock: modules userspace selftests fetch
	@bash $(VM)/check.sh stock

check-debug: debug-modules userspace selftests fetch
	@bash $(VM)/check.sh debug

demo: modules userspace fetch
	@mkdir -p $(BUILD)
	@bash $(VM)/mkinitramfs.sh -o $(BUILD)/initramfs-demo.cpio.gz -k cbm.ko \
		-b userspace/demo/cbm-demo -b userspace/cbmctl/cbmctl
	@bash $(VM)/qemu.sh demo $(BUILD)/initramfs-demo.cpio.gz

bench: modules userspace fetch
	@CBM_BENCH_ARGS="$(BENCH_ARGS)" bash $(VM)/bench.sh $(BENCH_MODES)

vm-shell: modules userspace selftests fetch
	@mkdir -p $(BUILD)
	@bash $(VM)/mkinitramfs.sh -o $(BUILD)/initramfs-shell.cpio.gz -k cbm.ko \
		-s selftests -l selftests/run_list -b userspace/demo/cbm-demo \
		-b userspace/cbmctl/cbmctl -b userspace/bench/cbm-bench $(VM_PROGS)
	@bash $(VM)/qemu.sh shell $(BUILD)/initramfs-shell.cpio.gz

vm-shell-debug: debug-modules userspace selftests fetch
	@mkdir -p $(BUILD)
	@bash $(VM)/mkinitramfs.sh -o $(BUILD)/initramfs-shell-debug.cpio.gz \
		-k $(DEBUG_MOD)/cbm.ko -s selftests -l selftests/run_list \
		-b userspace/demo/cbm-demo -b userspace/cbmctl/cbmctl \
		-b userspace/bench/cbm-bench $(VM_PROGS)
	@CBM_KERNEL=debug bash $(VM)/qemu.sh shell \
		$(BUILD)/initramfs-shell-debug.cpio.gz

checkpatch: fetch
	@mkdir -p $(BUILD)
	@perl $(KSRC)/scripts/checkpatch.pl --strict --no-tree -f \
		$(CHECKPATCH_FILES) >$(BUILD)/checkpatch.log 2>&1; \
	rc=$$?; cat $(BUILD)/checkpatch.log; \
	if [ $$rc -ne 0 ] || grep -qE '^(ERROR|WARNING|CHECK):' \
		$(BUILD)/checkpatch.log; then exit 1; fi

clean:
	if [ -d $(KDIR) ]; then $(MAKE) -C $(KDIR) M=$(CURDIR) clean; fi
	for dir in userspace selftests; do \
		if [ -f $$dir/Makefile ]; then $(MAKE) -C $$dir clean || exit; fi; \
	done
	rm -rf $(BUILD)
