// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: the generic netlink family "cbm" through libnl-genl-3: get and dump
 * against CBM_IOC_INFO, a dump of a thousand conversations over many
 * messages, the mutating commands and their errnos, strict attribute
 * validation, readers, and every event, eviction's rate limit included.
 *
 * Requests go out through libnl; replies are read datagram by datagram
 * (nl_recv()), so a test sees how many messages a dump took and the exact
 * errno of every ack.
 */
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* Conversations of the multi-part dump test */
#define MANY_CONVS	1000
/* Readers of one conversation in the truncation test */
#define MANY_READERS	200
/* Most readers a parsed conversation keeps */
#define MAX_READERS	(2 * MANY_READERS)
/* How long an event may take to arrive */
#define EVENT_MS	3000
/* Messages the eviction tests write into a 4 KiB ring */
#define EVICT_MSGS	3000

struct nl_reader {
	__u32 pid;
	__u32 flags;
	__u64 cursor;
	__u64 lag;
	__u64 lost;
};

/* One CONV_GET reply, dump part or event, parsed */
struct nl_conv {
	bool has[CBM_NL_A_MAX + 1];
	char name[CBM_NAME_MAX];
	__u32 flags, uid, gid, mode, readers, max_msg_size, event;
	__u64 capacity, used, msgs, first_seq, next_seq, appended, evicted;
	__u64 expired, lost, resizes, pinned, pinned_bytes, event_count;
	bool has_win;
	struct cbm_window win;
	struct cbm_autoresize ar;
	bool truncated;
	unsigned int nr_rd;
	struct nl_reader rd[MAX_READERS];
};

struct nl {
	struct nl_sock *sk;
	int family;
	int group;
};

static int nl_open(struct nl *nl)
{
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -1;
	/* Replies of any size: nl_recv() peeks at the length first */
	nl_socket_enable_msg_peek(nl->sk);
	if (genl_connect(nl->sk))
		return -1;
	nl->family = genl_ctrl_resolve(nl->sk, CBM_GENL_NAME);
	nl->group = genl_ctrl_resolve_grp(nl->sk, CBM_GENL_NAME,
					  CBM_GENL_MCGRP_EVENTS);
	return nl->family < 0 || nl->group < 0 ? -1 : 0;
}

/* A socket on the events group, read with nl_events() */
static int nl_subscribe(struct nl *ev)
{
	if (nl_open(ev))
		return -1;
	nl_socket_disable_seq_check(ev->sk);
	if (nl_socket_add_membership(ev->sk, ev->group))
		return -1;
	return nl_socket_set_nonblocking(ev->sk);
}

static void cnl_close(struct nl *nl)
{
	nl_socket_free(nl->sk);
}

