/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm events: what the conversation layer tells the generic netlink
 * family (netlink.c) about changes, without knowing about netlink.
 *
 * Every function returns at once when nobody listens to the events
 * group; callers that must do work to produce an event (the eviction
 * rate limit) ask cbm_events_wanted() first. The functions may sleep:
 * they allocate with GFP_KERNEL and take only netlink's own locks and
 * netlink.c's cbm_nl_lock, inside any cbm lock, never the other way
 * round (see netlink.c).
 */
#ifndef _CBM_EVENTS_H
#define _CBM_EVENTS_H

#include <linux/types.h>

struct cbm_conv;

bool cbm_events_wanted(void);
void cbm_event_created(struct cbm_conv *conv);
void cbm_event_resized(const struct cbm_conv *conv);
void cbm_event_window(const struct cbm_conv *conv);
void cbm_event_unlinked(const struct cbm_conv *conv);
void cbm_event_evicted(const struct cbm_conv *conv, u64 count);

#endif /* _CBM_EVENTS_H */
