#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cbmctl end to end, in the test VM (busybox and /bin/cbmctl): what each
# command prints, field by field for --json, its exit status and its
# error messages; ls over 1,000 conversations (a multi-part netlink dump);
# the effects of window and resize; the events watch sees; and a
# save -> rm -> load round trip that must give the same messages back,
# binary payloads included. Prints TAP.

set -eu

cbmctl=${CBMCTL:-cbmctl}
tmp=${TMPDIR:-/tmp}/cbm_cli_test.$$
n=0
failed=0
# Conversations made here; all removed at the end
prefix=cli$$
MANY=1000

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

# same DESCRIPTION GOT WANT: the strings are equal; the diagnostics show
# both otherwise
same() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		echo "# got:  $(printf '%s' "$2" | sed -n '1h;1!H;${g;s/\n/\\n/g;p}')"
		echo "# want: $(printf '%s' "$3" | sed -n '1h;1!H;${g;s/\n/\\n/g;p}')"
		not_ok "$1"
	fi
}

# same_file DESCRIPTION GOT_FILE WANT_FILE
same_file() {
	if cmp -s "$2" "$3"; then
		ok "$1"
	else
		diff "$3" "$2" | head -n 20 | sed 's/^/# /' || :
		not_ok "$1"
	fi
}

# run COMMAND...: status in $rc, output in $tmp/out and $tmp/err
run() {
	rc=0
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
}

# fails DESCRIPTION STATUS STDERR COMMAND...: the command exits with
# STATUS, prints nothing on stdout and exactly STDERR on stderr
fails() {
	desc=$1 want_rc=$2 want_err=$3
	shift 3
	run "$@"
	same "$desc: exit status" "$rc" "$want_rc"
	same "$desc: message" "$(cat "$tmp/err")" "$want_err"
}

# wait_for TEXT FILE: up to 10 s for TEXT to show up in FILE
wait_for() {
	i=0
	while [ $i -lt 100 ]; do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# The varying fields of message lines made constant: the sender's pid and
# the time. What is left must match exactly.
normalize() {
	sed -e 's/"ts_ns":[0-9]*,/"ts_ns":T,/' -e 's/"pid":[0-9]*,/"pid":P,/' \
		"$@"
}

# A JSON value by key, from the first place the key appears in the line
field() {
	awk -v key="\"$1\":" '{
		i = index($0, key)
		if (!i)
			exit 1
		s = substr($0, i + length(key))
		if (substr(s, 1, 1) == "\"")
			match(s, /^"([^"\\]|\\.)*"/)
		else
			match(s, /^[^,}]*/)
		print substr(s, RSTART, RLENGTH)
		exit
	}'
}

as_nobody() {
	su -s /bin/sh nobody -c "$*"
}

cleanup() {
	for name in $($cbmctl ls 2>/dev/null | awk -v p="$prefix" \
		'index($1, p) == 1 { print $1 }'); do
		$cbmctl rm "$name" 2>/dev/null || :
	done
	rm -rf "$tmp"
}

echo "TAP version 13"
if ! command -v "$cbmctl" >/dev/null; then
	echo "1..0 # SKIP $cbmctl is not installed"
	exit 0
fi
mkdir -p "$tmp"
trap cleanup EXIT

c=${prefix}-conv

# create, send, dump --json: every field of every line
run $cbmctl create "$c" --capacity 8K --mode 0640
same "create prints nothing and succeeds" "$rc:$(cat "$tmp/out" "$tmp/err")" "0:"

run $cbmctl send "$c" --role system --pin "You are terse."
same "send prints the sequence number" "$rc:$(cat "$tmp/out")" "0:0"
$cbmctl send "$c" --flags 0x10000 \
	"$(printf 'say "hi"\n\tto \\ \001\177 caf\303\251 \360\237\230\200')" \
	>/dev/null
printf 'from\nstdin' | $cbmctl send "$c" --role assistant --tokens 7 \
	>/dev/null
printf '\377\000\001' | $cbmctl send "$c" --role tool >/dev/null
run $cbmctl send "$c" --json ""
same "send --json prints the sequence number" "$rc:$(cat "$tmp/out")" \
	'0:{"seq":4}'