static struct nl_msg *nl_req(const struct nl *nl, __u8 cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg && !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
				flags, cmd, CBM_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static void parse_nested(const struct nlattr *nest, int max,
			 struct nlattr **tb)
{
	memset(tb, 0, (max + 1) * sizeof(*tb));
	nla_parse_nested(tb, max, (struct nlattr *)nest, NULL);
}

static __u64 get_u64(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_u64(tb[type]) : 0;
}

static __u32 get_u32(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_u32(tb[type]) : 0;
}

static void parse_reader(struct nl_conv *c, const struct nlattr *nest)
{
	struct nlattr *tb[CBM_NL_READER_A_MAX + 1];
	struct nl_reader *r;

	if (c->nr_rd == MAX_READERS)
		return;
	r = &c->rd[c->nr_rd++];
	parse_nested(nest, CBM_NL_READER_A_MAX, tb);
	r->pid = get_u32(tb, CBM_NL_READER_A_PID);
	r->flags = get_u32(tb, CBM_NL_READER_A_FLAGS);
	r->cursor = get_u64(tb, CBM_NL_READER_A_CURSOR);
	r->lag = get_u64(tb, CBM_NL_READER_A_LAG);
	r->lost = get_u64(tb, CBM_NL_READER_A_LOST);
}

static void parse_conv(struct nlmsghdr *nlh, struct nl_conv *c)
{
	struct nlattr *tb[CBM_NL_A_MAX + 1];
	struct nlattr *wtb[CBM_NL_WINDOW_A_MAX + 1];
	struct nlattr *atb[CBM_NL_AUTORESIZE_A_MAX + 1];
	struct genlmsghdr *g = nlmsg_data(nlh);
	struct nlattr *pos;
	int i, rem;

	memset(c, 0, sizeof(*c));
	genlmsg_parse(nlh, 0, tb, CBM_NL_A_MAX, NULL);
	for (i = 0; i <= CBM_NL_A_MAX; i++)
		c->has[i] = tb[i];
	if (tb[CBM_NL_A_NAME])
		copy_name(c->name, nla_get_string(tb[CBM_NL_A_NAME]));
	c->flags = get_u32(tb, CBM_NL_A_FLAGS);
	c->uid = get_u32(tb, CBM_NL_A_UID);
	c->gid = get_u32(tb, CBM_NL_A_GID);
	c->mode = get_u32(tb, CBM_NL_A_MODE);
	c->capacity = get_u64(tb, CBM_NL_A_CAPACITY);
	c->used = get_u64(tb, CBM_NL_A_USED);
	c->msgs = get_u64(tb, CBM_NL_A_MSGS);
	c->first_seq = get_u64(tb, CBM_NL_A_FIRST_SEQ);
	c->next_seq = get_u64(tb, CBM_NL_A_NEXT_SEQ);
	c->appended = get_u64(tb, CBM_NL_A_APPENDED);
	c->evicted = get_u64(tb, CBM_NL_A_EVICTED);
	c->expired = get_u64(tb, CBM_NL_A_EXPIRED);
	c->lost = get_u64(tb, CBM_NL_A_LOST);
	c->readers = get_u32(tb, CBM_NL_A_READERS);
	c->resizes = get_u64(tb, CBM_NL_A_RESIZES);
	c->pinned = get_u64(tb, CBM_NL_A_PINNED);
	c->pinned_bytes = get_u64(tb, CBM_NL_A_PINNED_BYTES);
	c->max_msg_size = get_u32(tb, CBM_NL_A_MAX_MSG_SIZE);
	c->event = get_u32(tb, CBM_NL_A_EVENT);
	c->event_count = get_u64(tb, CBM_NL_A_EVENT_COUNT);
	c->truncated = tb[CBM_NL_A_READERS_TRUNCATED];
	if (tb[CBM_NL_A_WINDOW]) {
		c->has_win = true;
		parse_nested(tb[CBM_NL_A_WINDOW], CBM_NL_WINDOW_A_MAX, wtb);
		c->win.flags = get_u32(wtb, CBM_NL_WINDOW_A_FLAGS);
		c->win.max_msgs = get_u64(wtb, CBM_NL_WINDOW_A_MAX_MSGS);
		c->win.max_bytes = get_u64(wtb, CBM_NL_WINDOW_A_MAX_BYTES);
		c->win.max_tokens = get_u64(wtb, CBM_NL_WINDOW_A_MAX_TOKENS);
		c->win.max_age_ns = get_u64(wtb, CBM_NL_WINDOW_A_MAX_AGE_NS);
	}
	if (tb[CBM_NL_A_AUTORESIZE]) {
		parse_nested(tb[CBM_NL_A_AUTORESIZE], CBM_NL_AUTORESIZE_A_MAX,
			     atb);
		c->ar.flags = get_u32(atb, CBM_NL_AUTORESIZE_A_FLAGS);
		c->ar.min_capacity = get_u64(atb,
					     CBM_NL_AUTORESIZE_A_MIN_CAPACITY);
		c->ar.max_capacity = get_u64(atb,
					     CBM_NL_AUTORESIZE_A_MAX_CAPACITY);
		c->ar.high_pct = get_u32(atb, CBM_NL_AUTORESIZE_A_HIGH_PCT);
		c->ar.low_pct = get_u32(atb, CBM_NL_AUTORESIZE_A_LOW_PCT);
		c->ar.period_ms = get_u32(atb, CBM_NL_AUTORESIZE_A_PERIOD_MS);
	}
	nla_for_each_attr(pos, genlmsg_attrdata(g, 0), genlmsg_attrlen(g, 0),
			  rem)
		if (nla_type(pos) == CBM_NL_A_READER)
			parse_reader(c, pos);
}

/* Called for every reply message; @part counts datagrams from 1 */
typedef void (*nl_msg_fn)(struct nlmsghdr *nlh, unsigned int part,
			  void *arg);

/*
 * Sends @msg (freed here) and reads replies until the ack or the end of
 * a dump. @between runs after the first datagram of the reply. Returns
 * the ack's error (0 or -errno), or -EIO if the socket failed; *@parts
 * is the number of datagrams read.
 */
static int nl_talk(struct nl *nl, struct nl_msg *msg, nl_msg_fn fn, void *arg,
		   void (*between)(void *arg), unsigned int *parts)
{
	struct sockaddr_nl peer;
	unsigned char *buf;
	struct nlmsghdr *nlh;
	unsigned int n = 0;
	int len, ret = 1;

	if (nl_send_auto(nl->sk, msg) < 0) {
		nlmsg_free(msg);
		return -EIO;
	}
	nlmsg_free(msg);
	while (ret > 0) {
		len = nl_recv(nl->sk, &peer, &buf, NULL);
		if (len <= 0)
			return -EIO;
		n++;
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type == NLMSG_DONE) {
				ret = 0;
			} else if (nlh->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)nlmsg_data(nlh))->error;
				if (ret > 0)
					ret = -EIO;
			} else if (fn) {
				fn(nlh, n, arg);
			}
		}
		free(buf);
		if (n == 1 && between && ret > 0)
			between(arg);
	}
	if (parts)
		*parts = n;
	return ret;
}

static void keep_conv(struct nlmsghdr *nlh, unsigned int part, void *arg)
{
	(void)part;
	parse_conv(nlh, arg);
}

/* CONV_GET of @name into *@c; returns 0 or -errno */
static int nl_get(struct nl *nl, const char *name, struct nl_conv *c)
{
	struct nl_msg *msg = nl_req(nl, CBM_NL_CMD_CONV_GET, 0);

	memset(c, 0, sizeof(*c));
	if (!msg || nla_put_string(msg, CBM_NL_A_NAME, name))
		return -ENOMEM;
	return nl_talk(nl, msg, keep_conv, c, NULL, NULL);
}

static int nl_unlink(struct nl *nl, const char *name)
{
	struct nl_msg *msg = nl_req(nl, CBM_NL_CMD_CONV_UNLINK, 0);

	if (!msg || nla_put_string(msg, CBM_NL_A_NAME, name))
		return -ENOMEM;
	return nl_talk(nl, msg, NULL, NULL, NULL, NULL);
}

/* CONV_RESIZE; the reply, if any, goes to *@c */
static int nl_resize(struct nl *nl, const char *name, __u64 capacity,
		     struct nl_conv *c)
{
	struct nl_msg *msg = nl_req(nl, CBM_NL_CMD_CONV_RESIZE, 0);

	memset(c, 0, sizeof(*c));
	if (!msg || nla_put_string(msg, CBM_NL_A_NAME, name) ||
	    nla_put_u64(msg, CBM_NL_A_CAPACITY, capacity))
		return -ENOMEM;
	return nl_talk(nl, msg, keep_conv, c, NULL, NULL);
}

/* CONV_SET_WINDOW with the limits of @w that are not 0 */
static int nl_set_window(struct nl *nl, const char *name,
			 const struct cbm_window *w)
{
	struct nl_msg *msg = nl_req(nl, CBM_NL_CMD_CONV_SET_WINDOW, 0);
	struct nlattr *nest;

	if (!msg || nla_put_string(msg, CBM_NL_A_NAME, name))
		return -ENOMEM;
	nest = nla_nest_start(msg, CBM_NL_A_WINDOW);
	if (!nest ||
	    (w->flags && nla_put_u32(msg, CBM_NL_WINDOW_A_FLAGS, w->flags)) ||
	    (w->max_msgs &&
	     nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_MSGS, w->max_msgs)) ||
	    (w->max_bytes &&
	     nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_BYTES, w->max_bytes)) ||
	    (w->max_tokens &&
	     nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_TOKENS, w->max_tokens)) ||
	    (w->max_age_ns &&
	     nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_AGE_NS, w->max_age_ns)))
		return -ENOMEM;
	nla_nest_end(msg, nest);
	return nl_talk(nl, msg, NULL, NULL, NULL, NULL);
}

