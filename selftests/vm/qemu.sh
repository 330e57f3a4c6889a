#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the cached Debian kernel, or the debug kernel of debug-kernel.sh,
# with an initramfs from mkinitramfs.sh in QEMU. MODE is the guest /init's
# cbmvm= word:
#
#   check  console to OUTDIR/console.log, the guest's TAP channel (its
#          /dev/ttyS1) to OUTDIR/tap.log; only the "cbmvm:" progress lines
#          of the console reach the terminal
#   demo   console on the terminal and in OUTDIR/demo.log, kernel quiet;
#          fails unless the demo exited with status 0
#   shell  interactive console on the terminal, no time limit
#   bench  console on the terminal and in OUTDIR/bench.log, kernel
#          warnings and worse included (for the host to scan);
#          the benchmark's JSON (the guest's /dev/ttyS1) to
#          OUTDIR/bench.json; fails unless the benchmark exited with
#          status 0
#
# In demo and shell, Ctrl-A X stops QEMU and Ctrl-A C reaches its monitor.
#
# Usage: qemu.sh check|demo|shell|bench INITRD [OUTDIR]
#
# Environment: KVER (set by the top-level Makefile), CBM_CACHE (default
# ~/.cache/cbm), CBM_KERNEL (stock, the default, or debug), CBM_KVM=1 to use
# KVM instead of TCG, CBM_VM_TIMEOUT (seconds for the whole check or demo
# run, default 1500 on the stock kernel and 3000 on the debug kernel),
# CBM_TEST_TIMEOUT (seconds for one check entry, default 600),
# CBM_BOOT_TIMEOUT (seconds for a check run's guest to reach /init, default
# 120 stock and 300 debug; a guest that does not is booted once more),
# CBM_APPEND
# (more kernel command line), CBM_STRESS_SECS and CBM_FUZZ_SECS (handed to
# the guest's tests), CBM_ICOUNT=1 for a deterministic run on one CPU
# (-icount shift=0: a nanosecond of guest time is one guest instruction),
# CBM_BENCH_ARGS (more cbm-bench options, for bench).
set -euo pipefail

usage() {
	sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "$0" >&2
	exit 2
}

[ $# -ge 2 ] || usage
mode=$1 initrd=$2
outdir=${3:-$(dirname "$initrd")}
: "${KVER:?KVER is set by the top-level Makefile}"
cache=${CBM_CACHE:-$HOME/.cache/cbm}
test_timeout=${CBM_TEST_TIMEOUT:-600}

# The debug kernel runs everything several times slower (KASAN checks every
# access, lockdep every lock) and its shadow memory takes an eighth of RAM.
case ${CBM_KERNEL:-stock} in
stock)
	kernel=$cache/kernel/$KVER/vmlinux
	ready=$kernel
	memory=1024
	vm_timeout=${CBM_VM_TIMEOUT:-1500}
	boot_timeout=${CBM_BOOT_TIMEOUT:-120}
	extra=
	;;
debug)
	kernel=$cache/debug-kernel/build/arch/x86/boot/bzImage
	# Written when a build has finished, removed when one starts.
	ready=$cache/debug-kernel/build/cbm-key
	memory=2048
	vm_timeout=${CBM_VM_TIMEOUT:-3000}
	boot_timeout=${CBM_BOOT_TIMEOUT:-300}
	# Every KASAN report, not only the first.
	extra=kasan_multi_shot
	;;
*)
	echo "qemu: CBM_KERNEL=$CBM_KERNEL: expected stock or debug" >&2
	exit 2
	;;
esac

if [ ! -f "$ready" ]; then
	echo "qemu: $kernel missing (run make fetch or make debug-kernel)" >&2
	exit 1
fi

# KVM boots hang on the machines this project is developed and tested on,
# so TCG is the default; multi-threaded TCG gives each vCPU a host thread.
smp=2
if [ "${CBM_ICOUNT:-0}" = 1 ]; then
	# One instruction per guest nanosecond, the same for every run
	# whatever the host's load: -icount needs single-threaded TCG.
	# sleep=on lets guest time run at host speed while the guest idles.
	# shellcheck disable=SC2054 # the commas are the option's
	accel=(-accel tcg -icount shift=0,align=off,sleep=on -cpu max)
	smp=1
elif [ "${CBM_KVM:-0}" = 1 ]; then
	accel=(-accel kvm -cpu host)
else
	accel=(-accel "tcg,thread=multi" -cpu max)
fi
# The resize benchmark holds a 128 MiB and a 64 MiB ring at once, within
# the module's per-user limit of an eighth of RAM.
[ "$mode" != bench ] || [ "$memory" -ge 2048 ] || memory=2048
# panic=-1 reboots at once on a panic and -no-reboot turns that reboot into
# QEMU's exit, so a crashed guest ends the run instead of hanging.
# "-display none" and an explicit -serial do what -nographic does, without
# the SeaBIOS serial console that -nographic turns on, which resets and
# clears the terminal.
qemu=(qemu-system-x86_64 "${accel[@]}" -smp "$smp" -m "$memory" -nic none
      -display none -no-reboot -kernel "$kernel" -initrd "$initrd")
