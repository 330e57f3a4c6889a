// SPDX-License-Identifier: GPL-2.0
/*
 * cbm generic netlink family "cbm": reports named conversations, changes
 * them for their owners and multicasts events. The family is specified in
 * Documentation/netlink/specs/cbm.yaml; the policies and the op table
 * below mirror it in the layout the YAML code generator of later kernels
 * produces, and the handlers are written by hand.
 *
 * The family lives in the initial network namespace only (netnsok is
 * false): conversations belong to the whole machine, not to a namespace.
 * Numbers are translated into the caller's user and pid namespaces, as
 * CBM_IOC_INFO translates them.
 *
 * Locking. The family has parallel_ops, so genetlink's genl_mutex is
 * never held around our handlers, and nothing of ours waits for it.
 * Handlers and dumps take cbm_ns_lock (to find or collect names) and,
 * separately, a conversation's lock (to report or change it), in conv.c's
 * order. Events are sent with a conversation's lock held (a resize, a new
 * window, evictions) or with cbm_ns_lock held (creation, unlink: so that
 * they reach listeners in the order the name saw them); sending takes
 * cbm_nl_lock for reading, then only netlink's own locks
 * (netlink_broadcast() queues the message on the listeners' sockets),
 * none of which is ever held while a cbm lock is taken. A dump runs under
 * its socket's cb_mutex and takes cbm_ns_lock and conversation locks
 * inside it; a sender never takes a socket's cb_mutex, so the two cannot
 * wait for each other. cbm_nl_lock only orders unload after the events in
 * flight: a conversation's work item sends events on its own and may run
 * while the family is being unregistered.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/genetlink.h>
#include <net/netlink.h>

#include "conv.h"
#include "events.h"
#include "netlink.h"

/* Index of the events group in cbm_nl_mcgrps[] */
enum cbm_nl_mcgrp {
	CBM_NL_MCGRP_EVENTS,
};

/* Conversations a dump collects at once, in name order */
#define CBM_NL_DUMP_BATCH	16

static struct genl_family cbm_nl_family;

/* Held for writing to stop events before the family goes away */
static DECLARE_RWSEM(cbm_nl_lock);
/* The family is registered; written under cbm_nl_lock */
static bool cbm_nl_live;

/*
 * Names are checked as CBM_IOC_BIND checks them, and must fill the
 * attribute, NUL included, as nla_put_string() puts them. The length is
 * checked here, not by the policy: the core fails a long string with
 * ERANGE, and every bad name is EINVAL.
 */
static int cbm_nl_validate_name(const struct nlattr *attr,
				struct netlink_ext_ack *extack)
{
	const char *name = nla_data(attr);
	int len = nla_len(attr);

	/* NLA_NUL_STRING has found a NUL, so strnlen() stops before len */
	if (len <= CBM_NAME_MAX && strnlen(name, len) == len - 1 &&
	    cbm_conv_name_valid(name))
		return 0;
	NL_SET_ERR_MSG_ATTR(extack, attr, "invalid conversation name");
	return -EINVAL;
}

/* Common nested types */
static const struct nla_policy cbm_window_nl_policy[CBM_NL_WINDOW_A_MAX + 1] = {
	[CBM_NL_WINDOW_A_FLAGS] = NLA_POLICY_MASK(NLA_U32, CBM_WINDOW_FLAGS),
	[CBM_NL_WINDOW_A_MAX_MSGS] = { .type = NLA_U64, },
	[CBM_NL_WINDOW_A_MAX_BYTES] = { .type = NLA_U64, },
	[CBM_NL_WINDOW_A_MAX_TOKENS] = { .type = NLA_U64, },
	[CBM_NL_WINDOW_A_MAX_AGE_NS] = { .type = NLA_U64, },
};

/* CBM_NL_CMD_CONV_GET - do, dump */
static const struct nla_policy cbm_conv_get_nl_policy[CBM_NL_A_NAME + 1] = {
	[CBM_NL_A_NAME] = NLA_POLICY_VALIDATE_FN(NLA_NUL_STRING,
						 cbm_nl_validate_name),
};

