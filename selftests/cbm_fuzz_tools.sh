#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Debian's system call fuzzers pointed at /dev/cbm, side by side, for
# CBM_FUZZ_SECS seconds (default 10): trinity with only /dev/cbm files and
# the calls that take a file, and stress-ng's device stressor, while a
# feeder appends to `default'. They pass if they stop in time and leave no
# process behind; what they may break shows on the console, which the
# harness scans for oopses, sanitizer reports and warnings. A tool that is
# not installed is skipped. Prints TAP.
#
# trinity runs as root (--dangerous), which its restriction to /dev/cbm
# files makes safe in the test VM. As another user nearly every call would
# stop at the mode of `default': trinity's files are never bound, and its
# random CBM_IOC_BIND arguments hardly ever name a conversation.
# cbm_fuzz_test covers the unprivileged side.

set -eu

dev=/dev/cbm
params=/sys/module/cbm/parameters
secs=${CBM_FUZZ_SECS:-10}
# seconds a tool may take to stop after being told to
grace=30
# microseconds between the messages the feeder appends
feed_us=10000
# seconds trinity waits before it starts when run as root
trinity_countdown=10
# device nodes for /dev/cbm that trinity opens, each one file of its own
trinity_nodes=8
# rings trinity may create stay small, whatever capacity it asks for
fuzz_max_capacity=1048576
tmp=${TMPDIR:-/tmp}/cbm_fuzz_tools.$$
failed=0

# diag FILE: the last lines of FILE as TAP diagnostics
diag() {
	tail -n 20 "$1" | sed 's/^/# /'
}

# report NUMBER ok|not_ok|skip DESCRIPTION [LOG]: one TAP result; a
# failure is preceded by the end of LOG, as the kselftest harness puts a
# failure's diagnostics first
report() {
	case $2 in
	ok)
		echo "ok $1 $3"
		;;
	skip)
		echo "ok $1 # SKIP $3"
		;;
	*)
		[ -z "${4:-}" ] || diag "$4"
		echo "not ok $1 $3"
		failed=1
		;;
	esac
}

# reap NAME: waits for every NAME process to go, then kills what is left
# (by pid: they are this script's); fails if any was left
reap() {
	i=0
	while pids=$(pidof "$1") && [ $i -lt $grace ]; do
		sleep 1
		i=$((i + 1))
	done
	[ -n "${pids:-}" ] || return 0
	# shellcheck disable=SC2086 # a list of pids
	kill -9 $pids 2>/dev/null || true
	return 1
}

# feed: appends to `default' until killed, so that the tools' blocking
# reads end soon instead of waiting for their watchdogs
feed() {
	while echo "feed" >$dev; do
		usleep $feed_us
	done
}

# system calls that take a file; not close, dup2 or dup3, which would
# close trinity's own files
trinity_calls="read readv preadv preadv2 write writev pwritev pwritev2
	ioctl lseek poll ppoll select pread64 pwrite64 mmap fcntl dup newfstat
	fsync fdatasync flock fadvise64 sendfile splice copy_file_range
	readahead"

# test 1
run_trinity() {
	seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	log=$tmp/trinity.log
	# trinity opens one file per node it finds under its victim path
	mkdir "$tmp/victims"
	majmin=$(cat /sys/class/misc/cbm/dev)
	i=0
	while [ $i -lt $trinity_nodes ]; do
		mknod -m 0666 "$tmp/victims/cbm$i" c "${majmin%:*}" "${majmin#*:}"
		i=$((i + 1))
	done
	set --
	for call in $trinity_calls; do
		set -- "$@" -c "$call"
	done
	status=0
	(cd "$tmp" && exec timeout -s INT -k $grace \
		$((secs + trinity_countdown)) trinity --dangerous -q -l off \
		-V "$tmp/victims" --enable-fds=pseudo -C 2 -s "$seed" "$@") \
		</dev/null >"$log" 2>&1 || status=$?
	grep "Ran .* syscalls" "$log" | sed 's/^/# /' || :
	if ! reap trinity; then
		report 1 not_ok "trinity (seed $seed): processes left behind" \
			"$log"
	elif [ $status -ne 0 ] && [ $status -ne 130 ]; then
		report 1 not_ok "trinity (seed $seed): exit status $status" "$log"
	else
		report 1 ok "trinity on $dev for $secs s (seed $seed)"
	fi
}

# test 2, started before trinity and checked after it
start_stress_ng() {
	(
		status=0
		timeout -k $grace $((secs + grace)) stress-ng --dev 2 \
			--dev-file $dev --timeout "${secs}s" \
			--temp-path "$tmp" --metrics-brief \
			</dev/null >"$tmp/stress-ng.log" 2>&1 || status=$?
		echo "$status" >"$tmp/stress-ng.status"
	) &
	stress_ng=$!
}

check_stress_ng() {
	log=$tmp/stress-ng.log
	wait "$stress_ng" || :
	status=$(cat "$tmp/stress-ng.status" 2>/dev/null || echo none)
	if ! reap stress-ng; then
		report 2 not_ok "stress-ng --dev: processes left behind" "$log"
		return
	fi
	case $status in
	0)
		grep "dev " "$log" | tail -n 1 | sed 's/^/# /' || :
		report 2 ok "stress-ng --dev on $dev for $secs s"
		;;
	3|4)
		# no resource / not implemented: nothing was exercised
		diag "$log"
		report 2 skip "stress-ng --dev could not run (status $status)"
		;;
	*)
		report 2 not_ok "stress-ng --dev: exit status $status" "$log"
		;;
	esac
}

echo "TAP version 13"
echo "1..3"

if [ ! -c $dev ]; then
	echo "Bail out! $dev is missing"
	exit 1
fi
mkdir -p "$tmp"
saved_capacity=$(cat $params/max_capacity)
feed &
feeder=$!
trap 'kill $feeder 2>/dev/null || :; echo "$saved_capacity" \
	>$params/max_capacity; rm -rf "$tmp"' EXIT
echo $fuzz_max_capacity >$params/max_capacity

stress_ng=
if command -v stress-ng >/dev/null; then
	start_stress_ng
fi

if command -v trinity >/dev/null; then
	run_trinity
else
	report 1 skip "trinity is not installed"
fi

if [ -n "$stress_ng" ]; then
	check_stress_ng
else
	report 2 skip "stress-ng is not installed"
fi

kill $feeder
wait $feeder 2>/dev/null || :
# after all that, the device still takes a message
if echo "after-fuzz-$$" >$dev; then
	report 3 ok "$dev still works"
else
	report 3 not_ok "$dev still works"
fi

exit $failed