cat >"$tmp/want" <<EOF
{"seq":0,"ts_ns":T,"role":"system","flags":1,"tokens":0,"pid":P,"uid":0,"len":14,"data":"You are terse."}
{"seq":1,"ts_ns":T,"role":"user","flags":65536,"tokens":0,"pid":P,"uid":0,"len":28,"data":"say \\"hi\\"\\n\\tto \\\\ \\u0001\\u007f caf$(printf '\303\251 \360\237\230\200')"}
{"seq":2,"ts_ns":T,"role":"assistant","flags":0,"tokens":7,"pid":P,"uid":0,"len":10,"data":"from\\nstdin"}
{"seq":3,"ts_ns":T,"role":"tool","flags":0,"tokens":0,"pid":P,"uid":0,"len":3,"data_b64":"/wAB"}
{"seq":4,"ts_ns":T,"role":"user","flags":0,"tokens":0,"pid":P,"uid":0,"len":0,"data":""}
EOF
$cbmctl dump "$c" --json >"$tmp/dump"
normalize "$tmp/dump" >"$tmp/got"
same_file "dump --json: every field of every message" "$tmp/got" "$tmp/want"

now=$(date +%s)
ts_ok=1
prev=0
pids_ok=1
while IFS= read -r line; do
	ts=$(echo "$line" | field ts_ns)
	sec=${ts%?????????}
	[ "$sec" -ge $((now - 600)) ] && [ "$sec" -le $((now + 1)) ] &&
		[ "$ts" -ge "$prev" ] || ts_ok=0
	prev=$ts
	[ "$(echo "$line" | field pid)" -gt 0 ] || pids_ok=0
done <"$tmp/dump"
check "dump --json: timestamps are now and do not decrease" [ $ts_ok = 1 ]
check "dump --json: every message has its sender's pid" [ $pids_ok = 1 ]

$cbmctl dump "$c" >"$tmp/out"
check "dump: one line per message" [ "$(wc -l <"$tmp/out")" -eq 5 ]
check "dump: the text format" grep -qx \
	'#0 [0-9-]* [0-9:]*\.[0-9][0-9][0-9] system pid=[0-9]* uid=0 pinned: You are terse\.' \
	"$tmp/out"
check "dump: escapes, flags and tokens in the text format" grep -qx \
	'#2 .* assistant pid=[0-9]* uid=0 tokens=7: from\\nstdin' "$tmp/out"
check "dump: bytes that are not UTF-8 in the text format" grep -q \
	'#3 .* tool pid=[0-9]* uid=0: \\xff\\x00\\x01$' "$tmp/out"
$cbmctl dump "$c" --json --last 2 >"$tmp/out"
sed -n '4,5p' "$tmp/dump" >"$tmp/last2"
same_file "dump --last 2: the newest two" "$tmp/out" "$tmp/last2"

# tail: the same lines as dump, from where it was told to start
$cbmctl tail "$c" --json >"$tmp/out"
same_file "tail: the newest 10 messages, as dump prints them" "$tmp/out" \
	"$tmp/dump"
$cbmctl tail "$c" --json --last 2 >"$tmp/out"
same_file "tail --last 2" "$tmp/out" "$tmp/last2"
$cbmctl tail "$c" --json --from 3 >"$tmp/out"
same_file "tail --from 3" "$tmp/out" "$tmp/last2"
ts3=$(sed -n 4p "$tmp/dump" | field ts_ns)
$cbmctl tail "$c" --json \
	--since "${ts3%?????????}.$(echo "$ts3" | sed 's/.*\(.........\)$/\1/')" \
	>"$tmp/out"
same_file "tail --since SECONDS.NANOSECONDS" "$tmp/out" "$tmp/last2"
$cbmctl tail "$c" --json --since -1h >"$tmp/out"
same_file "tail --since -1h" "$tmp/out" "$tmp/dump"
run $cbmctl tail "$c" --since $((now + 3600))
same "tail --since a future time prints nothing" "$rc:$(cat "$tmp/out")" "0:"

f=${prefix}-follow
$cbmctl create "$f"
$cbmctl tail -f "$f" --from 0 >"$tmp/follow" 2>&1 &
tail_pid=$!
$cbmctl send "$f" --role assistant "live message" >/dev/null
check "tail -f prints a message appended later" wait_for \
	'^#0 .* assistant pid=[0-9]* uid=0: live message$' "$tmp/follow"
