#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: run the host suites listed in userspace/run_list (if there is
# one), boot the VM on an initramfs holding cbm.ko and the entries of
# selftests/run_list, then count every suite's TAP results, scan the guest
# console for kernel errors and close with the line
# "N passed, N failed[, N skipped]". Exits non-zero on any failure.
#
# A run_list names one entry a line, a path relative to its directory, with
# '#' starting a comment; each entry prints TAP on stdout and exits non-zero
# on failure. Host entries run with their directory as working directory.
#
# Environment: T (words selecting entries: an entry runs if a word equals
# its path or its file name, or matches either as a shell pattern; each word
# must select something), KVER, CBM_CACHE, CBM_KVM, CBM_VM_TIMEOUT,
# CBM_TEST_TIMEOUT (seconds for one entry, default 600), CBM_APPEND.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$(dirname "$here")")
build=$top/build
selected=$build/run_list
host_tap=$build/host.tap
expected=$build/expected
console=$build/console.log
test_timeout=${CBM_TEST_TIMEOUT:-600}
mkdir -p "$build"

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

{
	sed 's|^|userspace/|' "$build/host_run_list"
	echo module-load
	cat "$selected"
	echo module-unload
} >"$expected"

# Host suites write the same framing as the guest's /init, so one parser
# reads both.
: >"$host_tap"
if [ -n "$host_entries" ]; then
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
echo "check: VM, $(wc -l <"$selected") of $n_all selftests/run_list entries"
bash "$here/mkinitramfs.sh" -o "$build/initramfs-check.cpio.gz" \
	-k "$top/cbm.ko" -s "$top/selftests" -l "$selected"
CBM_TEST_TIMEOUT=$test_timeout \
	bash "$here/qemu.sh" check "$build/initramfs-check.cpio.gz" "$build"

# A QEMU that could not start leaves no logs; the summary then counts every
# suite as not run.
touch "$build/tap.log" "$console"
echo
read -r _ passed failed skipped < <(
	awk -v expected="$expected" -f "$here/summary.awk" \
		"$host_tap" "$build/tap.log" | tee "$build/summary" | tail -n 1)
sed '$d' "$build/summary"

# Guest-wide checks, counted as tests so the closing line tells the story.
if grep -qx '### cbmvm-done' "$build/tap.log"; then
	printf '%-4s %-32s %s\n' ok vm "ran to the end"
	passed=$((passed + 1))
else
	printf '%-4s %-32s %s\n' FAIL vm \
		"did not run to the end (crash, panic or time limit; see $console)"
	failed=$((failed + 1))
fi

bad_re='BUG:|WARNING:|Oops|general protection|KASAN|UBSAN|kmemleak'
bad_re+='|Call Trace|Kernel panic|unknown parameter'
bad=$(grep -a -n -E "$bad_re" "$console" | tr -d '\r' || :)
if [ -z "$bad" ]; then
	printf '%-4s %-32s %s\n' ok kernel-log "no kernel errors on the console"
	passed=$((passed + 1))
else
	printf '%-4s %-32s %s\n' FAIL kernel-log \
		"$(grep -c . <<<"$bad") kernel error lines in $console:"
	head -n 20 <<<"$bad" | sed 's/^/        /'
	failed=$((failed + 1))
fi

echo
line="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || line+=", $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
