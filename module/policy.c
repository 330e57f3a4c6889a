// SPDX-License-Identifier: GPL-2.0
/*
 * cbm policies: window limits and auto-resize decisions.
 */
#include <linux/math64.h>
#include <linux/limits.h>
#include <linux/minmax.h>
#include <linux/overflow.h>
#include <linux/time64.h>

#include "policy.h"

/**
 * cbm_record_pinned() - whether the window must leave a record alone
 * @rec: a message record
 *
 * Return: true if @rec is pinned.
 */
bool cbm_record_pinned(const struct cbm_record *rec)
{
	return rec->flags & CBM_MSG_PINNED;
}

/**
 * cbm_window_add() - count a record entering the window
 * @cnt: the counters
 * @rec: an unpinned record
 */
void cbm_window_add(struct cbm_window_count *cnt,
		    const struct cbm_record *rec)
{
	cnt->msgs++;
	cnt->turns += rec->role == CBM_ROLE_USER;
	cnt->bytes += rec->len;
	cnt->tokens += rec->tokens;
}

/**
 * cbm_window_sub() - uncount a record leaving the window
 * @cnt: the counters
 * @rec: an unpinned record counted by cbm_window_add()
 */
void cbm_window_sub(struct cbm_window_count *cnt,
		    const struct cbm_record *rec)
{
	cnt->msgs--;
	cnt->turns -= rec->role == CBM_ROLE_USER;
	cnt->bytes -= rec->len;
	cnt->tokens -= rec->tokens;
}

/**
 * cbm_window_trim() - whether the oldest unpinned record must go
 * @win: the window
 * @cnt: the unpinned records counted, @oldest included
 * @oldest: the oldest unpinned record
 * @now_ns: CLOCK_REALTIME now, in ns
 *
 * A turn starts at each user message: with %CBM_WINDOW_TURNS and k turns
 * counted, a record older than the k-th newest user message belongs to an
 * earlier turn, which is exactly when @oldest is not itself a user message.
 *
 * Return: why @oldest must go, or %CBM_TRIM_NONE.
 */
enum cbm_trim cbm_window_trim(const struct cbm_window *win,
			      const struct cbm_window_count *cnt,
			      const struct cbm_record *oldest, u64 now_ns)
{
	if (win->max_msgs) {
		if (!(win->flags & CBM_WINDOW_TURNS)) {
			if (cnt->msgs > win->max_msgs)
				return CBM_TRIM_LIMIT;
		} else if (cnt->turns > win->max_msgs ||
			   (cnt->turns == win->max_msgs &&
			    oldest->role != CBM_ROLE_USER)) {
			return CBM_TRIM_LIMIT;
		}
	}
	if (win->max_bytes && cnt->bytes > win->max_bytes)
		return CBM_TRIM_LIMIT;
	if (win->max_tokens && cnt->tokens > win->max_tokens)
		return CBM_TRIM_LIMIT;
	if (cbm_window_expiry(win, oldest) <= now_ns)
		return CBM_TRIM_EXPIRED;
	return CBM_TRIM_NONE;
}

/**
 * cbm_window_expiry() - when the oldest unpinned record expires
 * @win: the window
 * @oldest: the oldest unpinned record
 *
 * Return: CLOCK_REALTIME ns at which @oldest expires, U64_MAX if never.
 */
u64 cbm_window_expiry(const struct cbm_window *win,
		      const struct cbm_record *oldest)
{
	u64 at;

	if (!win->max_age_ns || check_add_overflow(oldest->ts_ns,
						   win->max_age_ns, &at))
		return U64_MAX;
	return at;
}

static u64 cbm_autoresize_period(const struct cbm_autoresize_state *st)
{
	return (u64)st->cfg.period_ms * NSEC_PER_MSEC;
}

/* Whether @since was long enough ago; 0 means the level does not hold */
static bool cbm_held_for(u64 since, u64 period, u64 now_ns)
{
	return since && now_ns - since >= period;
}