/* CBM_NL_CMD_CONV_UNLINK - do */
static const struct nla_policy cbm_conv_unlink_nl_policy[CBM_NL_A_NAME + 1] = {
	[CBM_NL_A_NAME] = NLA_POLICY_VALIDATE_FN(NLA_NUL_STRING,
						 cbm_nl_validate_name),
};

/* CBM_NL_CMD_CONV_SET_WINDOW - do */
static const struct nla_policy
cbm_conv_set_window_nl_policy[CBM_NL_A_WINDOW + 1] = {
	[CBM_NL_A_NAME] = NLA_POLICY_VALIDATE_FN(NLA_NUL_STRING,
						 cbm_nl_validate_name),
	[CBM_NL_A_WINDOW] = NLA_POLICY_NESTED(cbm_window_nl_policy),
};

/* CBM_NL_CMD_CONV_RESIZE - do */
static const struct nla_policy
cbm_conv_resize_nl_policy[CBM_NL_A_CAPACITY + 1] = {
	[CBM_NL_A_NAME] = NLA_POLICY_VALIDATE_FN(NLA_NUL_STRING,
						 cbm_nl_validate_name),
	[CBM_NL_A_CAPACITY] = { .type = NLA_U64, },
};

static int cbm_nl_put_u64(struct sk_buff *skb, int type, u64 value)
{
	return nla_put_u64_64bit(skb, type, value, CBM_NL_A_PAD);
}

static int cbm_nl_put_window(struct sk_buff *skb, const struct cbm_window *win)
{
	struct nlattr *nest = nla_nest_start(skb, CBM_NL_A_WINDOW);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, CBM_NL_WINDOW_A_FLAGS, win->flags) ||
	    nla_put_u64_64bit(skb, CBM_NL_WINDOW_A_MAX_MSGS, win->max_msgs,
			      CBM_NL_WINDOW_A_PAD) ||
	    nla_put_u64_64bit(skb, CBM_NL_WINDOW_A_MAX_BYTES, win->max_bytes,
			      CBM_NL_WINDOW_A_PAD) ||
	    nla_put_u64_64bit(skb, CBM_NL_WINDOW_A_MAX_TOKENS, win->max_tokens,
			      CBM_NL_WINDOW_A_PAD) ||
	    nla_put_u64_64bit(skb, CBM_NL_WINDOW_A_MAX_AGE_NS, win->max_age_ns,
			      CBM_NL_WINDOW_A_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int cbm_nl_put_autoresize(struct sk_buff *skb,
				 const struct cbm_autoresize *ar)
{
	struct nlattr *nest = nla_nest_start(skb, CBM_NL_A_AUTORESIZE);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, CBM_NL_AUTORESIZE_A_FLAGS, ar->flags) ||
	    nla_put_u64_64bit(skb, CBM_NL_AUTORESIZE_A_MIN_CAPACITY,
			      ar->min_capacity, CBM_NL_AUTORESIZE_A_PAD) ||
	    nla_put_u64_64bit(skb, CBM_NL_AUTORESIZE_A_MAX_CAPACITY,
			      ar->max_capacity, CBM_NL_AUTORESIZE_A_PAD) ||
	    nla_put_u32(skb, CBM_NL_AUTORESIZE_A_HIGH_PCT, ar->high_pct) ||
	    nla_put_u32(skb, CBM_NL_AUTORESIZE_A_LOW_PCT, ar->low_pct) ||
	    nla_put_u32(skb, CBM_NL_AUTORESIZE_A_PERIOD_MS, ar->period_ms)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/**
 * struct cbm_nl_fill - a conversation being put into a message
 * @skb: the message
 * @details: put the counters, the settings and the readers, not only
 *           what ``ls -l`` would show of a file
 * @truncate: readers that do not fit may be left out (the conversation is
 *            alone in the message, so a bigger one would not help)
 * @truncated: some were
 */
struct cbm_nl_fill {
	struct sk_buff *skb;
	bool details;
	bool truncate;
	bool truncated;
};

static int cbm_nl_fill_conv(void *ctx, const struct cbm_conv_stats *st)
{
	const struct cbm_nl_fill *fill = ctx;
	const struct cbm_info *info = &st->info;
	struct sk_buff *skb = fill->skb;

	if (nla_put_string(skb, CBM_NL_A_NAME, info->name) ||
	    nla_put_u32(skb, CBM_NL_A_FLAGS, info->flags) ||
	    nla_put_u32(skb, CBM_NL_A_UID, info->uid) ||
	    nla_put_u32(skb, CBM_NL_A_GID, info->gid) ||
	    nla_put_u32(skb, CBM_NL_A_MODE, info->mode) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_CAPACITY, info->capacity))
		return -EMSGSIZE;
	if (!fill->details)
		return nla_put_flag(skb, CBM_NL_A_RESTRICTED) ? -EMSGSIZE : 0;
	if (cbm_nl_put_u64(skb, CBM_NL_A_USED, info->used) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_MSGS, info->msgs) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_FIRST_SEQ, info->first_seq) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_NEXT_SEQ, info->next_seq) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_APPENDED, st->appended) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_EVICTED, info->evicted) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_EXPIRED, info->expired) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_LOST, st->lost) ||
	    nla_put_u32(skb, CBM_NL_A_READERS, info->readers) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_RESIZES, info->resizes) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_PINNED, info->pinned) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_PINNED_BYTES, info->pinned_bytes) ||
	    nla_put_u32(skb, CBM_NL_A_MAX_MSG_SIZE, info->max_msg_size) ||
	    cbm_nl_put_window(skb, &st->win) ||
	    cbm_nl_put_autoresize(skb, &st->autoresize))
		return -EMSGSIZE;
	return 0;
}

