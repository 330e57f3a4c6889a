// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the cbm policies: what a window keeps and when
 * auto-resize acts. Built into cbm.ko when the kernel has CONFIG_KUNIT.
 */
#include <kunit/test.h>
#include <linux/time64.h>

#include "policy.h"

#define T0		(1000 * NSEC_PER_SEC)
#define PERIOD_MS	100
#define PERIOD_NS	(PERIOD_MS * NSEC_PER_MSEC)

static struct cbm_record cbm_test_rec(u32 role, u32 len, u32 tokens, u64 ts)
{
	return (struct cbm_record){
		.type = CBM_RECORD_MSG, .role = role, .len = len,
		.tokens = tokens, .ts_ns = ts,
	};
}

static void cbm_window_count_test(struct kunit *test)
{
	struct cbm_record u = cbm_test_rec(CBM_ROLE_USER, 10, 3, T0);
	struct cbm_record a = cbm_test_rec(CBM_ROLE_ASSISTANT, 20, 5, T0);
	struct cbm_window_count cnt = {};

	cbm_window_add(&cnt, &u);
	cbm_window_add(&cnt, &a);
	KUNIT_EXPECT_EQ(test, 2, cnt.msgs);
	KUNIT_EXPECT_EQ(test, 1, cnt.turns);
	KUNIT_EXPECT_EQ(test, 30, cnt.bytes);
	KUNIT_EXPECT_EQ(test, 8, cnt.tokens);
	cbm_window_sub(&cnt, &u);
	KUNIT_EXPECT_EQ(test, 1, cnt.msgs);
	KUNIT_EXPECT_EQ(test, 0, cnt.turns);
	KUNIT_EXPECT_EQ(test, 20, cnt.bytes);
	KUNIT_EXPECT_EQ(test, 5, cnt.tokens);

	u.flags = CBM_MSG_PINNED | 0x10000;
	KUNIT_EXPECT_TRUE(test, cbm_record_pinned(&u));
	KUNIT_EXPECT_FALSE(test, cbm_record_pinned(&a));
}

static void cbm_window_limits_test(struct kunit *test)
{
	struct cbm_record oldest = cbm_test_rec(CBM_ROLE_USER, 10, 4, T0);
	struct cbm_window_count cnt = { .msgs = 3, .turns = 2, .bytes = 30,
					.tokens = 12 };
	struct cbm_window win = {};

	KUNIT_EXPECT_FALSE(test, cbm_window_active(&win));
	KUNIT_EXPECT_EQ(test, CBM_TRIM_NONE,
			cbm_window_trim(&win, &cnt, &oldest, T0));
	win.max_msgs = 3;
	KUNIT_EXPECT_TRUE(test, cbm_window_active(&win));
	KUNIT_EXPECT_EQ(test, CBM_TRIM_NONE,
			cbm_window_trim(&win, &cnt, &oldest, T0));
	win.max_msgs = 2;
	KUNIT_EXPECT_EQ(test, CBM_TRIM_LIMIT,
			cbm_window_trim(&win, &cnt, &oldest, T0));
	win = (struct cbm_window){ .max_bytes = 30 };
	KUNIT_EXPECT_EQ(test, CBM_TRIM_NONE,
			cbm_window_trim(&win, &cnt, &oldest, T0));
	win.max_bytes = 29;
	KUNIT_EXPECT_EQ(test, CBM_TRIM_LIMIT,
			cbm_window_trim(&win, &cnt, &oldest, T0));
	win = (struct cbm_window){ .max_tokens = 11 };
	KUNIT_EXPECT_EQ(test, CBM_TRIM_LIMIT,
			cbm_window_trim(&win, &cnt, &oldest, T0));

	KUNIT_EXPECT_TRUE(test, cbm_window_admits(&win, 1000, 11));
	KUNIT_EXPECT_FALSE(test, cbm_window_admits(&win, 1, 12));
	win = (struct cbm_window){ .max_bytes = 8 };
	KUNIT_EXPECT_TRUE(test, cbm_window_admits(&win, 8, 99));
	KUNIT_EXPECT_FALSE(test, cbm_window_admits(&win, 9, 0));
}

/* k turns: older turns go, and so does what came before the k-th one */
static void cbm_window_turns_test(struct kunit *test)
{
	struct cbm_record user = cbm_test_rec(CBM_ROLE_USER, 1, 0, T0);
	struct cbm_record asst = cbm_test_rec(CBM_ROLE_ASSISTANT, 1, 0, T0);
	struct cbm_window win = { .flags = CBM_WINDOW_TURNS, .max_msgs = 2 };
	struct cbm_window_count cnt = { .msgs = 5, .turns = 2 };

	KUNIT_EXPECT_EQ(test, CBM_TRIM_NONE,
			cbm_window_trim(&win, &cnt, &user, T0));
	KUNIT_EXPECT_EQ(test, CBM_TRIM_LIMIT,
			cbm_window_trim(&win, &cnt, &asst, T0));
	cnt.turns = 3;
	KUNIT_EXPECT_EQ(test, CBM_TRIM_LIMIT,
			cbm_window_trim(&win, &cnt, &user, T0));
	cnt.turns = 1;
	KUNIT_EXPECT_EQ(test, CBM_TRIM_NONE,
			cbm_window_trim(&win, &cnt, &asst, T0));
}

