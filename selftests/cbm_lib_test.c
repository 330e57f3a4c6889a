// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: libcbm against the real module. Each wrapper must hand back what
 * the kernel did, as 0/count or the kernel's own negative errno (netlink
 * errors included, through the nlmsgerr), and the logic libcbm keeps in
 * userspace must hold: receive buffers that grow, a record that did not
 * fit kept for the next call, restores in chunks, dumps that span several
 * messages or are stopped early, events drained without waiting.
 *
 * This file uses only libcbm (linked statically from
 * ../userspace/lib/libcbm.a), not cbm_util.h, whose raw helpers share
 * names with the library's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "libcbm.h"

/* The unprivileged identity helper processes switch to */
#define UNPRIV_UID	1000
/* Conversations the multi-part dump test creates */
#define MANY		300
/* Messages of the chunked restore: more than one CBM_BATCH_MAX chunk */
#define RESTORE_N	(CBM_BATCH_MAX + 300)
/* Milliseconds to wait for an event the test caused */
#define EVENT_MS	3000

/* The test's pid keeps names unique across tests and leaked conversations */
static void conv_name(char name[CBM_NAME_MAX], const char *tag)
{
	snprintf(name, CBM_NAME_MAX, "lib-%d-%s", (int)getpid(), tag);
}

static int send_str(struct cbm *c, unsigned int role, const char *s,
		    uint64_t *seq)
{
	struct cbm_message m = { .role = role, .data = s, .len = strlen(s) };

	return cbm_send(c, &m, seq);
}

/* Runs @fn in a child as UNPRIV_UID; returns its exit status */
static int run_unpriv(int (*fn)(const char *), const char *name)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		alarm(10);
		if (setresgid(UNPRIV_UID, UNPRIV_UID, UNPRIV_UID) ||
		    setresuid(UNPRIV_UID, UNPRIV_UID, UNPRIV_UID))
			_exit(100);
		_exit(fn(name));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

FIXTURE(lib) {
	char name[CBM_NAME_MAX];
	struct cbm *c;
};

FIXTURE_SETUP(lib)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_NONBLOCK,
		    .capacity = 65536);

	conv_name(self->name, "fix");
	ASSERT_EQ(0, cbm_create(self->name, &opts, &self->c));
}

FIXTURE_TEARDOWN(lib)
{
	cbm_close(self->c);
	cbm_unlink(self->name);
}

static int attach_as_other(const char *name)
{
	struct cbm *c;

	return cbm_attach(name, NULL, &c) == -EACCES ? 0 : 1;
}

TEST_F(lib, open_errnos)
{
	LIBCBM_OPTS(cbm_open_opts, opts);
	char other[CBM_NAME_MAX];
	struct cbm_info info;
	struct cbm *c;

	conv_name(other, "none");
	EXPECT_EQ(-ENOENT, cbm_attach(other, NULL, &c));
	EXPECT_EQ(-ENOENT, cbm_unlink(other));
	EXPECT_EQ(-EEXIST, cbm_create(self->name, NULL, &c));
	EXPECT_EQ(-EBUSY, cbm_unlink(CBM_DEFAULT_NAME));
	EXPECT_EQ(-EINVAL, cbm_attach("bad/name", NULL, &c));

	/* CREATE without EXCL attaches to what exists */
	opts.flags = CBM_OPEN_CREATE;
	ASSERT_EQ(0, cbm_open(self->name, &opts, &c));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_STREQ(self->name, info.name);
	EXPECT_EQ(65536, info.capacity);
	/* mode 0 made the fixture's conversation 0600 */
	EXPECT_EQ(0600, info.mode);
	cbm_close(c);

	ASSERT_EQ(0, cbm_attach(NULL, NULL, &c));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_STREQ(CBM_DEFAULT_NAME, info.name);
	cbm_close(c);

	opts.flags = CBM_OPEN_ANON;
	opts.capacity = 5000;
	ASSERT_EQ(0, cbm_open(NULL, &opts, &c));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_TRUE(info.flags & CBM_CONV_ANON);
	EXPECT_EQ(8192, info.capacity);
	cbm_close(c);

	opts.flags = 0;
	opts.mode = 0640;
	opts.conv_flags = CBM_CONV_LOSSLESS;
	ASSERT_EQ(0, cbm_create(other, &opts, &c));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_EQ(0640, info.mode);
	EXPECT_TRUE(info.flags & CBM_CONV_LOSSLESS);
	cbm_close(c);
	EXPECT_EQ(0, run_unpriv(attach_as_other, self->name));
	EXPECT_EQ(0, cbm_unlink(other));
	EXPECT_EQ(-ENOENT, cbm_unlink(other));
}