static int cbm_nl_fill_reader(void *ctx, const struct cbm_reader_stats *rs)
{
	struct cbm_nl_fill *fill = ctx;
	struct sk_buff *skb = fill->skb;
	struct nlattr *nest;

	/* Who reads what is the conversation's readers' business */
	if (!fill->details)
		return 1;
	nest = nla_nest_start(skb, CBM_NL_A_READER);
	if (!nest)
		goto full;
	if (nla_put_u32(skb, CBM_NL_READER_A_PID, rs->pid) ||
	    nla_put_u32(skb, CBM_NL_READER_A_FLAGS, rs->flags) ||
	    nla_put_u64_64bit(skb, CBM_NL_READER_A_CURSOR, rs->cursor,
			      CBM_NL_READER_A_PAD) ||
	    nla_put_u64_64bit(skb, CBM_NL_READER_A_LAG, rs->lag,
			      CBM_NL_READER_A_PAD) ||
	    nla_put_u64_64bit(skb, CBM_NL_READER_A_LOST, rs->lost,
			      CBM_NL_READER_A_PAD))
		goto cancel;
	nla_nest_end(skb, nest);
	/* Keep room for the flag that says a reader was left out */
	if (skb_tailroom(skb) >= nla_total_size(0))
		return 0;
cancel:
	nla_nest_cancel(skb, nest);
full:
	if (!fill->truncate)
		return -EMSGSIZE;
	fill->truncated = true;
	return 1;
}

static const struct cbm_report_ops cbm_nl_report_ops = {
	.conv = cbm_nl_fill_conv,
	.reader = cbm_nl_fill_reader,
};

/*
 * Put a conversation's attributes and, with @details, its readers into
 * @skb; with @init_ns, ids as the initial namespaces see them
 */
static int cbm_nl_put_conv(struct sk_buff *skb, struct cbm_conv *conv,
			   bool details, bool truncate, bool init_ns)
{
	struct cbm_nl_fill fill = {
		.skb = skb, .details = details, .truncate = truncate,
	};
	int ret;

	ret = cbm_conv_report(conv, &cbm_nl_report_ops, &fill, init_ns);
	if (ret < 0)
		return ret;
	if (fill.truncated &&
	    nla_put_flag(skb, CBM_NL_A_READERS_TRUNCATED))
		return -EMSGSIZE;
	return 0;
}

