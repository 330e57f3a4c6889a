#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fill the cache the VM harness and the selftests build need:
#
#   $CBM_CACHE/kernel/$KVER/vmlinux      the guest kernel, uncompressed from
#                                        the vmlinuz of Debian's
#                                        linux-image-$KVER-unsigned package
#   $CBM_CACHE/src/linux-source-6.1/...  the few files of the kernel tree the
#                                        build uses (kselftest harness,
#                                        checkpatch, extract-vmlinux), from
#                                        linux-source-6.1
#
# QEMU boots the uncompressed ELF image through its PVH entry point: that
# skips decompressing the xz-compressed vmlinuz, which takes 7 of the 11
# seconds a boot to /init takes under TCG.
#
# Each part has a stamp written last, so an interrupted run starts that part
# again and a complete cache costs two file tests.
#
# Environment: KVER (set by the top-level Makefile), CBM_CACHE (default
# ~/.cache/cbm).
set -euo pipefail

: "${KVER:?KVER is set by the top-level Makefile}"
cache=${CBM_CACHE:-$HOME/.cache/cbm}
kernel_dir=$cache/kernel/$KVER
src_tarball=/usr/src/linux-source-6.1.tar.xz
src_dir=$cache/src/linux-source-6.1
src_files=(
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest.h
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
	scripts/extract-vmlinux
)

# The stamp names what the part was made from, so a new linux-source-6.1
# version or a longer file list refreshes it.
src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
src_stamp_want="$src_version ${src_files[*]}"
kernel_ready() { [ -f "$kernel_dir/stamp" ] && [ -f "$kernel_dir/vmlinux" ]; }
src_ready() { [ "$(cat "$src_dir/stamp" 2>/dev/null)" = "$src_stamp_want" ]; }

kernel_ready && src_ready && exit 0

mkdir -p "$cache"
# Parallel make targets may start two fetches; the second waits, then finds
# the work done.
exec 9>"$cache/fetch.lock"
flock 9

tmp=$(mktemp -d "$cache/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

apt_lists_empty() {
	! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

# The package lists are empty on a fresh machine and name versions the mirror
# has dropped once they are old: refresh them when the download fails.
apt_download() {
	# The _apt sandbox user cannot write into the private temporary
	# directory; download as the caller instead.
	local opts=(-q -o APT::Sandbox::User="$(id -un)")

	if ! apt_lists_empty && (cd "$tmp" && apt-get "${opts[@]}" download "$1"); then
		return 0
	fi
	apt-get -q -o DPkg::Lock::Timeout=600 update
	(cd "$tmp" && apt-get "${opts[@]}" download "$1")
}

if ! src_ready; then
	echo "fetch: ${src_files[*]} from $src_tarball"
	tar -xJf "$src_tarball" -C "$tmp" "${src_files[@]/#/linux-source-6.1/}"
	for f in "${src_files[@]}"; do
		mkdir -p "$src_dir/$(dirname "$f")"
		mv "$tmp/linux-source-6.1/$f" "$src_dir/$f"
	done
	echo "$src_stamp_want" >"$src_dir/stamp"
fi

if ! kernel_ready; then
	pkg=linux-image-$KVER-unsigned
	echo "fetch: $pkg"
	apt_download "$pkg"
	deb=$(echo "$tmp"/"$pkg"_*.deb)
	# Only the kernel image is needed: the module under test is the only
	# module the guest loads.
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$tmp" "./boot/vmlinuz-$KVER"
	dpkg-deb -f "$deb" Package Version >"$tmp/stamp"
	rm -f "$deb"
	bash "$src_dir/scripts/extract-vmlinux" "$tmp/boot/vmlinuz-$KVER" \
		>"$tmp/vmlinux"
	mkdir -p "$kernel_dir"
	mv "$tmp/vmlinux" "$kernel_dir/vmlinux"
	mv "$tmp/stamp" "$kernel_dir/stamp"
fi