TEST_F(lib, access_modes)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_RDONLY);
	struct cbm_reader_info ri;
	struct cbm_record rec;
	struct cbm *c;
	char buf[8];

	ASSERT_EQ(0, cbm_attach(self->name, &opts, &c));
	EXPECT_EQ(-EBADF, send_str(c, CBM_ROLE_USER, "x", NULL));
	EXPECT_EQ(-EBADF, cbm_resize(c, 8192, NULL, NULL));
	cbm_close(c);

	opts.flags = CBM_OPEN_WRONLY;
	ASSERT_EQ(0, cbm_attach(self->name, &opts, &c));
	EXPECT_EQ(-EBADF, cbm_recv(c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(-EBADF, cbm_reader_info(c, &ri));
	EXPECT_EQ(0, send_str(c, CBM_ROLE_USER, "x", NULL));
	cbm_close(c);
}

TEST_F(lib, send_recv)
{
	struct cbm_message m = { .role = CBM_ROLE_ASSISTANT,
				 .flags = 0x10000, .tokens = 7,
				 .data = "hello", .len = 5 };
	struct cbm_record rec;
	uint64_t seq = 99;
	char buf[64];

	EXPECT_EQ(-EAGAIN, cbm_recv(self->c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(0, cbm_wait(self->c, 0));
	ASSERT_EQ(0, cbm_send(self->c, &m, &seq));
	EXPECT_EQ(0, seq);
	ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "", &seq));
	EXPECT_EQ(1, seq);
	EXPECT_EQ(1, cbm_wait(self->c, 0));

	memset(&rec, 0xa5, sizeof(rec));
	ASSERT_EQ(1, cbm_recv(self->c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(CBM_RECORD_MSG, rec.type);
	EXPECT_EQ(sizeof(rec), rec.hdr_len);
	EXPECT_EQ(0, rec.seq);
	EXPECT_EQ(5, rec.len);
	EXPECT_EQ(CBM_ROLE_ASSISTANT, rec.role);
	EXPECT_EQ(0x10000, rec.flags);
	EXPECT_EQ(7, rec.tokens);
	EXPECT_EQ(getpid(), (pid_t)rec.pid);
	EXPECT_EQ(0, memcmp(buf, "hello", 5));

	/* An empty payload needs no buffer */
	ASSERT_EQ(1, cbm_recv(self->c, &rec, NULL, 0));
	EXPECT_EQ(1, rec.seq);
	EXPECT_EQ(0, rec.len);
	EXPECT_EQ(-EAGAIN, cbm_recv(self->c, &rec, buf, sizeof(buf)));

	m.role = __CBM_ROLE_MAX;
	EXPECT_EQ(-EINVAL, cbm_send(self->c, &m, &seq));
	m.role = CBM_ROLE_USER;
	m.flags = 0x8000;
	EXPECT_EQ(-EINVAL, cbm_send(self->c, &m, &seq));
}

TEST_F(lib, batch)
{
	struct cbm_message m[3] = {
		{ .role = CBM_ROLE_SYSTEM, .data = "a", .len = 1 },
		{ .role = CBM_ROLE_USER, .data = "bb", .len = 2 },
		{ .role = CBM_ROLE_TOOL, .data = "ccc", .len = 3 },
	};
	struct cbm_record rec;
	uint64_t first = 99;
	char buf[8];
	int i;

	ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "0", NULL));
	EXPECT_EQ(3, cbm_send_batch(self->c, m, 3, &first));
	EXPECT_EQ(1, first);
	EXPECT_EQ(0, cbm_send_batch(self->c, m, 0, &first));
	EXPECT_EQ(-E2BIG, cbm_send_batch(self->c, m, CBM_BATCH_MAX + 1,
					 &first));
	m[2].role = __CBM_ROLE_MAX;
	/* Checked whole: nothing of a bad batch is appended */
	EXPECT_EQ(-EINVAL, cbm_send_batch(self->c, m, 3, &first));

	ASSERT_EQ(1, cbm_recv(self->c, &rec, buf, sizeof(buf)));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, cbm_recv(self->c, &rec, buf, sizeof(buf)));
		EXPECT_EQ(i + 1, rec.seq);
		EXPECT_EQ(m[i].len, rec.len);
		EXPECT_EQ(i == 2 ? CBM_ROLE_TOOL : m[i].role, rec.role);
	}
	EXPECT_EQ(-EAGAIN, cbm_recv(self->c, &rec, buf, sizeof(buf)));
}