/* Append a whole message describing @conv to @skb, or nothing */
static int cbm_nl_conv_msg(struct sk_buff *skb, struct cbm_conv *conv,
			   u32 portid, u32 seq, int flags, u8 cmd,
			   bool details, bool truncate)
{
	void *hdr;
	int err;

	hdr = genlmsg_put(skb, portid, seq, &cbm_nl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	err = cbm_nl_put_conv(skb, conv, details, truncate, false);
	if (err) {
		genlmsg_cancel(skb, hdr);
		return err;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/*
 * The owner, whoever may read a conversation and an administrator see
 * all of it; others see what ls -l shows of a file (as for POSIX message
 * queues, whose names anyone may list but whose state only readers see)
 */
static bool cbm_nl_details(struct sk_buff *skb, const struct cbm_conv *conv)
{
	return cbm_conv_may_read(conv) || netlink_capable(skb, CAP_SYS_ADMIN);
}

/* Reply to a request with @conv's state */
static int cbm_nl_reply(struct sk_buff *skb, struct cbm_conv *conv,
			struct genl_info *info, u8 cmd)
{
	struct sk_buff *msg;
	int err;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	err = cbm_nl_conv_msg(msg, conv, info->snd_portid, info->snd_seq, 0,
			      cmd, cbm_nl_details(skb, conv), true);
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

/* The conversation a request names, with a reference */
static struct cbm_conv *cbm_nl_conv(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[CBM_NL_A_NAME];
	struct cbm_conv *conv;

	if (GENL_REQ_ATTR_CHECK(info, CBM_NL_A_NAME))
		return ERR_PTR(-EINVAL);
	conv = cbm_conv_find(nla_data(attr));
	if (!conv) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "no such conversation");
		return ERR_PTR(-ENOENT);
	}
	return conv;
}

/*
 * As for the ioctls, the owner or an administrator may change a
 * conversation for everybody. The capability must be the sender's and
 * the socket opener's both (netlink_capable()), so that a socket passed
 * to an unprivileged process confers nothing.
 */
static int cbm_nl_may_change(struct sk_buff *skb, struct genl_info *info,
			     const struct cbm_conv *conv)
{
	if (uid_eq(current_fsuid(), conv->uid) ||
	    netlink_capable(skb, CAP_SYS_ADMIN))
		return 0;
	GENL_SET_ERR_MSG(info, "only the owner or CAP_SYS_ADMIN may change it");
	return -EPERM;
}

static int cbm_nl_conv_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct cbm_conv *conv = cbm_nl_conv(info);
	int err;

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	err = cbm_nl_reply(skb, conv, info, CBM_NL_CMD_CONV_GET);
	cbm_conv_put(conv);
	return err;
}

/**
 * struct cbm_nl_dump - where a dump resumes
 * @last: the last name reported; the next part starts after it in
 *        strcmp() order, so conversations unlinked or created between
 *        parts cannot make it repeat or skip one that stayed
 */
struct cbm_nl_dump {
	char last[CBM_NAME_MAX];
};

static int cbm_nl_conv_get_start(struct netlink_callback *cb)
{
	struct cbm_nl_dump *dump = kzalloc(sizeof(*dump), GFP_KERNEL);

	if (!dump)
		return -ENOMEM;
	cb->args[0] = (long)dump;
	return 0;
}

static int cbm_nl_conv_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct cbm_nl_dump *dump = (struct cbm_nl_dump *)cb->args[0];
	struct cbm_conv *convs[CBM_NL_DUMP_BATCH];
	unsigned int n, i;
	int err = 0;

	while (!err &&
	       (n = cbm_conv_collect(dump->last, convs, ARRAY_SIZE(convs)))) {
		for (i = 0; i < n; i++) {
			/* Alone in a message, a conversation may drop readers */
			if (!err)
				err = cbm_nl_conv_msg(skb, convs[i],
						      NETLINK_CB(cb->skb).portid,
						      cb->nlh->nlmsg_seq,
						      NLM_F_MULTI,
						      CBM_NL_CMD_CONV_GET,
						      cbm_nl_details(cb->skb,
								     convs[i]),
						      !skb->len);
			if (!err)
				strscpy(dump->last, convs[i]->name,
					sizeof(dump->last));
			cbm_conv_put(convs[i]);
		}
	}
	/* A full message ends this part; 0 (nothing left) ends the dump */
	return skb->len ? skb->len : err;
}

