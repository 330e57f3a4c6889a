#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Shell tools on the default conversation, with nothing but busybox:
# `echo > /dev/cbm` appends a message, `cat /dev/cbm` prints the history
# and follows, a reader at the end waits instead of seeing end of file.
# Other tests share "default", so this only looks for its own messages,
# which are the newest because nothing else runs meanwhile. Prints TAP.
#
# busybox 1.35 dd has no iflag=nonblock; cbm_io_test covers the
# non-blocking end of the default conversation.

set -eu

dev=/dev/cbm
tmp=${TMPDIR:-/tmp}/cbm_shell_test.$$
first="hi-$$"
second="more-$$"
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n $1"
}

not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n $1"
}

# check DESCRIPTION COMMAND...: one TAP line from the command's status
check() {
	desc=$1
	shift
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc"
	fi
}

# wait_for TEXT FILE: up to 5 s for TEXT to show up in FILE
wait_for() {
	i=0
	while [ $i -lt 50 ]; do
		grep -q -- "$1" "$2" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# in_order FILE: $first is on a line before $second (an older message
# need not end in a newline, so the lines are searched, not matched whole)
in_order() {
	a=$(grep -n -- "$first" "$1" | tail -n 1 | cut -d: -f1)
	b=$(grep -n -- "$second" "$1" | tail -n 1 | cut -d: -f1)
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}

# max_plus_one_fails: a write above max_msg_size fails with EMSGSIZE
max_plus_one_fails() {
	max=$(cat /sys/module/cbm/parameters/max_msg_size)
	if dd if=/dev/zero of=$dev bs=$((max + 1)) count=1 conv=notrunc \
		2>"$tmp/big.err"; then
		return 1
	fi
	grep -q "Message too long" "$tmp/big.err"
}

echo "TAP version 13"
echo "1..8"

if [ ! -c $dev ]; then
	echo "Bail out! $dev is missing"
	exit 1
fi
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

check "echo appends a message" sh -c "echo $first > $dev"

timeout 10 cat $dev >"$tmp/cat.out" 2>"$tmp/cat.err" &
cat_pid=$!
check "cat prints the history" wait_for "$first" "$tmp/cat.out"

echo "$second" > $dev || true
check "cat follows new messages" wait_for "$second" "$tmp/cat.out"
check "cat waits at the end instead of seeing end of file" \
	kill -0 $cat_pid
kill $cat_pid 2>/dev/null || true
wait $cat_pid 2>/dev/null || true

check "cat prints messages in order" in_order "$tmp/cat.out"

# the end of a live conversation is not end of file: dd stops only when
# timeout kills it with SIGTERM
status=0
timeout 2 dd if=$dev of="$tmp/dd.out" bs=65536 2>"$tmp/dd.err" || status=$?
check "dd reads the history in order" in_order "$tmp/dd.out"
check "dd waits at the end until killed" [ $status -eq 143 ]
check "a write above max_msg_size fails" max_plus_one_fails

exit $failed
