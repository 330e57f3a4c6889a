#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make install into a temporary prefix, then build lib/example.c (the
# example Documentation/libcbm.rst shows) against it with nothing but
# pkg-config, dynamically and statically, and check what libcbm.so
# exports: exactly the functions libcbm.h declares. Prints TAP; runs from
# userspace/ (userspace/run_list).
set -eu

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A make that runs us must not hand its jobserver or goals to this one
unset MAKEFLAGS MAKELEVEL MFLAGS

n=0
failed=0
result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		failed=$((failed + 1))
	fi
}

echo "TAP version 13"
echo "1..6"

rc=0
make -s install PREFIX="$tmp/usr" DESTDIR= >"$tmp/install.log" 2>&1 || rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$tmp/install.log"
for f in include/cbm/libcbm.h include/cbm/cbm_map.h include/cbm/linux/cbm.h \
	 lib/libcbm.a lib/libcbm.so lib/libcbm.so.0 lib/libcbm.so.0.1.0 \
	 lib/pkgconfig/libcbm.pc bin/cbmctl; do
	[ -e "$tmp/usr/$f" ] || { echo "# missing $f"; rc=1; }
done
result $rc install

export PKG_CONFIG_PATH=$tmp/usr/lib/pkgconfig
rc=0
want="-I$tmp/usr/include/cbm -I/usr/include/libnl3 -L$tmp/usr/lib -lcbm"
got=$(pkg-config --cflags --libs libcbm) || rc=$?
# libnl's own flags are its .pc's business: only ours are checked exactly
case "$got" in
"-I$tmp/usr/include/cbm "*"-L$tmp/usr/lib -lcbm"*) ;;
*) echo "# pkg-config gave '$got', want like '$want'"; rc=1 ;;
esac
[ "$(pkg-config --modversion libcbm)" = 0.1.0 ] || rc=1
pkg-config --static --libs libcbm | grep -q -- '-lnl-genl-3' || rc=1
# Paths under the prefix through ${prefix}, so that the tree relocates
# shellcheck disable=SC2016 # ${prefix} is pkg-config's, not the shell's
for line in 'libdir=${prefix}/lib' 'includedir=${prefix}/include'; do
	grep -qxF "$line" "$tmp/usr/lib/pkgconfig/libcbm.pc" ||
		{ echo "# libcbm.pc has no '$line'"; rc=1; }
done
result $rc pkg-config

rc=0
# shellcheck disable=SC2046 # pkg-config prints words meant to be split
cc -Wall -Wextra -Werror -o "$tmp/example" lib/example.c \
	$(pkg-config --cflags --libs libcbm) >"$tmp/cc.log" 2>&1 || rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$tmp/cc.log"
if [ $rc = 0 ]; then
	readelf -d "$tmp/example" | grep -q 'NEEDED.*\[libcbm\.so\.0\]' || {
		echo "# the example does not need libcbm.so.0"
		rc=1
	}
	# Without the module the example must fail cleanly, not crash
	out=$(LD_LIBRARY_PATH=$tmp/usr/lib "$tmp/example" 2>&1) && rc=1
	case "$out" in
	"example: "*) ;;
	*) echo "# example printed '$out'"; rc=1 ;;
	esac
fi
result $rc example-dynamic

rc=0
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -static -o "$tmp/example-static" lib/example.c \
	$(pkg-config --static --cflags --libs libcbm) >"$tmp/cc.log" 2>&1 ||
	rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$tmp/cc.log"
if [ $rc = 0 ] && readelf -d "$tmp/example-static" 2>/dev/null |
	grep -q NEEDED; then
	echo "# the static example needs shared libraries"
	rc=1
fi
result $rc example-static

rc=0
readelf -d "$tmp/usr/lib/libcbm.so" | grep -q 'SONAME.*\[libcbm\.so\.0\]' ||
	{ echo "# no SONAME libcbm.so.0"; rc=1; }
result $rc soname

rc=0
nm -D --defined-only "$tmp/usr/lib/libcbm.so" |
	awk '{ sub(/@.*/, "", $3); print $3 }' | sort >"$tmp/exported"
# Every function libcbm.h declares, static inline ones excepted
grep -v '^static' lib/libcbm.h |
	sed -n 's/^[a-z].*[ *]\(cbm_[a-z_]*\)(.*/\1/p' |
	sort -u >"$tmp/declared"
# The version node is an absolute symbol of its own
grep -vx LIBCBM_0.1 "$tmp/exported" >"$tmp/exported.syms" || :
if ! cmp -s "$tmp/declared" "$tmp/exported.syms"; then
	echo "# exported (>) and declared (<) symbols differ:"
	diff "$tmp/declared" "$tmp/exported.syms" | sed 's/^/# /'
	rc=1
fi
[ -s "$tmp/declared" ] || rc=1
result $rc exports

echo "# $((n - failed)) passed, $failed failed"
[ $failed = 0 ]