static int cbm_nl_conv_get_done(struct netlink_callback *cb)
{
	kfree((struct cbm_nl_dump *)cb->args[0]);
	return 0;
}

static int cbm_nl_conv_unlink_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct cbm_conv *conv = cbm_nl_conv(info);
	int err = 0;

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	/*
	 * As CBM_IOC_UNLINK: ``default'' is never unlinked, whoever asks, and
	 * a caller who may not unlink gets EACCES, as from mq_unlink()
	 */
	if (conv->flags & CBM_CONV_DEFAULT)
		err = -EBUSY;
	else if (cbm_nl_may_change(skb, info, conv))
		err = -EACCES;
	if (!err)
		err = cbm_conv_remove(conv);
	cbm_conv_put(conv);
	return err;
}

static u64 cbm_nl_get_u64(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_u64(tb[type]) : 0;
}

static int cbm_nl_conv_set_window_doit(struct sk_buff *skb,
				       struct genl_info *info)
{
	struct nlattr *tb[CBM_NL_WINDOW_A_MAX + 1];
	struct cbm_window win = {};
	struct cbm_conv *conv;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, CBM_NL_A_WINDOW))
		return -EINVAL;
	err = nla_parse_nested(tb, CBM_NL_WINDOW_A_MAX,
			       info->attrs[CBM_NL_A_WINDOW],
			       cbm_window_nl_policy, info->extack);
	if (err)
		return err;
	if (tb[CBM_NL_WINDOW_A_FLAGS])
		win.flags = nla_get_u32(tb[CBM_NL_WINDOW_A_FLAGS]);
	win.max_msgs = cbm_nl_get_u64(tb, CBM_NL_WINDOW_A_MAX_MSGS);
	win.max_bytes = cbm_nl_get_u64(tb, CBM_NL_WINDOW_A_MAX_BYTES);
	win.max_tokens = cbm_nl_get_u64(tb, CBM_NL_WINDOW_A_MAX_TOKENS);
	win.max_age_ns = cbm_nl_get_u64(tb, CBM_NL_WINDOW_A_MAX_AGE_NS);

	conv = cbm_nl_conv(info);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	err = cbm_nl_may_change(skb, info, conv);
	if (!err)
		err = cbm_conv_set_window(conv, &win);
	cbm_conv_put(conv);
	return err;
}

static int cbm_nl_conv_resize_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct cbm_conv *conv;
	u64 capacity, evicted;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, CBM_NL_A_CAPACITY))
		return -EINVAL;
	capacity = nla_get_u64(info->attrs[CBM_NL_A_CAPACITY]);

	conv = cbm_nl_conv(info);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	err = cbm_nl_may_change(skb, info, conv);
	if (!err)
		err = cbm_conv_resize(conv, &capacity, &evicted);
	if (!err)
		err = cbm_nl_reply(skb, conv, info, CBM_NL_CMD_CONV_RESIZE);
	cbm_conv_put(conv);
	return err;
}