/* Expects @c to describe the conversation @fd is bound to */
static void expect_matches_info(struct __test_metadata *_metadata,
				const struct nl_conv *c, int fd)
{
	struct cbm_autoresize ar;
	struct cbm_window win;
	struct cbm_info info;
	int i;

	ASSERT_EQ(0, read_info(fd, &info));
	ASSERT_EQ(0, get_window(fd, &win));
	ASSERT_EQ(0, get_ar(fd, &ar));
	/* Every counter and setting is there, even when 0 */
	for (i = CBM_NL_A_NAME; i <= CBM_NL_A_AUTORESIZE; i++)
		EXPECT_TRUE(c->has[i]) TH_LOG("attribute %d missing", i);
	EXPECT_STREQ(info.name, c->name);
	EXPECT_EQ(info.flags, c->flags);
	EXPECT_EQ(info.uid, c->uid);
	EXPECT_EQ(info.gid, c->gid);
	EXPECT_EQ(info.mode, c->mode);
	EXPECT_EQ(info.capacity, c->capacity);
	EXPECT_EQ(info.used, c->used);
	EXPECT_EQ(info.msgs, c->msgs);
	EXPECT_EQ(info.first_seq, c->first_seq);
	EXPECT_EQ(info.next_seq, c->next_seq);
	EXPECT_EQ(info.evicted, c->evicted);
	EXPECT_EQ(info.expired, c->expired);
	EXPECT_EQ(info.readers, c->readers);
	EXPECT_EQ(info.resizes, c->resizes);
	EXPECT_EQ(info.pinned, c->pinned);
	EXPECT_EQ(info.pinned_bytes, c->pinned_bytes);
	EXPECT_EQ(info.max_msg_size, c->max_msg_size);
	EXPECT_EQ(win.flags, c->win.flags);
	EXPECT_EQ(win.max_msgs, c->win.max_msgs);
	EXPECT_EQ(win.max_bytes, c->win.max_bytes);
	EXPECT_EQ(win.max_tokens, c->win.max_tokens);
	EXPECT_EQ(win.max_age_ns, c->win.max_age_ns);
	EXPECT_EQ(ar.flags, c->ar.flags);
	EXPECT_EQ(ar.min_capacity, c->ar.min_capacity);
	EXPECT_EQ(ar.max_capacity, c->ar.max_capacity);
	EXPECT_EQ(ar.high_pct, c->ar.high_pct);
	EXPECT_EQ(ar.low_pct, c->ar.low_pct);
	EXPECT_EQ(ar.period_ms, c->ar.period_ms);
	EXPECT_EQ(info.readers, c->nr_rd);
	EXPECT_FALSE(c->truncated);
}

FIXTURE(conv) {
	struct nl nl;
	char name[CBM_NAME_MAX];
	int fd;		/* O_RDWR, bound to name, created by root */
	struct nl_conv c;
	char longbuf[CBM_NAME_MAX + 9];
};

FIXTURE_SETUP(conv)
{
	ASSERT_EQ(0, nl_open(&self->nl));
	conv_name(self->name, "nl");
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0644, 0, 0);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(conv)
{
	unlink_name(self->name);
	close(self->fd);
	cnl_close(&self->nl);
}

/* Every field of a get matches CBM_IOC_INFO, also without privilege */
TEST_F(conv, get_matches_info)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 1 << 20, 90, 10,
					 3600000);
	int i;

	for (i = 0; i < 5; i++)
		ASSERT_EQ(3, write_str(self->fd, "abc"));
	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 4, 1000, 0, 0));
	ASSERT_EQ(0, set_ar(self->fd, &ar));

	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	expect_matches_info(_metadata, &self->c, self->fd);
	EXPECT_EQ(5, self->c.appended);
	/* The window of 4 turns evicted the first, unread message */
	EXPECT_EQ(4, self->c.msgs);
	EXPECT_EQ(1, self->c.lost);
	EXPECT_EQ(1, self->c.nr_rd);
	EXPECT_EQ(1, self->c.rd[0].lost);
	EXPECT_EQ(0, self->c.event);

	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	EXPECT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	ASSERT_EQ(0, become_root());
	expect_matches_info(_metadata, &self->c, self->fd);
}

/* ``default'' is reported like any other name */
TEST_F(conv, get_default)
{
	ASSERT_EQ(0, nl_get(&self->nl, CBM_DEFAULT_NAME, &self->c));
	EXPECT_STREQ(CBM_DEFAULT_NAME, self->c.name);
	EXPECT_EQ(CBM_CONV_DEFAULT, self->c.flags & CBM_CONV_DEFAULT);
}

TEST_F(conv, get_enoent)
{
	char name[CBM_NAME_MAX];

	conv_name(name, "absent");
	EXPECT_EQ(-ENOENT, nl_get(&self->nl, name, &self->c));
	/* An unlinked name is gone at once */
	ASSERT_EQ(0, unlink_name(self->name));
	EXPECT_EQ(-ENOENT, nl_get(&self->nl, self->name, &self->c));
}

