#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages given as arguments unless they are all
# installed already, so a second run costs one dpkg-query and prints nothing.
#
# Usage: deps.sh PACKAGE...
set -euo pipefail

# One dpkg-query for all: it lists the packages it knows (and fails for the
# others, which are missing anyway).
installed=" $(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "$@" \
	2>/dev/null | sed -n 's/^installed //p' | tr '\n' ' ') " || :
missing=()
for pkg in "$@"; do
	[[ $installed == *" $pkg "* ]] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root; run: apt-get update &&" \
	     "apt-get install --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists, and stale lists name versions the
# mirror no longer has: refresh them before every install.
apt_opts=(-q -o DPkg::Lock::Timeout=600)
apt-get "${apt_opts[@]}" update
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