/* Ops table for cbm */
static const struct genl_ops cbm_nl_ops[] = {
	{
		.cmd	= CBM_NL_CMD_CONV_GET,
		.doit	= cbm_nl_conv_get_doit,
		.start	= cbm_nl_conv_get_start,
		.dumpit	= cbm_nl_conv_get_dumpit,
		.done	= cbm_nl_conv_get_done,
		.policy	= cbm_conv_get_nl_policy,
		.maxattr = CBM_NL_A_NAME,
	},
	{
		.cmd	= CBM_NL_CMD_CONV_UNLINK,
		.doit	= cbm_nl_conv_unlink_doit,
		.policy	= cbm_conv_unlink_nl_policy,
		.maxattr = CBM_NL_A_NAME,
	},
	{
		.cmd	= CBM_NL_CMD_CONV_SET_WINDOW,
		.doit	= cbm_nl_conv_set_window_doit,
		.policy	= cbm_conv_set_window_nl_policy,
		.maxattr = CBM_NL_A_WINDOW,
	},
	{
		.cmd	= CBM_NL_CMD_CONV_RESIZE,
		.doit	= cbm_nl_conv_resize_doit,
		.policy	= cbm_conv_resize_nl_policy,
		.maxattr = CBM_NL_A_CAPACITY,
	},
};

/*
 * Events tell of every conversation, private ones included, as they
 * happen: listening takes CAP_SYS_ADMIN, as changing them all would
 */
static const struct genl_multicast_group cbm_nl_mcgrps[] = {
	[CBM_NL_MCGRP_EVENTS] = {
		.name = CBM_GENL_MCGRP_EVENTS,
		.flags = GENL_MCAST_CAP_SYS_ADMIN,
	},
};

/*
 * resv_start_op is left at 0, as a new family should: every command then
 * gets the strict header checks and strict attribute validation.
 */
static struct genl_family cbm_nl_family = {
	.name		= CBM_GENL_NAME,
	.version	= CBM_GENL_VERSION,
	.netnsok	= false,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= cbm_nl_ops,
	.n_ops		= ARRAY_SIZE(cbm_nl_ops),
	.mcgrps		= cbm_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(cbm_nl_mcgrps),
};

/**
 * cbm_events_wanted() - whether anybody listens to the events group
 *
 * Return: true if an event would reach somebody.
 */
bool cbm_events_wanted(void)
{
	return READ_ONCE(cbm_nl_live) &&
	       genl_has_listeners(&cbm_nl_family, &init_net,
				  CBM_NL_MCGRP_EVENTS) > 0;
}

/*
 * A new event about @conv, or NULL if nobody listens, it is anonymous or
 * its name is gone: after the unlink event, the name may be another's
 */
static struct sk_buff *cbm_nl_event_new(const struct cbm_conv *conv,
					u32 event, void **hdr)
{
	/*
	 * Every event but a creation carries its type, the name and two
	 * counters or a window: a small skb takes a small share of each
	 * listener's receive buffer
	 */
	size_t size = event == CBM_NL_EVENT_CREATED ? NLMSG_GOODSIZE :
		      nla_total_size(sizeof(u32)) +
		      nla_total_size(CBM_NAME_MAX) +
		      2 * nla_total_size_64bit(sizeof(u64)) +
		      nla_total_size(0) + nla_total_size(sizeof(u32)) +
		      4 * nla_total_size_64bit(sizeof(u64));
	struct sk_buff *skb;

	if ((conv->flags & CBM_CONV_ANON) || !cbm_events_wanted() ||
	    (event != CBM_NL_EVENT_UNLINKED && READ_ONCE(conv->unlinked)))
		return NULL;
	skb = genlmsg_new(size, GFP_KERNEL);
	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &cbm_nl_family, 0, CBM_NL_CMD_EVENT);
	if (!*hdr || nla_put_u32(skb, CBM_NL_A_EVENT, event)) {
		nlmsg_free(skb);
		return NULL;
	}
	return skb;
}

/* Finish and multicast an event, unless the family is going away */
static void cbm_nl_event_send(struct sk_buff *skb, void *hdr)
{
	genlmsg_end(skb, hdr);
	down_read(&cbm_nl_lock);
	if (cbm_nl_live)
		genlmsg_multicast(&cbm_nl_family, skb, 0, CBM_NL_MCGRP_EVENTS,
				  GFP_KERNEL);
	else
		nlmsg_free(skb);
	up_read(&cbm_nl_lock);
}

/* An event that carries the name and what cbm_nl_event_new() put */
static void cbm_nl_event_named(const struct cbm_conv *conv,
			       struct sk_buff *skb, void *hdr)
{
	if (nla_put_string(skb, CBM_NL_A_NAME, conv->name)) {
		nlmsg_free(skb);
		return;
	}
	cbm_nl_event_send(skb, hdr);
}