/* Each reader: its pid, cursor, lag and losses, as CBM_IOC_READER_INFO */
TEST_F(conv, readers)
{
	struct cbm_reader_info ri;
	int fd2, ready[2], done[2], i;
	char c = 0, buf[64];
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* A reader bound by another process, kept until told */
		CHILD_CHECK(open_named(self->name, O_RDONLY) >= 0);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		CHILD_CHECK(read(done[0], &c, 1) >= 0);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(3, write_str(self->fd, "abc"));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(3, read(self->fd, buf, sizeof(buf)));

	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	ASSERT_EQ(2, self->c.nr_rd);
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	/* Readers are reported in the order they were bound */
	EXPECT_EQ(getpid(), self->c.rd[0].pid);
	EXPECT_EQ(ri.cursor, self->c.rd[0].cursor);
	EXPECT_EQ(2, self->c.rd[0].cursor);
	EXPECT_EQ(3, self->c.rd[0].lag);
	EXPECT_EQ(0, self->c.rd[0].lost);
	EXPECT_EQ(0, self->c.rd[0].flags);
	EXPECT_EQ(pid, self->c.rd[1].pid);
	EXPECT_EQ(0, self->c.rd[1].cursor);
	EXPECT_EQ(5, self->c.rd[1].lag);

	ASSERT_EQ(1, write(done[1], &c, 1));
	EXPECT_EQ(0, wait_child(pid));
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	close(done[1]);

	/* Eviction: the reader's losses, then the sum over gone readers */
	fd2 = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, resize_to(self->fd, MIN_CAPACITY, NULL));
	write_range(_metadata, self->fd, 1000, 0, 20);
	ASSERT_EQ(0, read_rinfo(fd2, &ri));
	ASSERT_LT(0, ri.lost);
	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	ASSERT_EQ(2, self->c.nr_rd);
	EXPECT_EQ(ri.lost, self->c.rd[1].lost);
	EXPECT_EQ(ri.cursor, self->c.rd[1].cursor);
	EXPECT_EQ(self->c.next_seq - ri.cursor, self->c.rd[1].lag);
	EXPECT_EQ(self->c.rd[0].lost + self->c.rd[1].lost, self->c.lost);
	close(fd2);
	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	EXPECT_EQ(1, self->c.nr_rd);
	EXPECT_EQ(ri.lost + self->c.rd[0].lost, self->c.lost);
	EXPECT_EQ(self->c.appended, self->c.next_seq);
}

/* A lossless reader says so */
TEST(reader_lossless)
{
	char name[CBM_NAME_MAX];
	struct nl_conv *c = calloc(1, sizeof(*c));
	struct nl nl;
	int fd;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, nl_open(&nl));
	conv_name(name, "lossless");
	fd = create_named(name, O_RDWR, 0600, CBM_CONV_LOSSLESS, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nl_get(&nl, name, c));
	ASSERT_EQ(1, c->nr_rd);
	EXPECT_EQ(CBM_READER_LOSSLESS, c->rd[0].flags);
	EXPECT_EQ(CBM_CONV_LOSSLESS, c->flags & CBM_CONV_LOSSLESS);
	EXPECT_EQ(0, unlink_name(name));
	close(fd);
	cnl_close(&nl);
	free(c);
}

/* Readers that do not fit in one message are cut, and it says so */
TEST_F(conv, readers_truncated)
{
	int fds[MANY_READERS], i;

	for (i = 0; i < MANY_READERS; i++) {
		fds[i] = open_named(self->name, O_RDONLY);
		ASSERT_LE(0, fds[i]);
	}
	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	EXPECT_EQ(MANY_READERS + 1, self->c.readers);
	EXPECT_TRUE(self->c.truncated);
	EXPECT_LT(0, self->c.nr_rd);
	EXPECT_GT(MANY_READERS + 1, self->c.nr_rd);
	for (i = 0; i < MANY_READERS; i++)
		close(fds[i]);
	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	EXPECT_FALSE(self->c.truncated);
	EXPECT_EQ(1, self->c.nr_rd);
}

/* What a dump saw: names of one prefix, in order, and how many parts */
struct dump_seen {
	char prefix[CBM_NAME_MAX];
	char last[CBM_NAME_MAX];
	unsigned int count;
	unsigned int max_part;
	bool unsorted;
	bool multi_missing;
	unsigned char seen[MANY_CONVS];
	/* unlinked between the first and the second part */
	unsigned int unlink_from, unlink_to;
};

/* Name @i of the conversations whose names start with @prefix */
static void many_name(char name[CBM_NAME_MAX], const char *prefix,
		      unsigned int i)
{
	snprintf(name, CBM_NAME_MAX, "%.50s%04u", prefix, i % MANY_CONVS);
}

static void dump_one(struct nlmsghdr *nlh, unsigned int part, void *arg)
{
	static struct nl_conv c;
	struct dump_seen *d = arg;
	size_t plen = strlen(d->prefix);

	parse_conv(nlh, &c);
	if (!(nlh->nlmsg_flags & NLM_F_MULTI))
		d->multi_missing = true;
	if (d->last[0] && strcmp(d->last, c.name) >= 0)
		d->unsorted = true;
	copy_name(d->last, c.name);
	d->max_part = part;
	d->count++;
	if (!strncmp(c.name, d->prefix, plen))
		d->seen[atoi(c.name + plen) % MANY_CONVS]++;
}

static void dump_between(void *arg)
{
	struct dump_seen *d = arg;
	char name[CBM_NAME_MAX];
	unsigned int i;

	for (i = d->unlink_from; i < d->unlink_to; i++) {
		many_name(name, d->prefix, i);
		unlink_name(name);
	}
}

static int cnl_dump(struct nl *nl, struct dump_seen *d, unsigned int *parts)
{
	struct nl_msg *msg = nl_req(nl, CBM_NL_CMD_CONV_GET, NLM_F_DUMP);

	if (!msg)
		return -ENOMEM;
	return nl_talk(nl, msg, dump_one, d, dump_between, parts);
}

FIXTURE(many) {
	struct nl nl;
	char prefix[CBM_NAME_MAX];
};

FIXTURE_SETUP(many)
{
	char name[CBM_NAME_MAX];
	int i, fd;

	ASSERT_EQ(0, nl_open(&self->nl));
	conv_name(self->prefix, "many-");
	for (i = 0; i < MANY_CONVS; i++) {
		many_name(name, self->prefix, i);
		fd = create_named(name, O_WRONLY, 0600, 0, MIN_CAPACITY);
		ASSERT_LE(0, fd) TH_LOG("creating %s: %s", name,
					strerror(errno));
		close(fd);
	}
}

FIXTURE_TEARDOWN(many)
{
	char name[CBM_NAME_MAX];
	int i;

	for (i = 0; i < MANY_CONVS; i++) {
		many_name(name, self->prefix, i);
		unlink_name(name);
	}
	cnl_close(&self->nl);
}

