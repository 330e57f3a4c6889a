# SPDX-License-Identifier: GPL-2.0
#
# Count the results of TAP suites framed by the markers that the guest /init
# and check.sh write around each suite:
#
#   ### cbmvm-begin NAME
#   ...TAP from the suite (plan, "ok"/"not ok" lines, anything else)...
#   ### cbmvm-end NAME rc=STATUS secs=SECONDS [timeout]
#   ### cbmvm-done                              (once, after the last suite)
#
# Usage: awk -v expected=FILE -f summary.awk STREAM...
#
# FILE names the suites that should have run, one a line, in order. Prints a
# line per expected suite; under it each "not ok" line with the output that
# led to it, and the last output of a suite that did not end well; and last
# "TOTALS PASSED FAILED SKIPPED" for the caller. Only top-level TAP lines
# count; indented ones belong to nested subtests. A suite fails if a test
# failed, or if it never ran, never finished, had no plan or a plan its
# results do not match, bailed out, timed out, or exited non-zero (other than
# kselftest's 4, "skipped") without a failed test; each of those problems
# counts as one failed test more.

# Output lines kept to explain a failure
function remember(line,    j) {
	if (line == "" || line ~ /^TAP version/)
		return
	if (nctx == CONTEXT_LINES) {
		for (j = 1; j < nctx; j++)
			ctx[j] = ctx[j + 1]
		nctx--
	}
	ctx[++nctx] = line
}

function context(    j, out) {
	out = ""
	for (j = 1; j <= nctx; j++)
		out = out "        " ctx[j] "\n"
	nctx = 0
	return out
}

# A suite cut off by a crash has no end marker: keep what it printed last.
function cut_off() {
	if (cur != "")
		tail_lines[cur] = context()
	cur = ""
}

function directive(line,    i) {
	i = index(line, "#")
	if (i == 0)
		return ""
	line = substr(line, i + 1)
	sub(/^[ \t]+/, "", line)
	return toupper(substr(line, 1, 4))
}

BEGIN {
	n_expected = 0
	while ((getline line < expected) > 0)
		names[++n_expected] = line
	close(expected)
	CONTEXT_LINES = 8
	cur = ""
	nctx = 0
}

FNR == 1 { cut_off() }

{ sub(/\r$/, "") }

/^### cbmvm-begin / {
	cut_off()
	cur = $3
	begun[cur] = 1
	plan[cur] = -1
	npass[cur] = nfail[cur] = nskip[cur] = 0
	failed_lines[cur] = ""
	next
}

/^### cbmvm-end / {
	ended[$3] = 1
	rc[$3] = substr($4, 4) + 0
	secs[$3] = substr($5, 6) + 0
	timed_out[$3] = ($6 == "timeout")
	tail_lines[$3] = context()
	cur = ""
	next
}

/^### cbmvm-done$/ { next }

cur == "" { next }

/^1\.\.[0-9]+/ {
	if (plan[cur] < 0) {
		plan[cur] = substr($1, 4) + 0
		plan_skip[cur] = (directive($0) == "SKIP")
	}
	next
}

/^Bail out!/ { bailed[cur] = 1; next }

/^(not )?ok([ \t]|$)/ {
	d = directive($0)
	if (d == "SKIP" || d == "TODO") {
		nskip[cur]++
	} else if ($1 == "ok") {
		npass[cur]++
	} else {
		nfail[cur]++
		failed_lines[cur] = failed_lines[cur] context() "        " $0 "\n"
	}
	nctx = 0
	next
}

{ remember($0) }

END {
	cut_off()
	total_pass = total_fail = total_skip = 0
	for (i = 1; i <= n_expected; i++) {
		name = names[i]
		if (!(name in begun)) {
			printf "FAIL %-32s did not run\n", name
			total_fail++
			continue
		}
		p = npass[name]; f = nfail[name]; s = nskip[name]
		results = p + f + s
		problem = ""
		if (!(name in ended))
			problem = "did not finish"
		else if (timed_out[name])
			problem = "killed after " secs[name] " s"
		else if (bailed[name])
			problem = "bailed out"
		else if (plan[name] < 0)
			problem = "no TAP plan"
		else if (plan[name] == 0 && results == 0 && plan_skip[name])
			s++
		else if (plan[name] != results)
			problem = "planned " plan[name] " tests, " results " reported"
		else if (rc[name] != 0 && rc[name] != 4 && f == 0)
			problem = "exit status " rc[name] " with no failed test"
		if (problem != "")
			f++
		line = sprintf("pass=%d fail=%d", p, f)
		if (s)
			line = line sprintf(" skip=%d", s)
		if (name in ended)
			line = line sprintf(" (%d s)", secs[name])
		if (problem != "")
			line = line ": " problem
		printf "%-4s %-32s %s\n", f ? "FAIL" : "ok", name, line
		printf "%s", failed_lines[name]
		if (problem != "")
			printf "%s", tail_lines[name]
		total_pass += p; total_fail += f; total_skip += s
	}
	print "TOTALS", total_pass, total_fail, total_skip
}