static void cbm_window_age_test(struct kunit *test)
{
	struct cbm_record rec = cbm_test_rec(CBM_ROLE_USER, 1, 0, T0);
	struct cbm_window win = { .max_age_ns = NSEC_PER_SEC };
	struct cbm_window_count cnt = { .msgs = 1, .turns = 1, .bytes = 1 };

	KUNIT_EXPECT_EQ(test, T0 + NSEC_PER_SEC,
			cbm_window_expiry(&win, &rec));
	KUNIT_EXPECT_EQ(test, CBM_TRIM_NONE,
			cbm_window_trim(&win, &cnt, &rec, T0 + NSEC_PER_SEC - 1));
	KUNIT_EXPECT_EQ(test, CBM_TRIM_EXPIRED,
			cbm_window_trim(&win, &cnt, &rec, T0 + NSEC_PER_SEC));

	/* A timestamp near the end of time never expires, never wraps */
	rec.ts_ns = U64_MAX - 1;
	KUNIT_EXPECT_EQ(test, U64_MAX, cbm_window_expiry(&win, &rec));
	win.max_age_ns = 0;
	KUNIT_EXPECT_EQ(test, U64_MAX, cbm_window_expiry(&win, &rec));
}

static struct cbm_autoresize_state cbm_test_auto(void)
{
	return (struct cbm_autoresize_state){
		.cfg = {
			.flags = CBM_AUTORESIZE_ON,
			.min_capacity = 4096, .max_capacity = 65536,
			.high_pct = 80, .low_pct = 20, .period_ms = PERIOD_MS,
		},
	};
}

static void cbm_autoresize_grow_test(struct kunit *test)
{
	struct cbm_autoresize_state st = cbm_test_auto();

	/* High usage must hold for a whole period */
	KUNIT_EXPECT_EQ(test, 0,
			cbm_autoresize_target(&st, 16384, 16000, false, T0));
	KUNIT_EXPECT_EQ(test, T0 + PERIOD_NS,
			cbm_autoresize_deadline(&st, 16384));
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 16384, 16000,
						       false,
						       T0 + PERIOD_NS - 1));
	KUNIT_EXPECT_EQ(test, 32768, cbm_autoresize_target(&st, 16384, 16000,
							   false,
							   T0 + PERIOD_NS));
	/* Never above the maximum; nothing due at it */
	KUNIT_EXPECT_EQ(test, 65536,
			cbm_autoresize_target(&st, 49152, 49152, true,
					      T0 + PERIOD_NS));
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 65536, 65536, true,
						       T0 + PERIOD_NS));
	KUNIT_EXPECT_EQ(test, U64_MAX, cbm_autoresize_deadline(&st, 65536));

	/* A waiting writer grows at once, but not within a period of the last */
	st = cbm_test_auto();
	KUNIT_EXPECT_EQ(test, 8192,
			cbm_autoresize_target(&st, 4096, 100, true, T0));
	st.last_resize = T0;
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 8192, 8192, true,
						       T0 + PERIOD_NS - 1));
	KUNIT_EXPECT_EQ(test, 16384, cbm_autoresize_target(&st, 8192, 8192,
							   true,
							   T0 + PERIOD_NS));

	st.cfg.flags = 0;
	KUNIT_EXPECT_EQ(test, 0,
			cbm_autoresize_target(&st, 4096, 4096, true, T0));
	KUNIT_EXPECT_EQ(test, U64_MAX, cbm_autoresize_deadline(&st, 4096));
}

static void cbm_autoresize_shrink_test(struct kunit *test)
{
	struct cbm_autoresize_state st = cbm_test_auto();

	KUNIT_EXPECT_EQ(test, 0,
			cbm_autoresize_target(&st, 65536, 1000, false, T0));
	/* Usage between the marks resets the clock */
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 65536, 30000,
						       false, T0 + 1));
	KUNIT_EXPECT_EQ(test, U64_MAX, cbm_autoresize_deadline(&st, 65536));
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 65536, 1000,
						       false, T0 + 2));
	KUNIT_EXPECT_EQ(test, 32768,
			cbm_autoresize_target(&st, 65536, 1000, false,
					      T0 + 2 + PERIOD_NS));
	/* After a resize the level is measured afresh: the next step is due */
	cbm_autoresize_resized(&st, 32768, 1000, T0 + 3 * PERIOD_NS);
	KUNIT_EXPECT_EQ(test, T0 + 4 * PERIOD_NS,
			cbm_autoresize_deadline(&st, 32768));
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 32768, 1000, false,
						       T0 + 4 * PERIOD_NS - 1));
	KUNIT_EXPECT_EQ(test, 16384,
			cbm_autoresize_target(&st, 32768, 1000, false,
					      T0 + 4 * PERIOD_NS));
	/* Never below the minimum */
	KUNIT_EXPECT_EQ(test, 0, cbm_autoresize_target(&st, 4096, 0, false,
						       T0 + 10 * PERIOD_NS));
	KUNIT_EXPECT_EQ(test, U64_MAX, cbm_autoresize_deadline(&st, 4096));
}

static struct kunit_case cbm_policy_cases[] = {
	KUNIT_CASE(cbm_window_count_test),
	KUNIT_CASE(cbm_window_limits_test),
	KUNIT_CASE(cbm_window_turns_test),
	KUNIT_CASE(cbm_window_age_test),
	KUNIT_CASE(cbm_autoresize_grow_test),
	KUNIT_CASE(cbm_autoresize_shrink_test),
	{}
};

static struct kunit_suite cbm_policy_suite = {
	.name = "cbm_policy",
	.test_cases = cbm_policy_cases,
};

kunit_test_suite(cbm_policy_suite);