/* A thousand conversations: many parts, each name once, in order */
TEST_F(many, dump)
{
	struct dump_seen *d = calloc(1, sizeof(*d));
	unsigned int parts, i;

	ASSERT_NE(NULL, d);
	copy_name(d->prefix, self->prefix);
	ASSERT_EQ(0, cnl_dump(&self->nl, d, &parts));
	EXPECT_LT(1, parts);
	EXPECT_LT(1, d->max_part);
	EXPECT_LE(MANY_CONVS, d->count);
	EXPECT_FALSE(d->unsorted);
	EXPECT_FALSE(d->multi_missing);
	for (i = 0; i < MANY_CONVS; i++)
		EXPECT_EQ(1, d->seen[i]) TH_LOG("conversation %u", i);
	free(d);
}

/* Names unlinked between parts: the others still come once, in order */
TEST_F(many, dump_unlink_between_parts)
{
	struct dump_seen *d = calloc(1, sizeof(*d));
	unsigned int parts, i;

	ASSERT_NE(NULL, d);
	copy_name(d->prefix, self->prefix);
	/* The second half goes after the first part */
	d->unlink_from = MANY_CONVS / 2;
	d->unlink_to = MANY_CONVS;
	ASSERT_EQ(0, cnl_dump(&self->nl, d, &parts));
	EXPECT_LT(1, parts);
	EXPECT_FALSE(d->unsorted);
	for (i = 0; i < MANY_CONVS / 2; i++)
		EXPECT_EQ(1, d->seen[i]) TH_LOG("conversation %u", i);
	for (i = MANY_CONVS / 2; i < MANY_CONVS; i++)
		EXPECT_GE(1, d->seen[i]) TH_LOG("conversation %u", i);
	free(d);
}

TEST_F(conv, unlink)
{
	char name[CBM_NAME_MAX];
	struct cbm_info info;

	conv_name(name, "absent");
	EXPECT_EQ(-ENOENT, nl_unlink(&self->nl, name));
	EXPECT_EQ(-EBUSY, nl_unlink(&self->nl, CBM_DEFAULT_NAME));
	/* Neither owner nor CAP_SYS_ADMIN */
	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	EXPECT_EQ(-EACCES, nl_unlink(&self->nl, self->name));
	ASSERT_EQ(0, become_root());
	EXPECT_EQ(0, nl_get(&self->nl, self->name, &self->c));

	EXPECT_EQ(0, nl_unlink(&self->nl, self->name));
	EXPECT_EQ(-ENOENT, nl_get(&self->nl, self->name, &self->c));
	EXPECT_EQ(-ENOENT, nl_unlink(&self->nl, self->name));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(CBM_CONV_UNLINKED, info.flags & CBM_CONV_UNLINKED);
	EXPECT_EQ(-1, open_named(self->name, O_RDONLY));
	EXPECT_EQ(ENOENT, errno);
}

/* An unprivileged owner may unlink its own conversation */
TEST_F(conv, unlink_owner)
{
	char name[CBM_NAME_MAX];
	int fd;

	conv_name(name, "owned");
	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	fd = create_named(name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, nl_unlink(&self->nl, name));
	ASSERT_EQ(0, become_root());
	close(fd);
	EXPECT_EQ(-ENOENT, nl_get(&self->nl, name, &self->c));
}

TEST_F(conv, set_window)
{
	struct cbm_window w = { .flags = CBM_WINDOW_TURNS, .max_msgs = 3,
				.max_age_ns = 1000000000000ULL };
	struct cbm_window got;
	char name[CBM_NAME_MAX];

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 1234, 0));
	ASSERT_EQ(0, nl_set_window(&self->nl, self->name, &w));
	ASSERT_EQ(0, get_window(self->fd, &got));
	EXPECT_EQ(w.flags, got.flags);
	EXPECT_EQ(3, got.max_msgs);
	EXPECT_EQ(0, got.max_bytes);
	/* An absent limit is 0, not the old value */
	EXPECT_EQ(0, got.max_tokens);
	EXPECT_EQ(w.max_age_ns, got.max_age_ns);

	/* The window applies at once */
	write_range(_metadata, self->fd, 8, 0, 10);
	w.flags = 0;
	w.max_age_ns = 0;
	w.max_msgs = 2;
	ASSERT_EQ(0, nl_set_window(&self->nl, self->name, &w));
	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	EXPECT_EQ(2, self->c.msgs);
	expect_matches_info(_metadata, &self->c, self->fd);

	conv_name(name, "absent");
	EXPECT_EQ(-ENOENT, nl_set_window(&self->nl, name, &w));
	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	EXPECT_EQ(-EPERM, nl_set_window(&self->nl, self->name, &w));
	ASSERT_EQ(0, become_root());
}

TEST_F(conv, resize)
{
	char name[CBM_NAME_MAX];
	struct cbm_info info;
	int fd;

	/* Rounded up as CBM_IOC_RESIZE rounds, the state in the reply */
	ASSERT_EQ(0, nl_resize(&self->nl, self->name, 5000, &self->c));
	EXPECT_EQ(8192, self->c.capacity);
	EXPECT_EQ(1, self->c.resizes);
	expect_matches_info(_metadata, &self->c, self->fd);

	EXPECT_EQ(-E2BIG, nl_resize(&self->nl, self->name, 1ULL << 62,
				    &self->c));
	conv_name(name, "absent");
	EXPECT_EQ(-ENOENT, nl_resize(&self->nl, name, 0, &self->c));
	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	EXPECT_EQ(-EPERM, nl_resize(&self->nl, self->name, 0, &self->c));
	ASSERT_EQ(0, become_root());
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(8192, info.capacity);

	/* A lossless reader's unread messages are not evicted: EBUSY */
	conv_name(name, "lossless");
	fd = create_named(name, O_RDWR, 0600, CBM_CONV_LOSSLESS, 16384);
	ASSERT_LE(0, fd);
	write_range(_metadata, fd, 1000, 0, 8);
	EXPECT_EQ(-EBUSY, nl_resize(&self->nl, name, MIN_CAPACITY, &self->c));
	EXPECT_EQ(0, unlink_name(name));
	close(fd);
}

