#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: run the host suites listed in userspace/run_list (if there is
# one), then boot each guest kernel in turn, Debian's stock kernel and the
# debug kernel (KASAN, lockdep, kmemleak, UBSAN, KUnit), on an initramfs
# holding its cbm.ko and the entries of selftests/run_list; count every
# suite's TAP results, scan each guest console for kernel errors and close
# with the line "N passed, N failed[, N skipped]" summing everything. Exits
# non-zero on any failure.
#
# Usage: check.sh [host] [stock] [debug]
#
# The arguments name the layers to run, in that order; all three without
# any. The stock kernel loads ./cbm.ko, the debug kernel
# build/debug-mod/cbm.ko (make debug-modules). Suite names carry their layer:
# userspace/ENTRY, stock/ENTRY, debug/ENTRY.
#
# A run_list names one entry a line, a path relative to its directory, with
# '#' starting a comment; each entry prints TAP on stdout and exits non-zero
# on failure. Host entries run with their directory as working directory.
#
# Environment: T (words selecting entries: an entry runs if a word equals
# its path or its file name, or matches either as a shell pattern; each word
# must select something), KVER, CBM_CACHE, CBM_KVM, CBM_VM_TIMEOUT,
# CBM_TEST_TIMEOUT (seconds for one entry, default 600), CBM_APPEND,
# CBM_STRESS_SECS, CBM_FUZZ_SECS (see qemu.sh).
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$(dirname "$here")")
build=$top/build
selected=$build/run_list
host_tap=$build/host.tap
expected=$build/expected
test_timeout=${CBM_TEST_TIMEOUT:-600}
mkdir -p "$build"

layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(host stock debug)
run_host=0
kernels=()
for layer in "${layers[@]}"; do
	case $layer in
	host) run_host=1 ;;
	stock | debug) kernels+=("$layer") ;;
	*)
		echo "check: unknown layer '$layer': expected host, stock" \
		     "or debug" >&2
		exit 2
		;;
	esac
done

# The entries of a run_list, comments and blank lines removed.
entries() {
	[ -f "$1" ] || return 0
	sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" |
		grep -v '^$' || :
}

read -r -a words <<<"${T:-}"
declare -A used

# Print the entries of a run_list that T selects (all of them without T).
select_entries() {
	local entry word

	while IFS= read -r entry; do
		if [ ${#words[@]} -eq 0 ]; then
			echo "$entry"
			continue
		fi
		for word in "${words[@]}"; do
			# Unquoted on the right: the word is a pattern.
			# shellcheck disable=SC2053
			if [[ $entry == $word || ${entry##*/} == $word ]]; then
				used[$word]=1
				echo "$entry"
				break
			fi
		done
	done < <(entries "$1")
}

# Into files, not $(...): a subshell would lose the record of used words.
select_entries "$top/userspace/run_list" >"$build/host_run_list"
select_entries "$top/selftests/run_list" >"$selected"
host_entries=$(cat "$build/host_run_list")
for word in "${words[@]}"; do
	if [ -z "${used[$word]:-}" ]; then
		echo "check: T=$word selects no entry of selftests/run_list" \
		     "or userspace/run_list" >&2
		exit 2
	fi
done

# The suites each layer should report, in the order it runs them.
{
	[ $run_host = 0 ] || sed 's|^|userspace/|' "$build/host_run_list"
	for kernel in "${kernels[@]}"; do
		echo "$kernel/module-load"
		[ "$kernel" != debug ] || echo "$kernel/kunit"
		sed "s|^|$kernel/|" "$selected"
		echo "$kernel/module-unload"
		[ "$kernel" != debug ] || echo "$kernel/kmemleak"
	done
} >"$expected"

# Host suites write the same framing as the guest's /init, so one parser
# reads both.
: >"$host_tap"
if [ $run_host = 1 ] && [ -n "$host_entries" ]; then
	echo "check: host suites"
	while IFS= read -r entry; do
		echo "  userspace/$entry"
		echo "### cbmvm-begin userspace/$entry" >>"$host_tap"
		start=$SECONDS
		rc=0
		(cd "$top/userspace" && exec timeout "$test_timeout" "./$entry") \
			</dev/null >>"$host_tap" 2>&1 || rc=$?
		secs=$((SECONDS - start))
		flag=
		[ $rc -ne 124 ] || flag=" timeout"
		echo "### cbmvm-end userspace/$entry rc=$rc secs=$secs$flag" \
			>>"$host_tap"
	done <<<"$host_entries"
fi

n_all=$(entries "$top/selftests/run_list" | wc -l)
for kernel in "${kernels[@]}"; do
	echo "check: $kernel kernel, $(wc -l <"$selected") of $n_all" \
	     "selftests/run_list entries"
	case $kernel in
	stock) module=$top/cbm.ko ;;
	debug) module=$build/debug-mod/cbm.ko ;;
	esac
	out=$build/$kernel
	mkdir -p "$out"
	# trinity and stress-ng are there for the fuzz and stress entries,
	# cbmctl for cbm_cli_test.sh, cbm-bench for cbm_bench_test.sh.
	bash "$here/mkinitramfs.sh" -o "$out/initramfs.cpio.gz" -k "$module" \
		-s "$top/selftests" -l "$selected" \
		-b "$top/userspace/cbmctl/cbmctl" \
		-b "$top/userspace/bench/cbm-bench" \
		-e /usr/bin/trinity -e /usr/bin/stress-ng
	CBM_KERNEL=$kernel CBM_TEST_TIMEOUT=$test_timeout \
		bash "$here/qemu.sh" check "$out/initramfs.cpio.gz" "$out"
	# A QEMU that could not start leaves no logs; the summary then
	# counts every suite as not run.
	touch "$out/tap.log" "$out/console.log"
done

echo
taps=("$host_tap")
for kernel in "${kernels[@]}"; do
	taps+=("$build/$kernel/tap.log")
done
read -r _ passed failed skipped < <(
	awk -v expected="$expected" -f "$here/summary.awk" "${taps[@]}" |
		tee "$build/summary" | tail -n 1)
sed '$d' "$build/summary"

# Kernel errors on a console: bad_re and benign_re
# shellcheck source=selftests/vm/kernel-errors.sh
. "$here/kernel-errors.sh"

# Guest-wide checks, counted as tests so the closing line tells the story.
for kernel in "${kernels[@]}"; do
	console=$build/$kernel/console.log
	if grep -qx '### cbmvm-done' "$build/$kernel/tap.log"; then
		printf '%-4s %-32s %s\n' ok "$kernel/vm" "ran to the end"
		passed=$((passed + 1))
	else
		why="crash, panic or time limit; see $console"
		printf '%-4s %-32s %s\n' FAIL "$kernel/vm" \
			"did not run to the end ($why)"
		failed=$((failed + 1))
	fi

	bad=$(grep -a -n -E "$bad_re" "$console" | grep -a -v -E "$benign_re" |
		tr -d '\r' || :)
	if [ -z "$bad" ]; then
		printf '%-4s %-32s %s\n' ok "$kernel/kernel-log" \
			"no kernel errors on the console"
		passed=$((passed + 1))
	else
		printf '%-4s %-32s %s\n' FAIL "$kernel/kernel-log" \
			"$(grep -c . <<<"$bad") kernel error lines in $console:"
		head -n 20 <<<"$bad" | sed 's/^/        /'
		failed=$((failed + 1))
	fi
done

echo
line="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || line+=", $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
