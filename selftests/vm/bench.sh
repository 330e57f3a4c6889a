#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: boot the stock kernel with cbm.ko and run cbm-bench, first
# timed on two CPUs, then deterministic on one (QEMU -icount shift=0, where
# guest time counts guest instructions), and print both result tables.
# Logs and JSON go to build/bench/MODE/{bench.log,bench.json}.
#
# Usage: bench.sh [MODE]...     MODE: timed (default both) or icount
#
# Environment: as qemu.sh; CBM_BENCH_ARGS adds cbm-bench options (for
# instance "--reps 5 --secs 0.5", or "--quick").
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
top=$(readlink -f "$here/../..")
build=$top/build/bench
modes=("$@")
# bad_re and benign_re
# shellcheck source=selftests/vm/kernel-errors.sh
. "$here/kernel-errors.sh"
[ ${#modes[@]} -gt 0 ] || modes=(timed icount)

mkdir -p "$build"
bash "$here/mkinitramfs.sh" -o "$build/initramfs.cpio.gz" -k "$top/cbm.ko" \
	-b "$top/userspace/bench/cbm-bench"

status=0
for mode in "${modes[@]}"; do
	args=${CBM_BENCH_ARGS:-}
	case $mode in
	timed) icount=0 ;;
	icount)
		icount=1
		# Guest instructions do not vary from run to run: shorter runs
		# (5 * 10^7 instructions) give the same figures, in minutes
		# rather than the hour 0.3 s each would take
		args="--secs 0.05 $args"
		;;
	*)
		echo "bench: unknown mode $mode: expected timed or icount" >&2
		exit 2
		;;
	esac
	out=$build/$mode
	mkdir -p "$out"
	echo "bench: $mode run (log in $out/bench.log)"
	start=$SECONDS
	# TCG's TSC is stable but the kernel does not trust it and falls back
	# to the HPET, whose every read is an emulated device access (several
	# microseconds, on every timestamp the kernel or clock_gettime()
	# takes): real hardware reads the TSC.
	if ! CBM_ICOUNT=$icount CBM_VM_TIMEOUT=${CBM_VM_TIMEOUT:-3600} \
		CBM_BENCH_ARGS=$args \
		CBM_APPEND="clocksource=tsc tsc=reliable ${CBM_APPEND:-}" \
		bash "$here/qemu.sh" bench "$build/initramfs.cpio.gz" "$out"; then
		echo "bench: the $mode run failed"
		status=1
	fi
	# A benchmark of a kernel that warned or oopsed measures nothing
	bad=$(grep -a -n -E "$bad_re" "$out/bench.log" |
		grep -a -v -E "$benign_re" | tr -d '\r' || :)
	if [ -n "$bad" ]; then
		echo "bench: the kernel reported an error in the $mode run:"
		head -n 20 <<<"$bad" | sed 's/^/        /'
		status=1
	fi
	echo "bench: $mode run took $((SECONDS - start)) s"
done

for mode in "${modes[@]}"; do
	log=$build/$mode/bench.log
	[ -f "$log" ] || continue
	echo
	echo "==================== $mode ===================="
	sed -n -e 's/\r$//' -e '/^== cbm-bench results/,/^cbmvm: bench exited/p' \
		"$log" | grep -v '^cbmvm: '
	echo "(JSON: $build/$mode/bench.json)"
done
exit $status