TEST_F(lib, emsgsize_keeps_record)
{
	static char big[20000], out[20000];
	struct cbm_message m = { .role = CBM_ROLE_USER, .data = big,
				 .len = sizeof(big) };
	struct cbm_reader_info ri;
	struct cbm_record rec;
	uint64_t cursor;
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = i * 7;
	ASSERT_EQ(0, cbm_send(self->c, &m, NULL));
	ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "next", NULL));

	/* Larger than the handle's first buffer: it grows */
	rec.len = 0;
	EXPECT_EQ(-EMSGSIZE, cbm_recv(self->c, &rec, out, 100));
	EXPECT_EQ(sizeof(big), rec.len);
	EXPECT_EQ(1, cbm_wait(self->c, 0));
	EXPECT_EQ(-EMSGSIZE, cbm_recv(self->c, &rec, out, sizeof(big) - 1));
	ASSERT_EQ(1, cbm_recv(self->c, &rec, out, sizeof(out)));
	EXPECT_EQ(0, rec.seq);
	EXPECT_EQ(0, memcmp(big, out, sizeof(big)));
	ASSERT_EQ(1, cbm_recv(self->c, &rec, out, sizeof(out)));
	EXPECT_EQ(1, rec.seq);

	/* A seek drops a record kept after -EMSGSIZE */
	ASSERT_EQ(0, cbm_seek(self->c, CBM_SEEK_SEQ, 0, &cursor));
	EXPECT_EQ(-EMSGSIZE, cbm_recv(self->c, &rec, out, 10));
	ASSERT_EQ(0, cbm_reader_info(self->c, &ri));
	EXPECT_EQ(1, ri.cursor);
	ASSERT_EQ(0, cbm_seek(self->c, CBM_SEEK_SEQ, 1, &cursor));
	EXPECT_EQ(1, cursor);
	ASSERT_EQ(1, cbm_recv(self->c, &rec, out, 10));
	EXPECT_EQ(1, rec.seq);
	EXPECT_EQ(0, memcmp(out, "next", 4));
}

TEST(gap_record)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_ANON |
		    CBM_OPEN_NONBLOCK, .capacity = 4096);
	static char payload[1000];
	struct cbm_message m = { .role = CBM_ROLE_USER, .data = payload,
				 .len = sizeof(payload) };
	struct cbm_reader_info ri;
	struct cbm_record rec;
	struct cbm *c;
	uint64_t seq;
	int i;

	/* 4096 bytes hold 3 records of 1056: 10 messages evict 7 */
	ASSERT_EQ(0, cbm_open(NULL, &opts, &c));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, cbm_send(c, &m, &seq));
	ASSERT_EQ(1, cbm_recv(c, &rec, payload, sizeof(payload)));
	EXPECT_EQ(CBM_RECORD_GAP, rec.type);
	EXPECT_EQ(0, rec.seq);
	EXPECT_EQ(7, rec.lost);
	EXPECT_EQ(0, rec.len);
	ASSERT_EQ(1, cbm_recv(c, &rec, payload, sizeof(payload)));
	EXPECT_EQ(CBM_RECORD_MSG, rec.type);
	EXPECT_EQ(7, rec.seq);
	ASSERT_EQ(0, cbm_reader_info(c, &ri));
	EXPECT_EQ(7, ri.lost);
	cbm_close(c);
}