append="console=ttyS0 panic=-1${extra:+ $extra} cbmvm=$mode"
append+=" cbmvm_kernel=${CBM_KERNEL:-stock}"
[ -z "${CBM_STRESS_SECS:-}" ] || append+=" cbmvm_stress_secs=$CBM_STRESS_SECS"
[ -z "${CBM_FUZZ_SECS:-}" ] || append+=" cbmvm_fuzz_secs=$CBM_FUZZ_SECS"

case $mode in
check)
	console=$outdir/console.log
	tap=$outdir/tap.log
	# No "quiet": WARN() and friends print at KERN_WARNING and must reach
	# the console log the host scans.
	append+=" loglevel=7 cbmvm_timeout=$test_timeout ${CBM_APPEND:-}"
	# timeout(1) runs QEMU in a process group of its own, out of reach
	# of the terminal's Ctrl-C: stop it when this script stops.
	vm=
	trap '[ -z "$vm" ] || kill $vm 2>/dev/null || :' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	for attempt in 1 2; do
		rm -f "$console" "$tap"
		timeout -k 10 "$vm_timeout" "${qemu[@]}" -monitor none \
			-serial "file:$console" \
			-chardev "file,id=tap,path=$tap" \
			-device isa-serial,chardev=tap \
			-append "$append" </dev/null &
		vm=$!
		start=$SECONDS
		tail -s 0.2 -n +1 -F --pid=$vm "$console" 2>/dev/null |
			sed -u -n -e 's/\r$//' -e 's/^cbmvm: /  /p' &
		progress=$!
		# A guest kernel that dies before /init runs no test at all
		# (the debug kernel has been seen to oops in early boot under
		# TCG, before any module): boot it once more, saying so.
		booted=0
		while kill -0 $vm 2>/dev/null; do
			if grep -q '^cbmvm: up' "$console" 2>/dev/null; then
				booted=1
				break
			fi
			[ $((SECONDS - start)) -lt "$boot_timeout" ] || break
			sleep 1
		done
		grep -q '^cbmvm: up' "$console" 2>/dev/null && booted=1
		if [ $booted = 0 ] && [ $attempt = 1 ]; then
			kill $vm 2>/dev/null || :
			wait $vm 2>/dev/null || :
			wait $progress 2>/dev/null || :
			echo "qemu: the guest did not reach /init in" \
			     "$((SECONDS - start)) s; booting it again" \
			     "(first console kept in $console.boot1)"
			mv "$console" "$console.boot1" 2>/dev/null || :
			continue
		fi
		status=0
		wait $vm || status=$?
		wait $progress || :
		break
	done
	vm=
	trap - EXIT
	if [ "$status" -eq 124 ]; then
		echo "qemu: stopped after the $vm_timeout s time limit (CBM_VM_TIMEOUT)"
	elif [ "$status" -ne 0 ]; then
		echo "qemu: exit status $status"
	fi
	echo "qemu: $((SECONDS - start)) s; console in $console, TAP in $tap"
	;;
demo)
	log=$outdir/demo.log
	append+=" quiet ${CBM_APPEND:-}"
	# --foreground keeps QEMU in the terminal's process group so it may
	# read the terminal. Ctrl-A X quits (mon: multiplexes the monitor).
	timeout --foreground -k 10 "$vm_timeout" "${qemu[@]}" \
		-serial mon:stdio -append "$append" | tee "$log"
	grep -q '^cbmvm: demo exited with status 0' "$log"
	;;
bench)
	log=$outdir/bench.log
	json=$outdir/bench.json
	rm -f "$json"
	args=${CBM_BENCH_ARGS:-}
	[ "${CBM_ICOUNT:-0}" != 1 ] || args+=" --icount"
	# Words of the kernel command line cannot hold spaces: "~" stands
	# for one
	args=$(printf '%s' "$args" | tr -s ' ' '\n' | { grep . || :; } |
		paste -sd '~')
	# Warnings (level 4) and worse reach the console, as in shell mode:
	# a WARN() during the benchmark must show in the log.
	append+=" loglevel=5${args:+ cbmvm_bench_args=$args} ${CBM_APPEND:-}"
	timeout --foreground -k 10 "$vm_timeout" "${qemu[@]}" \
		-serial mon:stdio -chardev "file,id=json,path=$json" \
		-device isa-serial,chardev=json -append "$append" </dev/null |
		tee "$log"
	grep -q '^cbmvm: bench exited with status 0' "$log"
	;;
shell)
	if [ -t 0 ] && size=$(stty size 2>/dev/null); then
		append+=" cbmvm_rows=${size% *} cbmvm_cols=${size#* }"
	fi
	# Warnings (level 4) and worse still reach the console.
	append+=" loglevel=5 ${CBM_APPEND:-}"
	exec "${qemu[@]}" -serial mon:stdio -append "$append"
	;;
*)
	usage
	;;
esac