$cbmctl rm "$f"
rc=0
wait $tail_pid || rc=$?
same "tail -f ends with status 0 when the conversation is unlinked" "$rc" 0

# window: show, set, and what it evicts
same "window: none at first" "$($cbmctl window "$c")" "none"
$cbmctl window "$c" --msgs 1 --turns
same "window: 1 turn" "$($cbmctl window "$c")" "1 turns"
$cbmctl window "$c" --bytes 2K --tokens 100 --age 300
same "window: bytes, tokens and age" "$($cbmctl window "$c" --json)" \
	'{"flags":0,"max_msgs":0,"max_bytes":2048,"max_tokens":100,"max_age_ns":300000000000}'
same "window: text of bytes, tokens and age" "$($cbmctl window "$c")" \
	"2048 bytes, 100 tokens, age 5m"
$cbmctl window "$c" --msgs 1 --turns
$cbmctl send "$c" "next turn" >/dev/null
same "window of 1 turn keeps the pinned prompt and the last turn" \
	"$($cbmctl dump "$c" | cut -d' ' -f1 | tr '\n' ' ')" "#0 #5 "
$cbmctl window "$c" --clear
same "window --clear" "$($cbmctl window "$c")" "none"

# stat
$cbmctl stat "$c" --json >"$tmp/stat"
same "stat --json: name" "$(field name <"$tmp/stat")" "\"$c\""
same "stat --json: capacity, mode, owner" \
	"$(for k in capacity mode uid gid flags; do field $k <"$tmp/stat"; done |
		tr '\n' ' ')" '8192 "0640" 0 0 0 '
same "stat --json: messages and sequence numbers" \
	"$(for k in msgs first_seq next_seq appended evicted; do
		field $k <"$tmp/stat"; done | tr '\n' ' ')" '2 0 6 6 4 '
same "stat --json: pinned" "$(field pinned <"$tmp/stat")" 1
$cbmctl stat "$c" >"$tmp/out"
check "stat: key: value lines" grep -qx 'capacity: *8192' "$tmp/out"
check "stat: the policy" grep -qx 'policy: *lossy' "$tmp/out"

r=${prefix}-readers
$cbmctl create "$r"
for i in 1 2 3; do
	$cbmctl send "$r" "m$i" >/dev/null
done
# A reader that stays: it has read all three
$cbmctl tail -f "$r" --from 0 >/dev/null &
reader_pid=$!
sleep 1
$cbmctl stat "$r" >"$tmp/out"
check "stat: the reader table" grep -q \
	"^ *$reader_pid  *lossy  *3  *0  *0$" "$tmp/out"
$cbmctl stat "$r" --json >"$tmp/stat"
check "stat --json: the reader list" grep -q \
	"\"reader_list\":\[{\"pid\":$reader_pid,\"flags\":0,\"cursor\":3,\"lag\":0,\"lost\":0}\]" \
	"$tmp/stat"
$cbmctl rm "$r"
wait $reader_pid || :

# resize
run $cbmctl resize "$c" 16K
same "resize: grow" "$rc:$(cat "$tmp/out")" "0:capacity 16384, 0 messages evicted"
s=${prefix}-small
$cbmctl create "$s" --capacity 8K
i=0
while [ $i -lt 12 ]; do
	$cbmctl send "$s" "$(printf '%0500d' $i)" >/dev/null
	i=$((i + 1))
done
run $cbmctl resize "$s" 4K --json
same "resize --json: shrinking evicts" "$rc:$(cat "$tmp/out")" \
	'0:{"capacity":4096,"evicted":5}'
same "resize: the new capacity and messages" \
	"$($cbmctl stat "$s" --json | field capacity) $($cbmctl dump "$s" | wc -l)" \
	"4096 7"

# ls: every conversation, also when the dump takes many messages
i=0
names=
: >"$tmp/many"
while [ $i -lt $MANY ]; do
	name=$(printf '%s-many-%04d' "$prefix" $i)
	echo "$name" >>"$tmp/many"
	names="$names $name"
	i=$((i + 1))