TEST(unlinked_drains_then_ends)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_NONBLOCK);
	char name[CBM_NAME_MAX], buf[8];
	struct cbm_record rec;
	struct cbm *c;

	conv_name(name, "unl");
	ASSERT_EQ(0, cbm_create(name, &opts, &c));
	ASSERT_EQ(0, send_str(c, CBM_ROLE_USER, "last", NULL));
	ASSERT_EQ(0, cbm_unlink(name));
	EXPECT_EQ(1, cbm_wait(c, 0));
	ASSERT_EQ(1, cbm_recv(c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(1, cbm_wait(c, 0));
	EXPECT_EQ(0, cbm_recv(c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(-EPIPE, send_str(c, CBM_ROLE_USER, "x", NULL));
	cbm_close(c);
}

TEST_F(lib, wait_timeout)
{
	struct timespec a, b;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &a);
	EXPECT_EQ(0, cbm_wait(self->c, 100));
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	EXPECT_GE(ms, 90);
}

TEST_F(lib, seek)
{
	struct cbm_record rec;
	uint64_t cursor = 99;
	char buf[8];
	int i;

	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "m", NULL));
	ASSERT_EQ(0, cbm_seek(self->c, CBM_SEEK_LAST, 2, &cursor));
	EXPECT_EQ(3, cursor);
	ASSERT_EQ(1, cbm_recv(self->c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(3, rec.seq);
	ASSERT_EQ(0, cbm_seek(self->c, CBM_SEEK_TIME, 0, &cursor));
	EXPECT_EQ(0, cursor);
	ASSERT_EQ(0, cbm_seek(self->c, CBM_SEEK_SEQ, 5, NULL));
	EXPECT_EQ(-EAGAIN, cbm_recv(self->c, &rec, buf, sizeof(buf)));
	EXPECT_EQ(-EINVAL, cbm_seek(self->c, CBM_SEEK_SEQ, 6, &cursor));
	EXPECT_EQ(-EINVAL, cbm_seek(self->c, __CBM_SEEK_MAX, 0, &cursor));
}

TEST_F(lib, read_window)
{
	static const char *const texts[] = { "one", "three", "seventeen" };
	const struct cbm_record *r;
	uint64_t count = 99;
	size_t len = 99;
	void *buf = &len;
	unsigned int i;

	ASSERT_EQ(0, cbm_read_window(self->c, 0, &buf, &len, &count));
	EXPECT_EQ(NULL, buf);
	EXPECT_EQ(0, len);
	EXPECT_EQ(0, count);

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, texts[i], NULL));
	ASSERT_EQ(0, cbm_read_window(self->c, 0, &buf, &len, &count));
	ASSERT_EQ(3, count);
	EXPECT_EQ(CBM_RECORD_SPACE(3) + CBM_RECORD_SPACE(5) +
		  CBM_RECORD_SPACE(9), len);
	r = buf;
	for (i = 0; i < count; i++, r = cbm_record_next(r)) {
		EXPECT_EQ(i, r->seq);
		ASSERT_EQ(strlen(texts[i]), r->len);
		EXPECT_EQ(0, memcmp(cbm_record_payload(r), texts[i], r->len));
	}
	EXPECT_EQ((const char *)buf + len, (const char *)r);
	free(buf);

	ASSERT_EQ(0, cbm_read_window(self->c, 1, &buf, &len, &count));
	ASSERT_EQ(1, count);
	EXPECT_EQ(2, ((const struct cbm_record *)buf)->seq);
	free(buf);
}

TEST_F(lib, map_attach)
{
	struct cbm_map_rec r;
	struct cbm_map map;

	ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "zero", NULL));
	ASSERT_EQ(0, cbm_map_attach(self->c, CBM_MAP_OLDEST, &map));
	ASSERT_EQ(1, cbm_map_peek(&map, &r));
	EXPECT_EQ(0, r.hdr.seq);
	EXPECT_EQ(0, memcmp(r.payload, "zero", 4));
	EXPECT_EQ(0, cbm_map_release(&map));
	EXPECT_EQ(0, cbm_map_peek(&map, &r));
	cbm_map_close(&map);

	ASSERT_EQ(0, cbm_map_attach(self->c, CBM_MAP_NEWEST, &map));
	EXPECT_EQ(0, cbm_map_peek(&map, &r));
	ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "one", NULL));
	ASSERT_EQ(1, cbm_map_peek(&map, &r));
	EXPECT_EQ(1, r.hdr.seq);
	cbm_map_close(&map);
}

TEST_F(lib, config)
{
	struct cbm_window win = { .size = 1, .max_msgs = 2 }, got;
	struct cbm_autoresize ar = { .flags = CBM_AUTORESIZE_ON,
				     .min_capacity = 8192,
				     .max_capacity = 1 << 20,
				     .high_pct = 80, .low_pct = 20,
				     .period_ms = 1000 }, ar_got;
	struct cbm_message pin = { .role = CBM_ROLE_SYSTEM,
				   .flags = CBM_MSG_PINNED, .data = "sys",
				   .len = 3 };
	uint64_t cap = 0, evicted = 99, seq;
	struct cbm_info info;
	int i;

	/* The library sets the size: the caller's is ignored */
	ASSERT_EQ(0, cbm_set_window(self->c, &win));
	memset(&got, 0xa5, sizeof(got));
	ASSERT_EQ(0, cbm_get_window(self->c, &got));
	EXPECT_EQ(sizeof(got), got.size);
	EXPECT_EQ(2, got.max_msgs);
	EXPECT_EQ(0, got.max_bytes);

	ASSERT_EQ(0, cbm_send(self->c, &pin, &seq));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "m", NULL));
	ASSERT_EQ(0, cbm_info(self->c, &info));
	EXPECT_EQ(3, info.msgs);
	EXPECT_EQ(1, info.pinned);
	EXPECT_EQ(2, info.evicted);
	ASSERT_EQ(0, cbm_unpin(self->c, seq));
	EXPECT_EQ(-ENOENT, cbm_unpin(self->c, seq));

	ASSERT_EQ(0, cbm_resize(self->c, 5000, &cap, &evicted));
	EXPECT_EQ(8192, cap);
	EXPECT_EQ(0, evicted);
	ASSERT_EQ(0, cbm_resize(self->c, 16384, NULL, NULL));
	ASSERT_EQ(0, cbm_info(self->c, &info));
	EXPECT_EQ(16384, info.capacity);
	EXPECT_EQ(2, info.resizes);

	ASSERT_EQ(0, cbm_set_autoresize(self->c, &ar));
	ASSERT_EQ(0, cbm_get_autoresize(self->c, &ar_got));
	EXPECT_EQ(sizeof(ar_got), ar_got.size);
	EXPECT_EQ(CBM_AUTORESIZE_ON, ar_got.flags);
	EXPECT_EQ(8192, ar_got.min_capacity);
	EXPECT_EQ(1 << 20, ar_got.max_capacity);
	EXPECT_EQ(1000, ar_got.period_ms);
	ar.low_pct = 50;
	EXPECT_EQ(-EINVAL, cbm_set_autoresize(self->c, &ar));
}

