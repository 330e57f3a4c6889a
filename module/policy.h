/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm policies: what a window keeps and when a ring should be resized.
 *
 * Pure decisions over counters and records: nothing here locks, allocates
 * or evicts; conv.c asks and acts.
 */
#ifndef _CBM_POLICY_H
#define _CBM_POLICY_H

#include <linux/types.h>
#include <linux/cbm.h>

/* The window flags the kernel knows, for the ioctl and netlink alike */
#define CBM_WINDOW_FLAGS	CBM_WINDOW_TURNS

/**
 * struct cbm_window_count - what the window counts: the unpinned records
 * in a ring
 * @msgs: records
 * @turns: records with role %CBM_ROLE_USER
 * @bytes: payload bytes
 * @tokens: token counts summed
 */
struct cbm_window_count {
	u64 msgs;
	u64 turns;
	u64 bytes;
	u64 tokens;
};

/**
 * enum cbm_trim - why the window wants its oldest unpinned record gone
 * @CBM_TRIM_NONE: it may stay
 * @CBM_TRIM_LIMIT: a count, byte or token limit is exceeded
 * @CBM_TRIM_EXPIRED: it is older than the window's maximum age
 */
enum cbm_trim {
	CBM_TRIM_NONE,
	CBM_TRIM_LIMIT,
	CBM_TRIM_EXPIRED,
};

bool cbm_record_pinned(const struct cbm_record *rec);
void cbm_window_add(struct cbm_window_count *cnt,
		    const struct cbm_record *rec);
void cbm_window_sub(struct cbm_window_count *cnt,
		    const struct cbm_record *rec);
enum cbm_trim cbm_window_trim(const struct cbm_window *win,
			      const struct cbm_window_count *cnt,
			      const struct cbm_record *oldest, u64 now_ns);
u64 cbm_window_expiry(const struct cbm_window *win,
		      const struct cbm_record *oldest);

/**
 * struct cbm_autoresize_state - auto-resize settings and what it has seen
 * @cfg: the settings; @cfg.flags is 0 when disabled
 * @above_since: monotonic ns since when usage has been at or above the
 *               high-water mark, 0 if it is not
 * @below_since: likewise for at or below the low-water mark
 * @last_resize: monotonic ns of the last resize, 0 if none
 */
struct cbm_autoresize_state {
	struct cbm_autoresize cfg;
	u64 above_since;
	u64 below_since;
	u64 last_resize;
};

u64 cbm_autoresize_target(struct cbm_autoresize_state *st, u64 capacity,
			  u64 used, bool writer_waits, u64 now_ns);
void cbm_autoresize_resized(struct cbm_autoresize_state *st, u64 capacity,
			    u64 used, u64 now_ns);
u64 cbm_autoresize_deadline(const struct cbm_autoresize_state *st,
			    u64 capacity);

/**
 * cbm_window_active() - whether a window has any limit
 * @win: the window
 *
 * Return: false for a window that keeps everything.
 */
static inline bool cbm_window_active(const struct cbm_window *win)
{
	return win->max_msgs || win->max_bytes || win->max_tokens ||
	       win->max_age_ns;
}

/**
 * cbm_window_admits() - whether the window could ever hold a message
 * @win: the window
 * @len: the message's payload length
 * @tokens: its token count
 *
 * Return: false if the message alone passes the byte or token limit.
 */
static inline bool cbm_window_admits(const struct cbm_window *win, u32 len,
				     u32 tokens)
{
	return (!win->max_bytes || len <= win->max_bytes) &&
	       (!win->max_tokens || tokens <= win->max_tokens);
}

#endif /* _CBM_POLICY_H */