/* Sends a request built by the caller; returns the ack's error */
static int nl_raw(struct nl *nl, struct nl_msg *msg)
{
	return nl_talk(nl, msg, NULL, NULL, NULL, NULL);
}

/* Strict validation: every malformed request fails with EINVAL */
TEST_F(conv, bad_attributes)
{
	static const __u8 cmds[] = { CBM_NL_CMD_CONV_GET,
				     CBM_NL_CMD_CONV_UNLINK,
				     CBM_NL_CMD_CONV_SET_WINDOW,
				     CBM_NL_CMD_CONV_RESIZE };
	char longname[CBM_NAME_MAX + 1];
	struct nlattr *nest;
	struct nl_msg *msg;
	unsigned int i;

	memset(longname, 'a', CBM_NAME_MAX);
	longname[CBM_NAME_MAX] = '\0';
	memset(self->longbuf, 'a', sizeof(self->longbuf));
	strcpy(self->longbuf, "abc");
	for (i = 0; i < sizeof(cmds); i++) {
		/* No name */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_NE(NULL, msg);
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		/* A name of CBM_NAME_MAX characters */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, longname));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		/* A valid name, then a NUL and more than CBM_NAME_MAX bytes */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put(msg, CBM_NL_A_NAME, sizeof(longname) + 8,
				     self->longbuf));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		/* Characters a name may not have */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, "a/b"));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, ""));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		/* A name of the wrong type: no terminating NUL */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put_u32(msg, CBM_NL_A_NAME, 0x61616161));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		/* An attribute the command does not take */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
		ASSERT_EQ(0, nla_put_u32(msg, CBM_NL_A_MODE, 0644));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
		/* An attribute nobody knows */
		msg = nl_req(&self->nl, cmds[i], 0);
		ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
		ASSERT_EQ(0, nla_put_u32(msg, CBM_NL_A_MAX + 1, 0));
		EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg)) TH_LOG("cmd %u", cmds[i]);
	}

	/* Resize: no capacity, or one of the wrong size */
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_RESIZE, 0);
	ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
	EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg));
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_RESIZE, 0);
	ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
	ASSERT_EQ(0, nla_put_u32(msg, CBM_NL_A_CAPACITY, 8192));
	EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg));

	/* Window: missing, unknown flag, unknown or wrong nested attribute */
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_SET_WINDOW, 0);
	ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
	EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg));
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_SET_WINDOW, 0);
	ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
	nest = nla_nest_start(msg, CBM_NL_A_WINDOW);
	ASSERT_EQ(0, nla_put_u32(msg, CBM_NL_WINDOW_A_FLAGS, 0x2));
	nla_nest_end(msg, nest);
	EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg));
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_SET_WINDOW, 0);
	ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
	nest = nla_nest_start(msg, CBM_NL_A_WINDOW);
	ASSERT_EQ(0, nla_put_u64(msg, CBM_NL_WINDOW_A_MAX + 1, 1));
	nla_nest_end(msg, nest);
	EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg));
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_SET_WINDOW, 0);
	ASSERT_EQ(0, nla_put_string(msg, CBM_NL_A_NAME, self->name));
	nest = nla_nest_start(msg, CBM_NL_A_WINDOW);
	ASSERT_EQ(0, nla_put_u32(msg, CBM_NL_WINDOW_A_MAX_MSGS, 1));
	nla_nest_end(msg, nest);
	EXPECT_EQ(-EINVAL, nl_raw(&self->nl, msg));

	/* Events are multicast only */
	msg = nl_req(&self->nl, CBM_NL_CMD_EVENT, 0);
	EXPECT_EQ(-EOPNOTSUPP, nl_raw(&self->nl, msg));

	/* None of it changed anything */
	ASSERT_EQ(0, nl_get(&self->nl, self->name, &self->c));
	expect_matches_info(_metadata, &self->c, self->fd);
	EXPECT_EQ(0, self->c.resizes);
}

/*
 * Reads events until @fn returns true for one (returns 0), or nothing
 * arrives for @ms milliseconds (returns -1).
 */
static int nl_events(struct nl *ev, bool (*fn)(const struct nl_conv *c,
					       void *arg),
		     void *arg, int ms)
{
	static struct nl_conv c;
	struct sockaddr_nl peer;
	struct nlmsghdr *nlh;
	unsigned char *buf;
	int len;

	for (;;) {
		if (poll_events(nl_socket_get_fd(ev->sk), POLLIN, ms) <= 0)
			return -1;
		len = nl_recv(ev->sk, &peer, &buf, NULL);
		if (len <= 0)
			return -1;
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len)) {
			parse_conv(nlh, &c);
			if (fn(&c, arg)) {
				free(buf);
				return 0;
			}
		}
		free(buf);
	}
}

struct want_event {
	const char *name;
	__u32 event;
	struct nl_conv got;
	unsigned int others;	/* events of that name before it */
};

static bool is_event(const struct nl_conv *c, void *arg)
{
	struct want_event *w = arg;

	if (strcmp(c->name, w->name))
		return false;
	if (c->event != w->event) {
		w->others++;
		return false;
	}
	memcpy(&w->got, c, sizeof(*c));
	return true;
}

static int expect_event(struct nl *ev, const char *name, __u32 event,
			struct want_event *w)
{
	memset(w, 0, sizeof(*w));
	w->name = name;
	w->event = event;
	return nl_events(ev, is_event, w, EVENT_MS);
}

FIXTURE(ev) {
	struct nl ev;
	char name[CBM_NAME_MAX];
	struct want_event w;
	int fd;
};

FIXTURE_SETUP(ev)
{
	ASSERT_EQ(0, nl_subscribe(&self->ev));
	conv_name(self->name, "ev");
	self->fd = -1;
}

FIXTURE_TEARDOWN(ev)
{
	unlink_name(self->name);
	if (self->fd >= 0)
		close(self->fd);
	cnl_close(&self->ev);
}

