#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the debug guest kernel (KASAN, lockdep, kmemleak, UBSAN, KUnit, fault
# injection) from Debian's linux-source-6.1, once per machine:
#
#   $CBM_CACHE/debug-kernel/src/VERSION/linux-source-6.1   the unpacked tree
#   $CBM_CACHE/debug-kernel/build                           make O= directory:
#       arch/x86/boot/bzImage   booted by qemu.sh
#       Module.symvers          so that cbm.ko builds against it (it is the
#                               KDIR)
#       cbm-key                 the key it was built for, written last
#
# The configuration is "make tinyconfig", then debug.config and
# ../config (the options the selftests need) appended, then "make
# olddefconfig"; any line of those fragments that did not survive fails the
# build, naming the option. The key hashes the linux-source-6.1 version, the
# compiler, both fragments and this script: a change to any of them rebuilds
# (incrementally: the objects stay), and until the rebuild has finished there
# is no cbm-key, so nothing uses a stale kernel. A new source version starts
# from a fresh tree.
#
# Environment: CBM_CACHE (default ~/.cache/cbm).
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$(dirname "$here")")
cache=${CBM_CACHE:-$HOME/.cache/cbm}
dir=$cache/debug-kernel
obj=$dir/build
src_tarball=/usr/src/linux-source-6.1.tar.xz
fragments=("$here/debug.config" "$top/selftests/config")

version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( {
	echo "$version"
	gcc --version | head -n 1
	cat "${fragments[@]}" "$0"
} | sha256sum | cut -d' ' -f1)

ready() {
	[ "$(cat "$obj/cbm-key" 2>/dev/null)" = "$key" ] &&
		[ -f "$obj/arch/x86/boot/bzImage" ]
}
ready && exit 0

mkdir -p "$dir"
# Parallel make targets may start two builds; the second waits, then finds
# the work done.
exec 9>"$dir/lock"
flock 9
ready && exit 0

# The kernel's make must not see the calling make's variables (T=, V=, a
# jobserver).
unset MAKEFLAGS MAKELEVEL MFLAGS MAKEOVERRIDES
start=$SECONDS
log=$dir/build.log
: >"$log"

src=$dir/src/$version/linux-source-6.1
if [ ! -f "$dir/src/$version/stamp" ]; then
	echo "debug-kernel: unpacking $src_tarball"
	rm -rf "$dir/src" "$obj"
	mkdir -p "$dir/src/$version"
	tar -xJf "$src_tarball" -C "$dir/src/$version"
	touch "$dir/src/$version/stamp"
fi

rm -f "$obj/cbm-key"
mkdir -p "$obj"
kmake() { make -C "$src" O="$obj" "$@" >>"$log" 2>&1; }
fail() {
	tail -n 40 "$log" >&2
	echo "debug-kernel: $1 (whole log in $log)" >&2
	exit 1
}

echo "debug-kernel: configuring (tinyconfig + ${fragments[*]#"$top/"})"
kmake tinyconfig || fail "make tinyconfig failed"
cat "${fragments[@]}" >>"$obj/.config"
kmake olddefconfig || fail "make olddefconfig failed"
dropped=0
while IFS= read -r line; do
	case $line in
	'# CONFIG_'*' is not set')
		opt=${line#\# }
		opt=${opt%% *}
		grep -q "^$opt=" "$obj/.config" || continue
		;;
	CONFIG_*)
		grep -qxF "$line" "$obj/.config" && continue
		opt=${line%%=*}
		;;
	*)
		continue
		;;
	esac
	now=$(grep -E "^(# )?${opt}[= ]" "$obj/.config" || echo absent)
	echo "debug-kernel: '$line' did not survive olddefconfig; now: $now" >&2
	dropped=1
done < <(cat "${fragments[@]}")
[ $dropped -eq 0 ] || exit 1

echo "debug-kernel: building with $(nproc) jobs (8 minutes from scratch on 2" \
     "cores), log in $log"
kmake -j"$(nproc)" bzImage modules || fail "make bzImage modules failed"
echo "$key" >"$obj/cbm-key"
echo "debug-kernel: done in $((SECONDS - start)) s"