done
# shellcheck disable=SC2086
$cbmctl create $names --capacity 4K
$cbmctl ls >"$tmp/ls"
same "ls: the header" "$(head -n 1 "$tmp/ls" | tr -s ' ')" \
	"NAME OWNER MODE CAPACITY USED MSGS READERS EVICTED LOST"
awk -v p="$prefix-many-" 'index($1, p) == 1 { print $1 }' "$tmp/ls" \
	>"$tmp/got"
same_file "ls: all $MANY conversations, once each, sorted" "$tmp/got" \
	"$tmp/many"
check "ls: a line's columns" grep -q \
	"^$prefix-many-0999  *0 0600  *4096  *0  *0  *0  *0  *0$" "$tmp/ls"
check "ls: default is listed" grep -q '^default ' "$tmp/ls"
$cbmctl ls --json |
	sed -n "s/^{\"name\":\"\($prefix-many-[^\"]*\)\".*/\1/p" >"$tmp/got"
same_file "ls --json: all $MANY conversations" "$tmp/got" "$tmp/many"
# shellcheck disable=SC2086
$cbmctl rm $names
check "rm of many names" [ "$($cbmctl ls | grep -c "^$prefix-many-")" = 0 ]

# watch: created, window, resized, evicted, unlinked
w=${prefix}-watched
$cbmctl watch >"$tmp/watch" 2>"$tmp/watch.err" &
watch_pid=$!
check "watch says when it is subscribed" wait_for "watching events" \
	"$tmp/watch.err"
$cbmctl create "$w" --capacity 8K
$cbmctl window "$w" --msgs 2
$cbmctl resize "$w" 16K >/dev/null
for i in 1 2 3 4 5; do
	$cbmctl send "$w" "w$i" >/dev/null
done
$cbmctl rm "$w"
check "watch sees the unlink" wait_for "^unlinked $w\$" "$tmp/watch"
sed 's/^/# watch: /' "$tmp/watch" "$tmp/watch.err"
kill $watch_pid 2>/dev/null || :
wait $watch_pid 2>/dev/null || :
grep " $w\( \|\$\)" "$tmp/watch" >"$tmp/got" || :
same "watch: events in order" \
	"$(awk '{ print $1 }' "$tmp/got" | uniq | tr '\n' ' ')" \
	"created window resized evicted unlinked "
same "watch: the created line" "$(head -n 1 "$tmp/got")" \
	"created $w capacity=8192 mode=0600 uid=0 gid=0 lossy"
check "watch: the window line" grep -qx "window $w 2 msgs" "$tmp/got"
check "watch: the resized line" grep -qx \
	"resized $w capacity=16384 resizes=1" "$tmp/got"
same "watch: the evicted counts add up" \
	"$(sed -n 's/^evicted .* count=\([0-9]*\) .*/\1/p' "$tmp/got" |
		awk '{ s += $1 } END { print s }')" 3

w2=${prefix}-only
$cbmctl watch "$w2" --count 2 --json >"$tmp/watch" 2>"$tmp/watch.err" &
watch_pid=$!
wait_for "watching events" "$tmp/watch.err" || :
$cbmctl create "$w" "$w2"
$cbmctl rm "$w" "$w2"
rc=0
wait $watch_pid || rc=$?
same "watch NAME --count 2 exits by itself" "$rc" 0
same "watch NAME --json: that conversation's events" \
	"$(sed -n 2p "$tmp/watch")" "{\"event\":\"unlinked\",\"name\":\"$w2\"}"
check "watch --json: the created event carries the state" grep -q \
	"^{\"event\":\"created\",\"name\":\"$w2\",\"conv\":{\"name\":\"$w2\",.*\"capacity\":262144," \
	"$tmp/watch"

# save -> rm -> load: the same messages, settings and numbering
v=${prefix}-saved
$cbmctl create "$v" --capacity 16K --mode 0640 --lossless
$cbmctl send "$v" --role system --pin --tokens 3 "Be brief." >/dev/null
for i in 1 2 3 4 5 6; do
	$cbmctl send "$v" --tokens $i "question $i" >/dev/null
	printf 'answer\000%d\377' $i |
		$cbmctl send "$v" --role assistant --flags 0x20000 >/dev/null