static int restore_as_other(const char *name)
{
	struct cbm_saved_message s = { .msg.data = "x", .msg.len = 1,
				       .seq = 0, .ts_ns = 1 };
	struct cbm *c;
	int ret;

	/* 0666 lets the helper write, but only the owner may restore */
	if (cbm_attach(name, NULL, &c))
		return 2;
	ret = cbm_restore(c, &s, 1, 0);
	cbm_close(c);
	return ret == -EPERM ? 0 : 1;
}

TEST(restore)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_NONBLOCK,
		    .capacity = 1 << 20, .mode = 0666);
	struct cbm_saved_message *s;
	char name[CBM_NAME_MAX];
	const struct cbm_record *r;
	struct cbm_info info;
	uint64_t count;
	struct cbm *c;
	size_t len, i;
	void *buf;

	s = calloc(RESTORE_N, sizeof(*s));
	ASSERT_NE(NULL, s);
	for (i = 0; i < RESTORE_N; i++) {
		s[i].msg.role = i % __CBM_ROLE_MAX;
		s[i].msg.flags = 0x20000;
		s[i].msg.tokens = i;
		s[i].msg.data = "saved";
		s[i].msg.len = 5;
		/* Numbered on from 10: the older ones were long evicted */
		s[i].seq = 10 + i;
		s[i].ts_ns = 1000000 + i;
	}
	conv_name(name, "rst");
	ASSERT_EQ(0, cbm_create(name, &opts, &c));
	EXPECT_EQ(0, run_unpriv(restore_as_other, name));
	/* Out of order: the first chunk fails whole, with the kernel's errno */
	s[1].seq = s[0].seq;
	EXPECT_EQ(-EINVAL, cbm_restore(c, s, RESTORE_N, 0));
	s[1].seq = 11;
	/*
	 * next_seq goes with the last chunk only: with the first, the kernel
	 * would refuse it as a hole after unpinned messages.
	 */
	EXPECT_EQ(RESTORE_N, cbm_restore(c, s, RESTORE_N, 10 + RESTORE_N));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_EQ(RESTORE_N, info.msgs);
	EXPECT_EQ(10, info.first_seq);
	EXPECT_EQ(10 + RESTORE_N, info.next_seq);

	ASSERT_EQ(0, cbm_read_window(c, 0, &buf, &len, &count));
	ASSERT_EQ(RESTORE_N, count);
	r = buf;
	for (i = 0; i < count; i++, r = cbm_record_next(r)) {
		if (r->seq != s[i].seq || r->ts_ns != s[i].ts_ns ||
		    r->role != s[i].msg.role || r->tokens != i ||
		    r->flags != 0x20000)
			break;
	}
	EXPECT_EQ(RESTORE_N, i);
	free(buf);

	/* More restores may follow; then a normal append ends them */
	s[0].seq = 10 + RESTORE_N;
	s[0].ts_ns = 2000000;
	EXPECT_EQ(1, cbm_restore(c, s, 1, 0));
	ASSERT_EQ(0, send_str(c, CBM_ROLE_USER, "new", NULL));
	s[0].seq = 20 + RESTORE_N;
	EXPECT_EQ(-EBUSY, cbm_restore(c, s, 1, 0));
	cbm_close(c);
	EXPECT_EQ(0, cbm_unlink(name));

	/* Pinned messages may have holes, and next_seq jumps past them */
	ASSERT_EQ(0, cbm_create(name, &opts, &c));
	for (i = 0; i < 2; i++) {
		s[i].msg.flags = CBM_MSG_PINNED;
		s[i].seq = 3 + 4 * i;
		s[i].ts_ns = 3000000 + i;
	}
	EXPECT_EQ(2, cbm_restore(c, s, 2, 100));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_EQ(2, info.pinned);
	EXPECT_EQ(100, info.next_seq);
	/* No message and a next_seq: one call, applied */
	EXPECT_EQ(0, cbm_restore(c, NULL, 0, 200));
	ASSERT_EQ(0, cbm_info(c, &info));
	EXPECT_EQ(200, info.next_seq);
	cbm_close(c);
	EXPECT_EQ(0, cbm_unlink(name));
	free(s);
}

