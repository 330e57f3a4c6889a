#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark, once, in its tiny quick mode: every case of make bench
# (cbm and its peers, throughput, fan-out, many writers, ping-pong, memcpy,
# a system call, resize under a mapped reader) runs a few dozen messages
# and passes when they all arrived intact and in order. Nothing is timed
# or judged here: benchmarks are not tests (Documentation/performance.rst);
# this only keeps make bench from rotting. Prints TAP.

exec "${CBM_BENCH:-cbm-bench}" --quick --tap