/* Note which mark usage is at, and since when */
static void cbm_autoresize_level(struct cbm_autoresize_state *st,
				 u64 capacity, u64 used, u64 now_ns)
{
	u64 pct = mul_u64_u64_div_u64(used, 100, capacity);

	if (pct >= st->cfg.high_pct) {
		st->below_since = 0;
		if (!st->above_since)
			st->above_since = now_ns;
	} else if (pct <= st->cfg.low_pct) {
		st->above_since = 0;
		if (!st->below_since)
			st->below_since = now_ns;
	} else {
		st->above_since = 0;
		st->below_since = 0;
	}
}

/**
 * cbm_autoresize_resized() - start over after a resize
 * @st: the state
 * @capacity: the ring's new size
 * @used: bytes in use
 * @now_ns: monotonic ns of the resize, never 0
 *
 * The levels are measured afresh against the new size, from now, so that
 * the next step (a ring may need several) comes due a period later even if
 * nothing else happens.
 */
void cbm_autoresize_resized(struct cbm_autoresize_state *st, u64 capacity,
			    u64 used, u64 now_ns)
{
	st->last_resize = now_ns;
	st->above_since = 0;
	st->below_since = 0;
	cbm_autoresize_level(st, capacity, used, now_ns);
}

/**
 * cbm_autoresize_target() - record the ring's usage and decide a resize
 * @st: the state, updated with the level @used is at
 * @capacity: the ring's size
 * @used: bytes in use
 * @writer_waits: a writer needs room it cannot get now
 * @now_ns: monotonic ns, never 0
 *
 * Grows (doubling) when usage has held at or above the high-water mark
 * for a period or a writer waits; shrinks (halving) when usage has held at
 * or below the low-water mark for a period; never more often than once a
 * period. Because the low mark is under half the high mark, a halved ring
 * is still under the high mark and a doubled one above the low mark: a
 * resize never sets up the opposite one.
 *
 * Return: the capacity to resize to, or 0 to leave it.
 */
u64 cbm_autoresize_target(struct cbm_autoresize_state *st, u64 capacity,
			  u64 used, bool writer_waits, u64 now_ns)
{
	const struct cbm_autoresize *cfg = &st->cfg;
	u64 period = cbm_autoresize_period(st);

	if (!(cfg->flags & CBM_AUTORESIZE_ON))
		return 0;
	cbm_autoresize_level(st, capacity, used, now_ns);
	if (st->last_resize && now_ns - st->last_resize < period)
		return 0;
	if (capacity < cfg->max_capacity &&
	    (writer_waits || cbm_held_for(st->above_since, period, now_ns)))
		return min_t(u64, capacity * 2, cfg->max_capacity);
	if (capacity > cfg->min_capacity &&
	    cbm_held_for(st->below_since, period, now_ns))
		return max_t(u64, capacity / 2, cfg->min_capacity);
	return 0;
}

/**
 * cbm_autoresize_deadline() - when cbm_autoresize_target() may next say
 * yes without new usage
 * @st: the state
 * @capacity: the ring's size
 *
 * Return: monotonic ns, or U64_MAX if only a change of usage can lead to a
 * resize.
 */
u64 cbm_autoresize_deadline(const struct cbm_autoresize_state *st,
			    u64 capacity)
{
	const struct cbm_autoresize *cfg = &st->cfg;
	u64 period = cbm_autoresize_period(st);
	u64 at = U64_MAX;

	if (!(cfg->flags & CBM_AUTORESIZE_ON))
		return U64_MAX;
	if (st->above_since && capacity < cfg->max_capacity)
		at = st->above_since + period;
	else if (st->below_since && capacity > cfg->min_capacity)
		at = st->below_since + period;
	if (at != U64_MAX && st->last_resize)
		at = max(at, st->last_resize + period);
	return at;
}