done
printf 'caf\303\251 "\\" \n' | $cbmctl send "$v" >/dev/null
$cbmctl window "$v" --msgs 2 --turns --age 1d
$cbmctl dump "$v" --json >"$tmp/before"
$cbmctl stat "$v" --json >"$tmp/stat.before"
run $cbmctl save "$v" "$tmp/saved.jsonl"
same "save: succeeds quietly" "$rc:$(cat "$tmp/out" "$tmp/err")" "0:"
same "save: the header" "$(head -n 1 "$tmp/saved.jsonl")" \
	"{\"cbm_save\":1,\"name\":\"$v\",\"capacity\":16384,\"mode\":\"0640\",\"flags\":1,\"next_seq\":14,\"msgs\":4,\"window\":{\"flags\":1,\"max_msgs\":2,\"max_bytes\":0,\"max_tokens\":0,\"max_age_ns\":86400000000000},\"autoresize\":{\"flags\":0,\"min_capacity\":0,\"max_capacity\":0,\"high_pct\":0,\"low_pct\":0,\"period_ms\":0}}"
sed 1d "$tmp/saved.jsonl" >"$tmp/got"
same_file "save: the messages as dump --json prints them" "$tmp/got" \
	"$tmp/before"
$cbmctl rm "$v"
run $cbmctl load "$tmp/saved.jsonl"
same "load: succeeds quietly" "$rc:$(cat "$tmp/out" "$tmp/err")" "0:"
$cbmctl dump "$v" --json >"$tmp/after" || :
normalize "$tmp/before" >"$tmp/want"
normalize "$tmp/after" >"$tmp/got"
same_file "load: the same messages, byte for byte" "$tmp/got" "$tmp/want"
same "load: every message has the restorer's pid and uid" \
	"$(sed 's/.*"pid":\([0-9]*\),"uid":\([0-9]*\),.*/\1 \2/' "$tmp/after" |
		sort -u | sed 's/^[0-9]* /P /')" "P 0"
$cbmctl stat "$v" --json >"$tmp/stat.after" || :
for k in capacity mode flags first_seq next_seq msgs pinned window; do
	same "load: $k as saved" "$(field $k <"$tmp/stat.after")" \
		"$(field $k <"$tmp/stat.before")"
done
same "load: the numbering goes on" "$($cbmctl send "$v" next)" 14
$cbmctl rm "$v" || :
$cbmctl load "$tmp/saved.jsonl" "$v-copy" || :
$cbmctl save "$v-copy" - | sed -e 's/"pid":[0-9]*,/"pid":P,/' \
	-e "s/\"name\":\"$v-copy\"/\"name\":\"$v\"/" >"$tmp/got" || :
sed 's/"pid":[0-9]*,/"pid":P,/' "$tmp/saved.jsonl" >"$tmp/want"
same_file "load NAME, save: the same file again" "$tmp/got" "$tmp/want"
fails "load onto an existing name" 1 \
	"cbmctl: load $v-copy: File exists (EEXIST)" \
	$cbmctl load "$tmp/saved.jsonl" "$v-copy"
$cbmctl rm "$v-copy" || :
sed '3s/"len":/"len":1/' "$tmp/saved.jsonl" >"$tmp/bad.jsonl"
run $cbmctl load "$tmp/bad.jsonl"
same "load: a malformed file fails" "$rc" 1
check "load: the message names the line" grep -q \
	"^cbmctl: load $tmp/bad.jsonl: line 3: " "$tmp/err"
check "load: nothing is left of a malformed file" \
	sh -c "! $cbmctl stat $v 2>/dev/null"

# --mode 0 is mode 0000, not the default, and so is a saved "0000"
z=${prefix}-zero
$cbmctl create "$z" --mode 0
same "create --mode 0: mode 0000" "$($cbmctl stat "$z" --json | field mode)" \
	'"0000"'
$cbmctl save "$z" "$tmp/zero.jsonl"
check "save: mode 0000" grep -q '"mode":"0000"' "$tmp/zero.jsonl"
$cbmctl rm "$z"
$cbmctl load "$tmp/zero.jsonl"
same "load: mode 0000 as saved" "$($cbmctl stat "$z" --json | field mode)" \
	'"0000"'
