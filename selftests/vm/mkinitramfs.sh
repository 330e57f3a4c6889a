#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest's initramfs: busybox-static with its applet links, the
# /init of this directory, the module at /cbm.ko, test programs under
# /selftests, extra programs under /bin, and a /etc/passwd and /etc/group
# naming root and nobody. Programs given with -b must be statically linked;
# those given with -e bring their shared libraries.
#
# Usage: mkinitramfs.sh -o OUT.cpio.gz -k MODULE.ko
#                       [-s SELFTESTS_DIR -l LIST] [-b PROGRAM]...
#                       [-e PROGRAM]...
#
#   -s, -l  copy each entry of LIST (a run_list: paths relative to
#           SELFTESTS_DIR, one a line, '#' starts a comment) to
#           /selftests/ENTRY, and the entries alone to /selftests/run_list,
#           the order the guest runs them in
#   -b      copy PROGRAM to /bin/ (repeatable)
#   -e      copy PROGRAM, a dynamically linked executable given by its
#           absolute path, to that same path, with the shared libraries and
#           the ELF interpreter ldd names, each at its own path (repeatable)
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
busybox=/bin/busybox
out='' module='' selftests='' list=''
bins=() dyn_bins=()

usage() {
	sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "$0" >&2
	exit 2
}

while getopts o:k:s:l:b:e: opt; do
	case $opt in
	o) out=$OPTARG ;;
	k) module=$OPTARG ;;
	s) selftests=$OPTARG ;;
	l) list=$OPTARG ;;
	b) bins+=("$OPTARG") ;;
	e) dyn_bins+=("$OPTARG") ;;
	*) usage ;;
	esac
done
if [ -z "$out" ] || [ -z "$module" ]; then
	usage
fi
# -s and -l go together
if [ -n "$selftests$list" ] && { [ -z "$selftests" ] || [ -z "$list" ]; }; then
	usage
fi

if [ ! -f "$module" ]; then
	echo "mkinitramfs: $module not found (run make modules)" >&2
	exit 1
fi
# The guest has none of the image's modules: a module that needs another one
# would fail to load with unknown symbols.
depends=$(/sbin/modinfo -F depends "$module")
if [ -n "$depends" ]; then
	echo "mkinitramfs: $module depends on modules the guest lacks: $depends" >&2
	exit 1
fi

root=$(mktemp -d "$(dirname "$out")/initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc}
install -m 0755 "$busybox" "$root/bin/busybox"
# Links made here rather than by "busybox --install" at boot, so /init's
# "#!/bin/sh" resolves before anything has run.
for applet in $("$busybox" --list-full); do
	[ "$applet" = bin/busybox ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$here/init" "$root/init"
# Programs that drop privileges look the users up by name (trinity runs its
# children as nobody).
printf '%s\n' root:x:0:0:root:/root:/bin/sh \
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false >"$root/etc/passwd"
printf '%s\n' root:x:0: nogroup:x:65534: >"$root/etc/group"
install -m 0644 "$module" "$root/cbm.ko"

if [ -n "$selftests" ]; then
	mkdir -p "$root/selftests"
	sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' \
		-e '/^$/d' "$list" >"$root/selftests/run_list"
	while IFS= read -r entry; do
		if [ ! -f "$selftests/$entry" ]; then
			echo "mkinitramfs: $selftests/$entry not found" \
			     "(run make selftests)" >&2
			exit 1
		fi
		mkdir -p "$root/selftests/$(dirname "$entry")"
		install -m 0755 "$selftests/$entry" "$root/selftests/$entry"
	done <"$root/selftests/run_list"
fi

for prog in "${bins[@]}"; do
	install -m 0755 "$prog" "$root/bin/$(basename "$prog")"
done

# The paths ldd prints are the ones the dynamic loader searches in the guest
# too (Debian's multiarch directories are built into it), so no ld.so.cache
# is needed.
for prog in "${dyn_bins[@]}"; do
	if [ "${prog#/}" = "$prog" ] || [ ! -x "$prog" ]; then
		echo "mkinitramfs: -e $prog: not a program's absolute path" >&2
		exit 1
	fi
	if ! libs=$(ldd "$prog" 2>&1) || [[ $libs == *"not found"* ]]; then
		echo "mkinitramfs: ldd $prog failed:" >&2
		echo "$libs" >&2
		exit 1
	fi
	for file in "$prog" $(awk '{ for (i = 1; i <= NF; i++)
				if ($i ~ /^\//) print $i }' <<<"$libs"); do
		mkdir -p "$root$(dirname "$file")"
		cp -L "$file" "$root$file"
	done
done

# Sorted, owned by root and fast to compress: the image is rebuilt on every
# run and the kernel unpacks gzip quickly.
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