FIXTURE(nl) {
	char name[CBM_NAME_MAX];
	struct cbm *c;
	struct cbm_nl *nl;
};

FIXTURE_SETUP(nl)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_NONBLOCK,
		    .capacity = 8192, .mode = 0644);

	conv_name(self->name, "nl");
	ASSERT_EQ(0, cbm_create(self->name, &opts, &self->c));
	ASSERT_EQ(0, cbm_nl_open(&self->nl));
}

FIXTURE_TEARDOWN(nl)
{
	cbm_nl_close(self->nl);
	cbm_close(self->c);
	cbm_unlink(self->name);
}

TEST_F(nl, get)
{
	struct cbm_window win = { .max_msgs = 5, .max_age_ns = 1000000000000 };
	struct cbm_stats *s = NULL;
	char other[CBM_NAME_MAX];
	struct cbm *r;
	int i;

	ASSERT_EQ(0, cbm_set_window(self->c, &win));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_str(self->c, CBM_ROLE_USER, "abc", NULL));
	ASSERT_EQ(0, cbm_attach(self->name, NULL, &r));
	ASSERT_EQ(0, cbm_seek(r, CBM_SEEK_SEQ, 1, NULL));

	ASSERT_EQ(0, cbm_nl_get(self->nl, self->name, &s));
	EXPECT_STREQ(self->name, s->name);
	EXPECT_EQ(8192, s->capacity);
	EXPECT_EQ(3, s->msgs);
	EXPECT_EQ(3, s->appended);
	EXPECT_EQ(0, s->first_seq);
	EXPECT_EQ(3, s->next_seq);
	EXPECT_EQ(3 * CBM_RECORD_SPACE(3), s->used);
	EXPECT_EQ(0644, s->mode);
	EXPECT_EQ(getuid(), s->uid);
	EXPECT_EQ(2, s->readers);
	EXPECT_EQ(5, s->window.max_msgs);
	EXPECT_EQ(1000000000000, s->window.max_age_ns);
	EXPECT_EQ(0, s->window.size);
	ASSERT_EQ(2, s->nr_reader_stats);
	EXPECT_FALSE(s->readers_truncated);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(getpid(), (pid_t)s->reader_stats[i].pid);
		/* The fixture's reader is at 0, the second one at 1 */
		EXPECT_EQ(s->reader_stats[i].cursor + s->reader_stats[i].lag,
			  3);
	}
	EXPECT_NE(s->reader_stats[0].cursor, s->reader_stats[1].cursor);
	cbm_stats_free(s);
	cbm_close(r);

	conv_name(other, "none");
	s = NULL;
	EXPECT_EQ(-ENOENT, cbm_nl_get(self->nl, other, &s));
	EXPECT_EQ(NULL, s);
	/* The kernel's validation, not the library's */
	EXPECT_EQ(-EINVAL, cbm_nl_get(self->nl, "bad/name", &s));
	/* The socket is still in step after errors */
	ASSERT_EQ(0, cbm_nl_get(self->nl, self->name, &s));
	cbm_stats_free(s);
}

struct dump_ctx {
	const char *prefix;
	int seen;
	int calls;
	int stop_after;
	char last[CBM_NAME_MAX];
	bool unsorted;
};

static int dump_cb(const struct cbm_stats *s, void *arg)
{
	struct dump_ctx *d = arg;

	d->calls++;
	if (strcmp(d->last, s->name) >= 0)
		d->unsorted = true;
	memcpy(d->last, s->name, sizeof(d->last));
	if (!strncmp(s->name, d->prefix, strlen(d->prefix)))
		d->seen++;
	return d->calls == d->stop_after ? 42 : 0;
}