/* Created, window, resized, unlinked: each with what changed */
TEST_F(ev, lifecycle)
{
	struct nl_conv *c = &self->w.got;
	struct nl nl;

	self->fd = create_named(self->name, O_RDWR, 0640, 0, 8192);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_CREATED,
				  &self->w));
	EXPECT_EQ(8192, c->capacity);
	EXPECT_EQ(0640, c->mode);
	EXPECT_EQ(0, c->uid);
	EXPECT_EQ(0, c->next_seq);
	EXPECT_TRUE(c->has[CBM_NL_A_WINDOW]);

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 7, 0, 99, 0));
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_WINDOW,
				  &self->w));
	EXPECT_TRUE(c->has_win);
	EXPECT_EQ(CBM_WINDOW_TURNS, c->win.flags);
	EXPECT_EQ(7, c->win.max_msgs);
	EXPECT_EQ(99, c->win.max_tokens);

	ASSERT_EQ(0, resize_to(self->fd, 20000, NULL));
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_RESIZED,
				  &self->w));
	EXPECT_EQ(32768, c->capacity);
	EXPECT_EQ(1, c->resizes);

	/* Through netlink too */
	ASSERT_EQ(0, nl_open(&nl));
	ASSERT_EQ(0, nl_resize(&nl, self->name, 8192, c));
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_RESIZED,
				  &self->w));
	EXPECT_EQ(8192, c->capacity);
	EXPECT_EQ(2, c->resizes);
	ASSERT_EQ(0, nl_unlink(&nl, self->name));
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_UNLINKED,
				  &self->w));
	EXPECT_EQ(0, self->w.others);
	cnl_close(&nl);

	/* Anonymous conversations are not reported */
	close(self->fd);
	self->fd = anon_open(MIN_CAPACITY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, resize_to(self->fd, 8192, NULL));
	memset(&self->w, 0, sizeof(self->w));
	self->w.name = "";
	self->w.event = CBM_NL_EVENT_RESIZED;
	EXPECT_EQ(-1, nl_events(&self->ev, is_event, &self->w, 300));
}

/* Auto-resize is reported as a resize */
TEST_F(ev, autoresize)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 65536, 50, 10, 10);

	self->fd = create_named(self->name, O_RDWR, 0600, 0, MIN_CAPACITY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, set_ar(self->fd, &ar));
	write_range(_metadata, self->fd, 1000, 0, 3);
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_RESIZED,
				  &self->w));
	EXPECT_LT(MIN_CAPACITY, self->w.got.capacity);
	EXPECT_EQ(1, self->w.got.resizes);
}

struct evict_sum {
	const char *name;
	__u64 sum;
	__u64 last_total;
	unsigned int events;
	bool unlinked;
	bool evicted_after_unlink;
};

static bool add_evicted(const struct nl_conv *c, void *arg)
{
	struct evict_sum *s = arg;

	if (strcmp(c->name, s->name))
		return false;
	if (c->event == CBM_NL_EVENT_UNLINKED) {
		s->unlinked = true;
		return true;
	}
	if (c->event != CBM_NL_EVENT_EVICTED)
		return false;
	if (s->unlinked)
		s->evicted_after_unlink = true;
	s->events++;
	s->sum += c->event_count;
	s->last_total = c->evicted;
	return false;
}

/*
 * Thousands of evictions make a few events, at most one per interval,
 * whose counts add up to the evicted counter; the last count comes
 * without more evictions to push it, and before the unlink event.
 */
TEST_F(ev, evicted_rate_limited)
{
	struct evict_sum s = { .name = self->name };
	struct cbm_info info;
	__u64 start, ms;
	int i;

	self->fd = create_named(self->name, O_RDWR, 0600, 0, MIN_CAPACITY);
	ASSERT_LE(0, self->fd);
	start = mono_ms();
	for (i = 0; i < EVICT_MSGS; i++)
		ASSERT_EQ(200, write_tagged(self->fd, 200, i));
	/* Nothing arrives after the flush: the wait times out */
	EXPECT_EQ(-1, nl_events(&self->ev, add_evicted, &s, 1000));
	ms = mono_ms() - start;
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_LT(EVICT_MSGS / 2, info.evicted);
	EXPECT_EQ(info.evicted, s.sum);
	EXPECT_EQ(info.evicted, s.last_total);
	EXPECT_LE(1, s.events);
	EXPECT_GE(ms / CBM_NL_EVICT_INTERVAL_MS + 1, s.events)
		TH_LOG("%u events in %llu ms", s.events,
		       (unsigned long long)ms);

	/* A pending count is sent before the unlink event */
	memset(&s, 0, sizeof(s));
	s.name = self->name;
	for (i = 0; i < 100; i++)
		ASSERT_EQ(200, write_tagged(self->fd, 200, i));
	ASSERT_EQ(0, unlink_name(self->name));
	ASSERT_EQ(0, nl_events(&self->ev, add_evicted, &s, EVENT_MS));
	EXPECT_TRUE(s.unlinked);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(info.evicted, s.last_total);
	EXPECT_EQ(-1, nl_events(&self->ev, add_evicted, &s, 300));
	EXPECT_FALSE(s.evicted_after_unlink);
}

/* Whether a report is only the entry: name, flags, ids, mode, capacity */
static void expect_restricted(struct __test_metadata *_metadata,
			      const struct nl_conv *c, bool restricted)
{
	int i;

	EXPECT_EQ(restricted, c->has[CBM_NL_A_RESTRICTED]);
	EXPECT_TRUE(c->has[CBM_NL_A_NAME] && c->has[CBM_NL_A_FLAGS] &&
		    c->has[CBM_NL_A_UID] && c->has[CBM_NL_A_GID] &&
		    c->has[CBM_NL_A_MODE] && c->has[CBM_NL_A_CAPACITY]);
	if (restricted)
		EXPECT_EQ(0, c->nr_rd);
	for (i = CBM_NL_A_USED; i <= CBM_NL_A_AUTORESIZE; i++)
		EXPECT_EQ(!restricted, c->has[i]) TH_LOG("attribute %d", i);
}

struct find_conv {
	const char *name;
	struct nl_conv c;
	bool found;
};