$cbmctl rm "$z"

# Text for people: what a terminal would act on is escaped
e=${prefix}-escapes
$cbmctl create "$e"
printf 'a\302\233[2Jb\342\200\256c\342\201\247d\302\240\303\251' |
	$cbmctl send "$e" >/dev/null
same "dump: C1 controls and bidirectional overrides escaped" \
	"$($cbmctl dump "$e" | sed 's/^.* uid=[0-9]*: //')" \
	"$(printf 'a\\u009b[2Jb\\u202ec\\u2067d\302\240\303\251')"
$cbmctl rm "$e"

# errors: messages and exit statuses scripts rely on
fails "stat of a missing name" 1 \
	"cbmctl: stat $prefix-nope: No such file or directory (ENOENT)" \
	$cbmctl stat "$prefix-nope"
fails "rm of a missing name" 1 \
	"cbmctl: rm $prefix-nope: No such file or directory (ENOENT)" \
	$cbmctl rm "$prefix-nope"
fails "send to a missing name" 1 \
	"cbmctl: send $prefix-nope: No such file or directory (ENOENT)" \
	$cbmctl send "$prefix-nope" hi
fails "create of an existing name" 1 \
	"cbmctl: create $c: File exists (EEXIST)" $cbmctl create "$c"
p=${prefix}-public
$cbmctl create "$p" --mode 0666
fails "resize by another user" 1 \
	"cbmctl: resize $p: Operation not permitted (EPERM)" \
	as_nobody "$cbmctl resize $p 8K"
fails "window by another user" 1 \
	"cbmctl: window $p: Operation not permitted (EPERM)" \
	as_nobody "$cbmctl window $p --msgs 1"
fails "dump of a private conversation by another user" 1 \
	"cbmctl: dump $c: Permission denied (EACCES)" \
	as_nobody "$cbmctl dump $c"
run as_nobody "$cbmctl send $p 'from nobody'"
same "send by another user where the mode allows" "$rc:$(cat "$tmp/out")" "0:0"
same "the sender's uid is recorded" "$($cbmctl dump "$p" --json | field uid)" \
	65534
fails "usage: no command" 2 "$($cbmctl --help 2>&1)" $cbmctl
fails "usage: unknown command" 2 \
	"$(printf "cbmctl: unknown command 'frob'\nTry 'cbmctl --help'.")" \
	$cbmctl frob
fails "usage: missing argument" 2 \
	"$(printf "cbmctl: send: missing argument\nTry 'cbmctl send --help'.")" \
	$cbmctl send
fails "usage: bad size" 2 \
	"$(printf "cbmctl: resize: bad size '12Q'\nTry 'cbmctl resize --help'.")" \
	$cbmctl resize "$c" 12Q
fails "usage: unknown option" 2 \
	"$(printf "cbmctl: tail: bad option '--bogus'\nTry 'cbmctl tail --help'.")" \
	$cbmctl tail "$c" --bogus
fails "usage: an option without its value" 2 \
	"$(printf "cbmctl: tail: option --from needs a value\nTry 'cbmctl tail --help'.")" \
	$cbmctl tail "$c" --from
fails "usage: an unknown short option inside its group" 2 \
	"$(printf "cbmctl: tail: bad option '-x'\nTry 'cbmctl tail --help'.")" \
	$cbmctl tail "$c" -fx
fails "usage: --from and --last" 2 \
	"$(printf "cbmctl: tail: --from, --since and --last exclude each other\nTry 'cbmctl tail --help'.")" \
	$cbmctl tail "$c" --from 0 --last 1
$cbmctl tail "$c" --json --last 1 >"$tmp/want"
run $cbmctl tail "$c" --json --last 5 --last 1
same "tail: the same position option twice, the last one counts" \
	"$rc:$(cat "$tmp/out")" "0:$(cat "$tmp/want")"
run $cbmctl tail -h
same "-h is --help" "$rc:$(head -n 1 "$tmp/out")" \
	"0:Usage: cbmctl tail NAME [-f] [--from SEQ | --since TIME | --last N] [--json]"
run $cbmctl --help
check "--help documents the exit statuses" grep -q "^Exit status: 0 success" \
	"$tmp/out"

echo "1..$n"
exit $failed