TEST_F(nl, dump_many)
{
	char prefix[CBM_NAME_MAX], name[CBM_NAME_MAX];
	struct dump_ctx d = { 0 };
	struct cbm_stats *s;
	struct cbm *c;
	int i;

	conv_name(prefix, "many-");
	for (i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "lib-%d-many-%03d", (int)getpid(), i);
		ASSERT_EQ(0, cbm_create(name, NULL, &c));
		cbm_close(c);
	}
	d.prefix = prefix;
	EXPECT_EQ(0, cbm_nl_dump(self->nl, dump_cb, &d));
	EXPECT_EQ(MANY, d.seen);
	EXPECT_FALSE(d.unsorted);

	/* Stopped early: the callback's value, and the rest drained */
	memset(&d, 0, sizeof(d));
	d.prefix = prefix;
	d.stop_after = 3;
	EXPECT_EQ(42, cbm_nl_dump(self->nl, dump_cb, &d));
	EXPECT_EQ(3, d.calls);
	ASSERT_EQ(0, cbm_nl_get(self->nl, self->name, &s));
	EXPECT_STREQ(self->name, s->name);
	cbm_stats_free(s);

	for (i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "lib-%d-many-%03d", (int)getpid(), i);
		EXPECT_EQ(0, cbm_nl_unlink(self->nl, name));
	}
	memset(&d, 0, sizeof(d));
	d.prefix = prefix;
	EXPECT_EQ(0, cbm_nl_dump(self->nl, dump_cb, &d));
	EXPECT_EQ(0, d.seen);
}

static int nl_unlink_as_other(const char *name)
{
	struct cbm_window win = { .max_msgs = 1 };
	struct cbm_stats *s;
	struct cbm_nl *nl;
	int ret = 0;

	if (cbm_nl_open(&nl))
		return 2;
	/* Anyone may look; only the owner may change */
	if (cbm_nl_get(nl, name, &s))
		ret = 3;
	else
		cbm_stats_free(s);
	if (cbm_nl_unlink(nl, name) != -EACCES ||
	    cbm_nl_set_window(nl, name, &win) != -EPERM ||
	    cbm_nl_resize(nl, name, 16384, NULL) != -EPERM)
		ret = 1;
	cbm_nl_close(nl);
	return ret;
}

TEST_F(nl, ops)
{
	struct cbm_window win = { .flags = CBM_WINDOW_TURNS, .max_msgs = 2,
				  .max_bytes = 100, .max_tokens = 50,
				  .max_age_ns = 5000000000 }, got;
	char other[CBM_NAME_MAX];
	uint64_t cap = 0;
	struct cbm *c;

	EXPECT_EQ(0, run_unpriv(nl_unlink_as_other, self->name));

	ASSERT_EQ(0, cbm_nl_set_window(self->nl, self->name, &win));
	ASSERT_EQ(0, cbm_get_window(self->c, &got));
	EXPECT_EQ(CBM_WINDOW_TURNS, got.flags);
	EXPECT_EQ(2, got.max_msgs);
	EXPECT_EQ(100, got.max_bytes);
	EXPECT_EQ(50, got.max_tokens);
	EXPECT_EQ(5000000000, got.max_age_ns);
	/* Every limit is sent: zeroes clear them */
	memset(&win, 0, sizeof(win));
	ASSERT_EQ(0, cbm_nl_set_window(self->nl, self->name, &win));
	ASSERT_EQ(0, cbm_get_window(self->c, &got));
	EXPECT_EQ(0, got.max_msgs);
	EXPECT_EQ(0, got.max_age_ns);
	win.flags = 0x80;
	EXPECT_EQ(-EINVAL, cbm_nl_set_window(self->nl, self->name, &win));

	ASSERT_EQ(0, cbm_nl_resize(self->nl, self->name, 20000, &cap));
	EXPECT_EQ(32768, cap);
	EXPECT_EQ(-E2BIG, cbm_nl_resize(self->nl, self->name, 1ULL << 40,
					 &cap));

	conv_name(other, "none");
	EXPECT_EQ(-ENOENT, cbm_nl_unlink(self->nl, other));
	EXPECT_EQ(-ENOENT, cbm_nl_resize(self->nl, other, 8192, NULL));
	EXPECT_EQ(-EBUSY, cbm_nl_unlink(self->nl, CBM_DEFAULT_NAME));
	ASSERT_EQ(0, cbm_nl_unlink(self->nl, self->name));
	EXPECT_EQ(-ENOENT, cbm_attach(self->name, NULL, &c));
}

#define MAX_EVENTS	64