/**
 * cbm_event_created() - a named conversation was created
 * @conv: the conversation; cbm_ns_lock is held, its own lock is not
 */
void cbm_event_created(struct cbm_conv *conv)
{
	struct sk_buff *skb;
	void *hdr;

	skb = cbm_nl_event_new(conv, CBM_NL_EVENT_CREATED, &hdr);
	if (!skb)
		return;
	if (cbm_nl_put_conv(skb, conv, true, true, true)) {
		nlmsg_free(skb);
		return;
	}
	cbm_nl_event_send(skb, hdr);
}

/**
 * cbm_event_resized() - the capacity changed
 * @conv: the conversation, whose lock is held
 */
void cbm_event_resized(const struct cbm_conv *conv)
{
	struct sk_buff *skb;
	void *hdr;

	lockdep_assert_held(&conv->lock);
	skb = cbm_nl_event_new(conv, CBM_NL_EVENT_RESIZED, &hdr);
	if (!skb)
		return;
	if (cbm_nl_put_u64(skb, CBM_NL_A_CAPACITY, conv->ring.size) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_RESIZES, conv->resizes)) {
		nlmsg_free(skb);
		return;
	}
	cbm_nl_event_named(conv, skb, hdr);
}

/**
 * cbm_event_window() - the window changed
 * @conv: the conversation, whose lock is held
 */
void cbm_event_window(const struct cbm_conv *conv)
{
	struct sk_buff *skb;
	void *hdr;

	lockdep_assert_held(&conv->lock);
	skb = cbm_nl_event_new(conv, CBM_NL_EVENT_WINDOW, &hdr);
	if (!skb)
		return;
	if (cbm_nl_put_window(skb, &conv->win)) {
		nlmsg_free(skb);
		return;
	}
	cbm_nl_event_named(conv, skb, hdr);
}

/**
 * cbm_event_unlinked() - the name was removed
 * @conv: the conversation; cbm_ns_lock is held
 */
void cbm_event_unlinked(const struct cbm_conv *conv)
{
	struct sk_buff *skb;
	void *hdr;

	skb = cbm_nl_event_new(conv, CBM_NL_EVENT_UNLINKED, &hdr);
	if (skb)
		cbm_nl_event_named(conv, skb, hdr);
}

/**
 * cbm_event_evicted() - messages were evicted
 * @conv: the conversation, whose lock is held
 * @count: messages evicted since the previous eviction event
 */
void cbm_event_evicted(const struct cbm_conv *conv, u64 count)
{
	struct sk_buff *skb;
	void *hdr;

	lockdep_assert_held(&conv->lock);
	skb = cbm_nl_event_new(conv, CBM_NL_EVENT_EVICTED, &hdr);
	if (!skb)
		return;
	if (cbm_nl_put_u64(skb, CBM_NL_A_EVENT_COUNT, count) ||
	    cbm_nl_put_u64(skb, CBM_NL_A_EVICTED, conv->evicted)) {
		nlmsg_free(skb);
		return;
	}
	cbm_nl_event_named(conv, skb, hdr);
}

/**
 * cbm_nl_init() - register the family
 *
 * Return: 0 or a negative errno.
 */
int __init cbm_nl_init(void)
{
	int err = genl_register_family(&cbm_nl_family);

	if (!err) {
		down_write(&cbm_nl_lock);
		cbm_nl_live = true;
		up_write(&cbm_nl_lock);
	}
	return err;
}

/**
 * cbm_nl_exit() - stop events and unregister the family
 *
 * Unregistering waits for the requests in progress; a dump in progress
 * holds a reference to the module, so none is left.
 */
void cbm_nl_exit(void)
{
	down_write(&cbm_nl_lock);
	WRITE_ONCE(cbm_nl_live, false);
	up_write(&cbm_nl_lock);
	genl_unregister_family(&cbm_nl_family);
}
