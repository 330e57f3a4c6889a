# SPDX-License-Identifier: GPL-2.0
#
# Sourced by check.sh and bench.sh: what on a guest's console is a kernel
# error (bad_re, extended regular expression) unless it is also benign
# (benign_re). kmemleak's own count of new leaks is left to the kmemleak
# suite, which tells the module's leaks from the kernel's; a scan area it
# could not allocate (fault injection fails its allocations too) only
# makes it scan the whole object.
# shellcheck shell=bash disable=SC2034 # used by the scripts that source it

bad_re='BUG:|WARNING:|Oops|general protection|KASAN|UBSAN|kmemleak'
bad_re+='|Call Trace|Kernel panic|unknown parameter|INFO: task .* blocked'
bad_re+='|possible recursive locking|circular locking dependency'
bad_re+='|inconsistent lock state|suspicious RCU usage|ODEBUG:'
bad_re+='|sleeping function called from invalid context'
benign_re='kmemleak: (Kernel memory leak detector initialized'
benign_re+='|[0-9]+ new suspected memory leaks'
benign_re+='|Cannot allocate a scan area, scanning the full object)'