struct ev_log {
	const char *name;
	int n;
	unsigned int type[MAX_EVENTS];
	uint64_t count[MAX_EVENTS];
	uint64_t capacity[MAX_EVENTS];
	uint64_t max_msgs[MAX_EVENTS];
	int stop;
};

static int ev_cb(const struct cbm_event *e, void *arg)
{
	struct ev_log *l = arg;

	/* Other tests' conversations are not ours to count */
	if (strcmp(e->name, l->name) || l->n == MAX_EVENTS)
		return 0;
	l->type[l->n] = e->type;
	l->count[l->n] = e->count;
	l->capacity[l->n] = e->stats->capacity;
	l->max_msgs[l->n] = e->stats->window.max_msgs;
	l->n++;
	return l->stop;
}

/*
 * Handles events until @l holds @n of ours or EVENT_MS pass. Returns 0 or
 * the first error of cbm_nl_events().
 */
static int collect(struct cbm_nl *nl, struct ev_log *l, int n)
{
	int tries, ret;

	for (tries = 0; l->n < n && tries < EVENT_MS / 100; tries++) {
		ret = cbm_nl_events(nl, ev_cb, l, 100);
		if (ret < 0)
			return ret;
	}
	return 0;
}

TEST_F(nl, events)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .capacity = 4096);
	struct cbm_window win = { .max_msgs = 7 };
	struct ev_log l = { 0 };
	static char payload[1000];
	struct cbm_message m = { .data = payload, .len = sizeof(payload) };
	char name[CBM_NAME_MAX];
	uint64_t evicted = 0;
	struct cbm *c;
	int i;

	EXPECT_EQ(-EINVAL, cbm_nl_event_fd(self->nl));
	EXPECT_EQ(-EINVAL, cbm_nl_events(self->nl, ev_cb, &l, 0));
	ASSERT_EQ(0, cbm_nl_subscribe(self->nl));
	EXPECT_EQ(0, cbm_nl_subscribe(self->nl));
	EXPECT_LE(0, cbm_nl_event_fd(self->nl));

	conv_name(name, "ev");
	l.name = name;
	ASSERT_EQ(0, cbm_create(name, &opts, &c));
	ASSERT_EQ(0, cbm_resize(c, 8192, NULL, NULL));
	ASSERT_EQ(0, cbm_set_window(c, &win));
	ASSERT_EQ(0, collect(self->nl, &l, 3));
	ASSERT_EQ(3, l.n);
	EXPECT_EQ(CBM_NL_EVENT_CREATED, l.type[0]);
	EXPECT_EQ(4096, l.capacity[0]);
	EXPECT_EQ(CBM_NL_EVENT_RESIZED, l.type[1]);
	EXPECT_EQ(8192, l.capacity[1]);
	EXPECT_EQ(CBM_NL_EVENT_WINDOW, l.type[2]);
	EXPECT_EQ(7, l.max_msgs[2]);

	/* 20 messages into 8192 bytes (7 records fit) evict 13 */
	for (i = 0; i < 20; i++)
		ASSERT_EQ(0, cbm_send(c, &m, NULL));
	ASSERT_EQ(0, cbm_unlink(name));
	l.n = 0;
	ASSERT_EQ(0, collect(self->nl, &l, MAX_EVENTS));
	ASSERT_LE(2, l.n);
	for (i = 0; i < l.n - 1; i++) {
		EXPECT_EQ(CBM_NL_EVENT_EVICTED, l.type[i]);
		evicted += l.count[i];
	}
	EXPECT_EQ(13, evicted);
	EXPECT_EQ(CBM_NL_EVENT_UNLINKED, l.type[l.n - 1]);
	cbm_close(c);

	/* A non-zero return stops at once and is returned */
	l.n = 0;
	l.stop = 5;
	ASSERT_EQ(0, cbm_create(name, &opts, &c));
	ASSERT_EQ(0, cbm_unlink(name));
	EXPECT_EQ(5, cbm_nl_events(self->nl, ev_cb, &l, EVENT_MS));
	EXPECT_EQ(1, l.n);
	EXPECT_EQ(CBM_NL_EVENT_CREATED, l.type[0]);
	l.stop = 0;
	ASSERT_EQ(0, collect(self->nl, &l, 2));
	EXPECT_EQ(2, l.n);
	EXPECT_EQ(CBM_NL_EVENT_UNLINKED, l.type[1]);
	cbm_close(c);

	/* Nothing queued: the timeout, no event */
	EXPECT_EQ(0, cbm_nl_events(self->nl, ev_cb, &l, 0));
}

TEST_HARNESS_MAIN
