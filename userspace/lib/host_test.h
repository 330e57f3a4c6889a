/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * host_test.h - checks and a TAP runner for the host unit tests under
 * userspace/, which make check runs before the VMs (userspace/run_list).
 * A failed check prints its line and marks its test "not ok"; the rest of
 * the test still runs, so one run shows every failure.
 */
#ifndef HOST_TEST_H
#define HOST_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/**
 * struct host_test - one test of a host suite
 * @name: its TAP name
 * @fn: the test; it fails if any check in it fails
 */
struct host_test {
	const char *name;
	void (*fn)(void);
};

/* Failed checks in the test that runs */
static int failures;

static inline void __attribute__((format(printf, 3, 4)))
check(int ok, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	printf("# line %d: ", line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

#define CHECK(cond) check(!!(cond), __LINE__, "%s", #cond)
/* Each side evaluated once: @got is often a call with side effects */
#define CHECK_EQ(want, got)						\
	do {								\
		long long w_ = (long long)(want), g_ = (long long)(got); \
									\
		check(w_ == g_, __LINE__, "%s == %s: %lld != %lld",	\
		      #want, #got, w_, g_);				\
	} while (0)
#define CHECK_STR(want, got)						\
	do {								\
		const char *w_ = (want), *g_ = (got);			\
									\
		check(g_ && !strcmp(w_, g_), __LINE__, "%s == %s: '%s'", \
		      #want, #got, g_ ? g_ : "NULL");			\
	} while (0)

/* Runs @n tests and prints TAP; returns the exit status of the suite */
static inline int host_test_run(const struct host_test *tests, unsigned int n)
{
	unsigned int i, failed = 0;

	printf("TAP version 13\n1..%u\n", n);
	for (i = 0; i < n; i++) {
		failures = 0;
		tests[i].fn();
		printf("%sok %u %s\n", failures ? "not " : "", i + 1,
		       tests[i].name);
		failed += !!failures;
	}
	printf("# %u passed, %u failed\n", n - failed, failed);
	return failed ? 1 : 0;
}

#endif /* HOST_TEST_H */