static void find_one(struct nlmsghdr *nlh, unsigned int part, void *arg)
{
	struct find_conv *f = arg;
	static struct nl_conv c;

	(void)part;
	parse_conv(nlh, &c);
	if (!strcmp(c.name, f->name)) {
		memcpy(&f->c, &c, sizeof(c));
		f->found = true;
	}
}

/*
 * Somebody who may not read a conversation sees its entry only, in a get
 * and in a dump; its owner, its readers and root see everything.
 */
TEST_F(conv, restricted)
{
	struct find_conv f = { .name = self->name };
	char priv[CBM_NAME_MAX], mine[CBM_NAME_MAX];
	struct nl_msg *msg;
	int pfd, mfd;

	conv_name(priv, "private");
	pfd = create_named(priv, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, pfd);
	ASSERT_EQ(1, write_str(pfd, "x"));

	ASSERT_EQ(0, nl_get(&self->nl, priv, &self->c));
	expect_restricted(_metadata, &self->c, false);
	EXPECT_EQ(1, self->c.nr_rd);

	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	EXPECT_EQ(0, nl_get(&self->nl, priv, &self->c));
	expect_restricted(_metadata, &self->c, true);
	EXPECT_EQ(0600, self->c.mode);
	EXPECT_EQ(0, self->c.uid);
	EXPECT_LT(0, self->c.capacity);

	/* In a dump too; the readable 0644 one is whole */
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_GET, NLM_F_DUMP);
	ASSERT_NE(NULL, msg);
	EXPECT_EQ(0, nl_talk(&self->nl, msg, find_one, &f, NULL, NULL));
	EXPECT_TRUE(f.found);
	expect_restricted(_metadata, &f.c, false);
	f.name = priv;
	f.found = false;
	msg = nl_req(&self->nl, CBM_NL_CMD_CONV_GET, NLM_F_DUMP);
	ASSERT_NE(NULL, msg);
	EXPECT_EQ(0, nl_talk(&self->nl, msg, find_one, &f, NULL, NULL));
	EXPECT_TRUE(f.found);
	expect_restricted(_metadata, &f.c, true);

	/* The owner of a 0600 conversation sees it whole */
	conv_name(mine, "mine");
	mfd = create_named(mine, O_WRONLY, 0600, 0, 0);
	EXPECT_LE(0, mfd);
	EXPECT_EQ(0, nl_get(&self->nl, mine, &self->c));
	expect_restricted(_metadata, &self->c, false);
	EXPECT_EQ(UNPRIV_UID, self->c.uid);
	ASSERT_EQ(0, become_root());

	EXPECT_EQ(0, unlink_name(mine));
	EXPECT_EQ(0, unlink_name(priv));
	close(mfd);
	close(pfd);
}

/* Joining the events group takes CAP_SYS_ADMIN */
TEST(events_need_cap)
{
	struct nl nl;
	int group;

	ASSERT_EQ(0, nl_open(&nl));
	group = nl.group;
	ASSERT_EQ(0, become(UNPRIV_UID, UNPRIV_GID));
	EXPECT_EQ(-1, setsockopt(nl_socket_get_fd(nl.sk), SOL_NETLINK,
				 NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, become_root());
	EXPECT_EQ(0, setsockopt(nl_socket_get_fd(nl.sk), SOL_NETLINK,
				NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)));
	cnl_close(&nl);
}

/* After the unlink event, a conversation still open sends no more */
TEST_F(ev, none_after_unlink)
{
	self->fd = create_named(self->name, O_RDWR, 0600, 0, MIN_CAPACITY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_CREATED,
				  &self->w));
	ASSERT_EQ(0, unlink_name(self->name));
	ASSERT_EQ(0, expect_event(&self->ev, self->name, CBM_NL_EVENT_UNLINKED,
				  &self->w));
	ASSERT_EQ(0, resize_to(self->fd, 2 * MIN_CAPACITY, NULL));
	ASSERT_EQ(0, set_window(self->fd, 0, 1, 0, 0, 0));
	memset(&self->w, 0, sizeof(self->w));
	self->w.name = self->name;
	self->w.event = CBM_NL_EVENT_RESIZED;
	EXPECT_EQ(-1, nl_events(&self->ev, is_event, &self->w, 300));
	EXPECT_EQ(0, self->w.others);
}

#define REUSE_ROUNDS	100

struct reuse_seen {
	const char *name;
	unsigned int created, unlinked;
	bool out_of_order;
};

static bool reuse_event(const struct nl_conv *c, void *arg)
{
	struct reuse_seen *r = arg;

	if (strcmp(c->name, r->name))
		return false;
	if (c->event == CBM_NL_EVENT_CREATED) {
		r->out_of_order |= r->created != r->unlinked;
		r->created++;
	} else if (c->event == CBM_NL_EVENT_UNLINKED) {
		r->unlinked++;
		r->out_of_order |= r->created != r->unlinked;
	}
	return false;
}

/* Returns how many times it created the name */
static unsigned int reuse_name(const char *name)
{
	unsigned int i, made = 0;
	int fd;

	for (i = 0; i < REUSE_ROUNDS; i++) {
		fd = create_named(name, O_WRONLY, 0600, 0, MIN_CAPACITY);
		if (fd < 0)
			continue;
		made++;
		close(fd);
		unlink_name(name);
	}
	return made;
}

/*
 * Two processes create and unlink one name as fast as they can: its
 * events must alternate, created then unlinked, one pair per creation
 */
TEST_F(ev, name_reuse_in_order)
{
	struct reuse_seen r = { .name = self->name };
	int status, rcvbuf = 16 << 20;
	unsigned int made;
	pid_t pid;

	/* Every event stays queued until the end: room for all of them */
	ASSERT_EQ(0, setsockopt(nl_socket_get_fd(self->ev.sk), SOL_SOCKET,
				SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(reuse_name(self->name) ? 0 : 1);
	made = reuse_name(self->name);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	nl_events(&self->ev, reuse_event, &r, 300);
	EXPECT_FALSE(r.out_of_order);
	EXPECT_EQ(r.created, r.unlinked);
	EXPECT_LE(made, r.created);
	EXPECT_GE(2 * REUSE_ROUNDS, r.created);
}

TEST_HARNESS_MAIN
