// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: batched appends (CBM_IOC_SEND_BATCH). A batch is checked whole
 * before anything is appended: any bad descriptor, payload or argument
 * fails it with nothing appended. Its messages then get consecutive
 * sequence numbers with no other writer's message in between. Only the
 * first may wait for room: a batch stops at a later message that would
 * have to wait, and returns how many it appended.
 *
 * Every expected sequence number, gap and count is spelled out from the
 * ring's geometry, not computed by a model of the kernel.
 */
#include <sys/epoll.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* The fixture's conversation: holds every message its tests append */
#define CAPACITY	131072

/* sizeof(struct cbm_batch_msg) in the first published version */
#define MSG_V0		struct_end(struct cbm_batch_msg, data)

/* Bytes of descriptors and of payloads, each followed by a PROT_NONE page */
#define DESC_AREA	65536
#define PAY_AREA	262144

/* Payload length of the tests that count messages per ring */
#define LEN		100

/* Payload of the pinned messages of the max_pinned test */
#define PIN_LEN		100

/* An address in the kernel half, which no user access reaches */
#define KERNEL_ADDR	0xffff888000000000ULL

/* Concurrent writers: batches each, at most RACE_N messages in one */
#define RACE_WRITERS	2
#define RACE_BATCHES	200
#define RACE_N		16
#define RACE_SINGLES	1000
#define RACE_LEN	16
/* A lossy conversation that holds all, a lossless one that does not */
#define RACE_BIG	(1024 * 1024)
#define RACE_SMALL	16384

/* Maps @size bytes followed by a PROT_NONE page; NULL on failure */
static void *guarded(size_t size)
{
	size_t page = sysconf(_SC_PAGESIZE);
	unsigned char *p;

	p = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + size, page, PROT_NONE)) {
		munmap(p, size + page);
		return NULL;
	}
	return p;
}

static void unmap_guarded(void *p, size_t size)
{
	if (p)
		munmap(p, size + sysconf(_SC_PAGESIZE));
}

/* Fills descriptor @m, and its payload at @p: @len bytes tagged @tag */
static void make_msg(struct cbm_batch_msg *m, __u32 role, __u32 flags,
		     __u32 tokens, unsigned char *p, __u32 len, __u64 tag)
{
	__u32 i;

	for (i = 0; i < len; i++)
		p[i] = payload_byte(tag, i);
	memset(m, 0, sizeof(*m));
	m->flags = flags;
	m->role = role;
	m->len = len;
	m->tokens = tokens;
	m->data = (uintptr_t)p;
}

/* @n user messages of @len bytes at @pay, message i tagged @tag + i */
static void make_msgs(struct cbm_batch_msg *m, unsigned int n,
		      unsigned char *pay, __u32 len, __u64 tag)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		make_msg(&m[i], CBM_ROLE_USER, 0, 0, pay + (size_t)i * len,
			 len, tag + i);
}

/* An argument for @count descriptors @msg_size bytes apart at @msgs */
static struct cbm_send_batch batch_arg(const void *msgs, __u32 count,
				       __u32 msg_size)
{
	struct cbm_send_batch b;

	memset(&b, JUNK, sizeof(b));
	b.size = sizeof(b);
	b.flags = 0;
	b.msgs = (uintptr_t)msgs;
	b.count = count;
	b.msg_size = msg_size;
	return b;
}

/* What a rejected batch must leave as it was */
static void expect_same(struct __test_metadata *_metadata, int fd,
			const struct cbm_info *before, const char *what)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(before->next_seq, info.next_seq) TH_LOG("%s", what);
	EXPECT_EQ(before->msgs, info.msgs) TH_LOG("%s", what);
	EXPECT_EQ(before->used, info.used) TH_LOG("%s", what);
	EXPECT_EQ(before->evicted, info.evicted) TH_LOG("%s", what);
	EXPECT_EQ(before->pinned, info.pinned) TH_LOG("%s", what);
	EXPECT_EQ(before->pinned_bytes, info.pinned_bytes) TH_LOG("%s", what);
}

/* CBM_IOC_SEND_BATCH with @arg fails with @err and appends nothing */
static void expect_rejected(struct __test_metadata *_metadata, int fd,
			    const void *arg, int err, const char *what)
{
	struct cbm_info before;
	int ret;

	ASSERT_EQ(0, read_info(fd, &before));
	ret = ioctl(fd, CBM_IOC_SEND_BATCH, arg);
	EXPECT_EQ(-1, ret) TH_LOG("%s", what);
	EXPECT_EQ(err, errno) TH_LOG("%s", what);
	expect_same(_metadata, fd, &before, what);
}

/* expect_rejected() of @count descriptors of struct cbm_batch_msg */
static void expect_batch_fails(struct __test_metadata *_metadata, int fd,
			       const struct cbm_batch_msg *msgs, __u32 count,
			       int err, const char *what)
{
	struct cbm_send_batch b = batch_arg(msgs, count, sizeof(*msgs));

	expect_rejected(_metadata, fd, &b, err, what);
}

/*
 * Reads the next record from @fd (record format): descriptor @m, appended
 * by this process as message @seq
 */
static void expect_rec(struct __test_metadata *_metadata, int fd,
		       union rec_buf *rb, const struct cbm_batch_msg *m,
		       __u64 seq)
{
	int passed = _metadata->passed;
	unsigned int i;

	memset(&rb->rec, JUNK, sizeof(rb->rec));
	ASSERT_EQ(REC_HDR + m->len, read_record(fd, rb))
		TH_LOG("message %llu", seq);
	EXPECT_EQ(CBM_RECORD_MSG, rb->rec.type);
	EXPECT_EQ(seq, rb->rec.seq);
	EXPECT_NE(0, rb->rec.ts_ns);
	EXPECT_EQ(0, rb->rec.lost);
	EXPECT_EQ(getpid(), rb->rec.pid);
	EXPECT_EQ(geteuid(), rb->rec.uid);
	EXPECT_EQ(m->flags, rb->rec.flags);
	EXPECT_EQ(m->tokens, rb->rec.tokens);
	EXPECT_EQ(m->role, rb->rec.role);
	for (i = 0; i < sizeof(rb->rec.__reserved); i++)
		EXPECT_EQ(0, rb->rec.__reserved[i]);
	EXPECT_EQ(0, memcmp(rb->bytes + REC_HDR,
			    (const void *)(uintptr_t)m->data, m->len));
	if (passed && !_metadata->passed)
		TH_LOG("record of message %llu", seq);
}

/* Reads @n records: @msgs appended as @first_seq on, stamped in order */
static void expect_recs(struct __test_metadata *_metadata, int fd,
			union rec_buf *rb, const struct cbm_batch_msg *msgs,
			unsigned int n, __u64 first_seq)
{
	__u64 prev_ts = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		expect_rec(_metadata, fd, rb, &msgs[i], first_seq + i);
		EXPECT_LE(prev_ts, rb->rec.ts_ns);
		prev_ts = rb->rec.ts_ns;
	}
}

/* Reads the next record: a gap of @lost messages from @seq on */
static void expect_gap(struct __test_metadata *_metadata, int fd,
		       union rec_buf *rb, __u64 seq, __u64 lost)
{
	memset(&rb->rec, JUNK, sizeof(rb->rec));
	ASSERT_EQ(REC_HDR, read_record(fd, rb)) TH_LOG("gap at %llu", seq);
	EXPECT_EQ(CBM_RECORD_GAP, rb->rec.type);
	EXPECT_EQ(seq, rb->rec.seq);
	EXPECT_EQ(lost, rb->rec.lost);
	EXPECT_EQ(0, rb->rec.len);
}

/* Reads the next record: a user message of @len bytes tagged @seq */
static void expect_tagged(struct __test_metadata *_metadata, int fd,
			  union rec_buf *rb, __u32 len, __u64 seq)
{
	memset(&rb->rec, JUNK, sizeof(rb->rec));
	ASSERT_EQ(REC_HDR + len, read_record(fd, rb)) TH_LOG("seq %llu", seq);
	EXPECT_EQ(CBM_RECORD_MSG, rb->rec.type);
	EXPECT_EQ(seq, rb->rec.seq);
	EXPECT_TRUE(payload_ok(rb->bytes + REC_HDR, len, seq));
}

/* Conversation counters a test expects, as CBM_IOC_INFO reports them */
static void expect_info(struct __test_metadata *_metadata, int fd,
			__u64 first_seq, __u64 next_seq, __u64 msgs,
			__u64 evicted, __u64 used)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(first_seq, info.first_seq);
	EXPECT_EQ(next_seq, info.next_seq);
	EXPECT_EQ(msgs, info.msgs);
	EXPECT_EQ(evicted, info.evicted);
	EXPECT_EQ(used, info.used);
}

FIXTURE(batch) {
	char name[CBM_NAME_MAX];
	char name2[CBM_NAME_MAX];	/* made by some tests */
	/* the creator's, O_RDWR | O_NONBLOCK, record format: reads from 0 */
	int fd;
	long long max_pinned;	/* the parameter to restore, or -1 */
	struct cbm_batch_msg *msgs;	/* DESC_AREA bytes, then PROT_NONE */
	unsigned char *pay;		/* PAY_AREA bytes, then PROT_NONE */
	union rec_buf *rb;
};

FIXTURE_SETUP(batch)
{
	conv_name(self->name, "batch");
	conv_name(self->name2, "batch2");
	self->max_pinned = -1;
	self->msgs = guarded(DESC_AREA);
	ASSERT_NE(NULL, self->msgs);
	self->pay = guarded(PAY_AREA);
	ASSERT_NE(NULL, self->pay);
	self->rb = malloc(sizeof(*self->rb));
	ASSERT_NE(NULL, self->rb);
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				CAPACITY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
}

FIXTURE_TEARDOWN(batch)
{
	if (self->max_pinned >= 0)
		EXPECT_EQ(0, param_write("max_pinned", self->max_pinned));
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
	unlink_name(self->name2);
	free(self->rb);
	unmap_guarded(self->pay, PAY_AREA);
	unmap_guarded(self->msgs, DESC_AREA);
}

/* Tag of message @i of batch @b of writer @w in shared_file_batches */
static __u64 shared_tag(unsigned int w, unsigned int b, unsigned int i)
{
	return (__u64)w << 32 | b << 8 | i;
}

/*
 * Writers that share one open file description (the kernel keeps a file's
 * descriptor arrays for its next batch) send batches of growing and
 * shrinking sizes at once: every message arrives intact, and each batch's
 * messages stay together and in order.
 */
TEST_F_TIMEOUT(batch, shared_file_batches, 60)
{
	unsigned int w, b, i, n, next[RACE_WRITERS] = { 0 };
	unsigned int at[RACE_WRITERS] = { 0 };
	pid_t pids[RACE_WRITERS];
	unsigned int total = 0;
	int cur = -1;
	__u64 tag;
	int ret;

	for (w = 0; w < RACE_WRITERS; w++) {
		pids[w] = fork_child();
		ASSERT_LE(0, pids[w]);
		if (pids[w])
			continue;
		for (b = 0; b < RACE_BATCHES / 4; b++) {
			n = b % RACE_N + 1;
			for (i = 0; i < n; i++)
				make_msg(&self->msgs[i], CBM_ROLE_USER, 0, 0,
					 self->pay + i * RACE_LEN, RACE_LEN,
					 shared_tag(w, b, i));
			CHILD_CHECK(send_batch(self->fd, self->msgs, n,
					       NULL) == (int)n);
		}
		_exit(0);
	}
	for (w = 0; w < RACE_WRITERS; w++) {
		EXPECT_EQ(0, wait_child(pids[w]));
		for (b = 0; b < RACE_BATCHES / 4; b++)
			total += b % RACE_N + 1;
	}
	/*
	 * Each message is the next one of some writer; once a batch has
	 * begun, the next message is the same writer's until it is done.
	 */
	for (i = 0; i < total; i++) {
		ret = read_record(self->fd, self->rb);
		ASSERT_EQ(REC_HDR + RACE_LEN, ret) TH_LOG("message %u", i);
		ASSERT_EQ(CBM_RECORD_MSG, self->rb->rec.type);
		for (w = 0; w < RACE_WRITERS; w++) {
			if (cur >= 0 && (int)w != cur)
				continue;
			tag = shared_tag(w, next[w], at[w]);
			if (payload_ok(self->rb->bytes + REC_HDR, RACE_LEN,
				       tag))
				break;
		}
		ASSERT_GT(RACE_WRITERS, w)
			TH_LOG("message %u: not the next of %s", i,
			       cur >= 0 ? "the batch begun" : "any writer");
		if (++at[w] == next[w] % RACE_N + 1) {
			at[w] = 0;
			next[w]++;
			cur = -1;
		} else {
			cur = w;
		}
	}
	for (w = 0; w < RACE_WRITERS; w++)
		EXPECT_EQ(RACE_BATCHES / 4, next[w]);
	expect_eagain(_metadata, self->fd);
}

/*
 * Roles, application flags, token counts and payloads (empty and the
 * largest the conversation takes) come back as sent, in order, after the
 * messages already there.
 */
TEST_F(batch, roles_flags_payloads)
{
	static const struct {
		__u32 role, flags, tokens, len;
	} d[] = {
		/* role		      flags	  tokens      len */
		{ CBM_ROLE_SYSTEM,    0,	  11,	      30 },
		{ CBM_ROLE_USER,      0xabcd0000, 0,	      1 },
		{ CBM_ROLE_ASSISTANT, 0xffff0000, 7,	      0 },
		{ CBM_ROLE_TOOL,      0x00010000, 1000,	      4000 },
		{ CBM_ROLE_OTHER,     0x80000000, 3,	      100 },
		{ CBM_ROLE_USER,      0x12340000, 0xffffffff, 65536 },
	};
	const unsigned int n = ARRAY_SIZE(d);
	unsigned char *p = self->pay;
	__u64 seq, first = ~0ULL, used, t0, t1;
	unsigned int i;

	ASSERT_EQ(65536, max_payload(CAPACITY));
	ASSERT_EQ(0, send_msg(self->fd, CBM_ROLE_USER, 0, "ab", 2, &seq));
	ASSERT_EQ(0, send_msg(self->fd, CBM_ROLE_USER, 0, "cd", 2, &seq));
	ASSERT_EQ(2, lseek(self->fd, 0, SEEK_END));
	used = 2 * CBM_RECORD_SPACE(2);
	for (i = 0; i < n; i++) {
		make_msg(&self->msgs[i], d[i].role, d[i].flags, d[i].tokens,
			 p, d[i].len, 100 + i);
		p += d[i].len;
		used += CBM_RECORD_SPACE(d[i].len);
	}

	t0 = now_ns();
	ASSERT_EQ(n, send_batch(self->fd, self->msgs, n, &first));
	t1 = now_ns();
	EXPECT_EQ(2, first);
	expect_info(_metadata, self->fd, 0, 2 + n, 2 + n, 0, used);
	expect_recs(_metadata, self->fd, self->rb, self->msgs, n, 2);
	EXPECT_LE(t0, self->rb->rec.ts_ns);
	EXPECT_GE(t1, self->rb->rec.ts_ns);
	expect_eagain(_metadata, self->fd);
}

/*
 * A batch's messages share one timestamp, taken during the call; the next
 * batch's are not older.
 */
TEST_F(batch, one_timestamp)
{
	__u64 first = ~0ULL, t0, t1, ts = 0;
	unsigned int i;

	make_msgs(self->msgs, 8, self->pay, LEN, 0);
	t0 = now_ns();
	ASSERT_EQ(8, send_batch(self->fd, self->msgs, 8, &first));
	t1 = now_ns();
	ASSERT_EQ(8, send_batch(self->fd, self->msgs, 8, &first));
	for (i = 0; i < 16; i++) {
		memset(&self->rb->rec, JUNK, sizeof(self->rb->rec));
		ASSERT_EQ(REC_HDR + LEN, read_record(self->fd, self->rb));
		if (i == 0) {
			ts = self->rb->rec.ts_ns;
			EXPECT_LE(t0, ts);
			EXPECT_GE(t1, ts);
		} else if (i == 8) {
			/* The second batch's own timestamp */
			EXPECT_LE(ts, self->rb->rec.ts_ns);
			ts = self->rb->rec.ts_ns;
		} else {
			EXPECT_EQ(ts, self->rb->rec.ts_ns) TH_LOG("message %u", i);
		}
	}
}

/* An empty batch appends nothing and returns 0 */
TEST_F(batch, empty)
{
	struct cbm_info before;
	__u64 seq;

	ASSERT_EQ(0, send_msg(self->fd, CBM_ROLE_USER, 0, "ab", 2, &seq));
	ASSERT_EQ(0, read_info(self->fd, &before));
	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	EXPECT_EQ(0, send_batch(self->fd, self->msgs, 0, NULL));
	expect_same(_metadata, self->fd, &before, "empty batch");
	expect_rec(_metadata, self->fd, self->rb,
		   &(struct cbm_batch_msg){ .role = CBM_ROLE_USER, .len = 2,
					    .data = (uintptr_t)"ab" }, 0);
	expect_eagain(_metadata, self->fd);
}

/* CBM_BATCH_MAX messages in one call; one more is E2BIG */
TEST_F(batch, batch_max)
{
	const __u32 len = sizeof(__u64);
	struct cbm_send_batch b;
	__u64 first = ~0ULL;
	unsigned int i;

	ASSERT_LE((CBM_BATCH_MAX + 1) * sizeof(struct cbm_batch_msg),
		  DESC_AREA);
	ASSERT_GE(CAPACITY, CBM_BATCH_MAX * CBM_RECORD_SPACE(len));
	make_msgs(self->msgs, CBM_BATCH_MAX + 1, self->pay, len, 0);

	expect_batch_fails(_metadata, self->fd, self->msgs, CBM_BATCH_MAX + 1,
			   E2BIG, "CBM_BATCH_MAX + 1");
	b = batch_arg(self->msgs, UINT32_MAX, sizeof(*self->msgs));
	expect_rejected(_metadata, self->fd, &b, E2BIG, "count UINT32_MAX");

	ASSERT_EQ(CBM_BATCH_MAX,
		  send_batch(self->fd, self->msgs, CBM_BATCH_MAX, &first));
	EXPECT_EQ(0, first);
	expect_info(_metadata, self->fd, 0, CBM_BATCH_MAX, CBM_BATCH_MAX, 0,
		    CBM_BATCH_MAX * CBM_RECORD_SPACE(len));
	for (i = 0; i < CBM_BATCH_MAX; i++)
		expect_tagged(_metadata, self->fd, self->rb, len, i);
	expect_eagain(_metadata, self->fd);
}

/* One descriptor with an undefined kernel flag fails the whole batch */
TEST_F(batch, bad_flags_einval)
{
	static const __u32 bad[] = {
		0x2, 0x8000, CBM_MSG_KERNEL_MASK, CBM_MSG_PINNED | 0x4,
		0xabcd0002,
	};
	static const unsigned int where[] = { 0, 2, 4 };
	char what[64];
	unsigned int i, j;

	make_msgs(self->msgs, 5, self->pay, LEN, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		for (j = 0; j < ARRAY_SIZE(where); j++) {
			self->msgs[where[j]].flags = bad[i];
			snprintf(what, sizeof(what), "flags %#x in message %u",
				 bad[i], where[j]);
			expect_batch_fails(_metadata, self->fd, self->msgs, 5,
					   EINVAL, what);
			self->msgs[where[j]].flags = 0;
		}
	}
	ASSERT_EQ(5, send_batch(self->fd, self->msgs, 5, NULL));
	expect_recs(_metadata, self->fd, self->rb, self->msgs, 5, 0);
}

TEST_F(batch, bad_role_einval)
{
	static const __u32 bad[] = { __CBM_ROLE_MAX, 255, 0x100, UINT32_MAX };
	char what[64];
	unsigned int i;

	make_msgs(self->msgs, 5, self->pay, LEN, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		self->msgs[2].role = bad[i];
		snprintf(what, sizeof(what), "role %u in message 2", bad[i]);
		expect_batch_fails(_metadata, self->fd, self->msgs, 5, EINVAL,
				   what);
		self->msgs[2].role = CBM_ROLE_USER;
		self->msgs[4].role = bad[i];
		snprintf(what, sizeof(what), "role %u in message 4", bad[i]);
		expect_batch_fails(_metadata, self->fd, self->msgs, 5, EINVAL,
				   what);
		self->msgs[4].role = CBM_ROLE_USER;
	}
}

TEST_F(batch, batch_flags_einval)
{
	static const __u32 bad[] = { 1, 2, 0x100, 0x80000000 };
	struct cbm_send_batch b;
	char what[64];
	unsigned int i;

	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		b = batch_arg(self->msgs, 3, sizeof(*self->msgs));
		b.flags = bad[i];
		snprintf(what, sizeof(what), "batch flags %#x", bad[i]);
		expect_rejected(_metadata, self->fd, &b, EINVAL, what);
	}
}

/*
 * Descriptors shorter than the first published version are invalid, and
 * longer than a page too big whatever their tails hold
 */
TEST_F(batch, msg_size_bounds)
{
	static const __u32 bad[] = { 0, 1, 8, 16, 20, MSG_V0 - 1 };
	const __u32 page = sysconf(_SC_PAGESIZE);
	unsigned char *raw = (unsigned char *)self->msgs;
	struct cbm_batch_msg m[2];
	struct cbm_send_batch b;
	char what[64];
	unsigned int i;

	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		b = batch_arg(self->msgs, 3, bad[i]);
		snprintf(what, sizeof(what), "msg_size %u", bad[i]);
		expect_rejected(_metadata, self->fd, &b, EINVAL, what);
	}

	make_msgs(m, 2, self->pay, LEN, 0);
	ASSERT_LE(2 * (page + 8), DESC_AREA);
	memset(raw, 0, 2 * (page + 8));
	memcpy(raw, &m[0], sizeof(m[0]));
	memcpy(raw + page + 8, &m[1], sizeof(m[1]));
	b = batch_arg(raw, 2, page + 8);
	expect_rejected(_metadata, self->fd, &b, E2BIG, "msg_size a page + 8");
	b = batch_arg(raw, 2, UINT32_MAX);
	expect_rejected(_metadata, self->fd, &b, E2BIG, "msg_size UINT32_MAX");
}

/*
 * A longer descriptor (a newer userspace) is fine while what the kernel
 * does not know is zero, in every descriptor
 */
TEST_F(batch, msg_size_tail)
{
	static const __u32 sizes[] = { MSG_V0 + 8, 4096 };
	unsigned char *raw = (unsigned char *)self->msgs;
	struct cbm_batch_msg m[3];
	struct cbm_send_batch b;
	__u64 first = ~0ULL, next = 0;
	unsigned int i, j;
	char what[64];
	__u32 size;

	make_msgs(m, 3, self->pay, LEN, 0);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size = sizes[i];
		memset(raw, 0, 3 * size);
		for (j = 0; j < 3; j++)
			memcpy(raw + j * size, &m[j], sizeof(m[j]));
		b = batch_arg(raw, 3, size);

		raw[size + MSG_V0] = 1;
		snprintf(what, sizeof(what), "msg_size %u, message 1", size);
		expect_rejected(_metadata, self->fd, &b, E2BIG, what);
		raw[size + MSG_V0] = 0;
		raw[3 * size - 1] = 0x80;
		snprintf(what, sizeof(what), "msg_size %u, last byte", size);
		expect_rejected(_metadata, self->fd, &b, E2BIG, what);
		raw[3 * size - 1] = 0;

		ASSERT_EQ(3, ioctl(self->fd, CBM_IOC_SEND_BATCH, &b))
			TH_LOG("msg_size %u, zero tails", size);
		EXPECT_EQ(next, b.first_seq);
		expect_recs(_metadata, self->fd, self->rb, m, 3, next);
		next += 3;
	}
	ASSERT_EQ(3, send_batch(self->fd, m, 3, &first));
	EXPECT_EQ(next, first);
}

/* A payload larger than the conversation takes fails the whole batch */
TEST_F(batch, payload_too_big_emsgsize)
{
	const __u32 small_max = max_payload(MIN_CAPACITY);
	struct cbm_batch_msg *m = self->msgs;
	int fd;

	make_msgs(m, 3, self->pay, LEN, 0);
	make_msg(&m[1], CBM_ROLE_USER, 0, 0, self->pay + PAY_AREA / 2,
		 max_payload(CAPACITY) + 1, 1);
	expect_batch_fails(_metadata, self->fd, m, 3, EMSGSIZE,
			   "max_msg_size + 1");
	m[1].len = UINT32_MAX;
	expect_batch_fails(_metadata, self->fd, m, 3, EMSGSIZE,
			   "len UINT32_MAX");

	/* the smallest ring: what it can hold, not max_msg_size */
	fd = create_named(self->name2, O_RDWR | O_NONBLOCK, 0600, 0,
			  MIN_CAPACITY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_config(fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	make_msg(&m[1], CBM_ROLE_USER, 0, 0, self->pay + PAY_AREA / 2,
		 small_max + 1, 1);
	m[2].len = 0;
	expect_batch_fails(_metadata, fd, m, 3, EMSGSIZE,
			   "larger than the ring holds");
	make_msg(&m[1], CBM_ROLE_USER, 0, 0, self->pay + PAY_AREA / 2,
		 small_max, 1);
	ASSERT_EQ(1, send_batch(fd, &m[1], 1, NULL));
	expect_recs(_metadata, fd, self->rb, &m[1], 1, 0);
	close(fd);
}

/*
 * The window's byte and token budgets bound each unpinned message; pinned
 * ones are outside the window
 */
TEST_F(batch, window_budget_emsgsize)
{
	struct cbm_batch_msg *m = self->msgs;
	struct cbm_info info;
	__u64 first = ~0ULL;

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 100, 50, 0));
	make_msg(&m[0], CBM_ROLE_USER, 0, 10, self->pay, 60, 0);
	make_msg(&m[1], CBM_ROLE_ASSISTANT, 0, 0, self->pay + 100, 101, 1);
	expect_batch_fails(_metadata, self->fd, m, 2, EMSGSIZE,
			   "101 bytes, budget 100");
	make_msg(&m[1], CBM_ROLE_ASSISTANT, 0, 51, self->pay + 100, 10, 1);
	expect_batch_fails(_metadata, self->fd, m, 2, EMSGSIZE,
			   "51 tokens, budget 50");

	/* pinned: 101 bytes, 51 tokens; the second unpinned one evicts 0 */
	make_msg(&m[1], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 51, self->pay + 100,
		 101, 1);
	make_msg(&m[2], CBM_ROLE_ASSISTANT, 0, 30, self->pay + 300, 50, 2);
	ASSERT_EQ(3, send_batch(self->fd, m, 3, &first));
	EXPECT_EQ(0, first);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(3, info.next_seq);
	EXPECT_EQ(2, info.msgs);
	EXPECT_EQ(1, info.evicted);
	EXPECT_EQ(1, info.pinned);
	EXPECT_EQ(1, info.win_msgs);
	EXPECT_EQ(50, info.win_bytes);
	EXPECT_EQ(30, info.win_tokens);
	expect_gap(_metadata, self->fd, self->rb, 0, 1);
	expect_recs(_metadata, self->fd, self->rb, &m[1], 2, 1);
	expect_eagain(_metadata, self->fd);
}

/* max_pinned counts the batch's pinned messages together */
TEST_F(batch, pinned_sum_enospc)
{
	const __u64 space = CBM_RECORD_SPACE(PIN_LEN);
	struct cbm_batch_msg *m = self->msgs;
	struct cbm_info info;
	long long saved;
	__u64 seq, first = ~0ULL;

	ASSERT_EQ(0, param_read("max_pinned", &saved));
	self->max_pinned = saved;
	ASSERT_EQ(0, param_write("max_pinned", 3 * space));
	memset(self->pay, 'p', PIN_LEN);
	ASSERT_EQ(0, send_msg(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED,
			      self->pay, PIN_LEN, &seq));

	make_msgs(m, 4, self->pay, PIN_LEN, 1);
	m[0].flags = CBM_MSG_PINNED;
	m[2].flags = CBM_MSG_PINNED;
	m[3].flags = CBM_MSG_PINNED;
	expect_batch_fails(_metadata, self->fd, m, 4, ENOSPC,
			   "4 pinned, room for 3");

	ASSERT_EQ(3, send_batch(self->fd, m, 3, &first));
	EXPECT_EQ(1, first);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(3, info.pinned);
	EXPECT_EQ(3 * space, info.pinned_bytes);

	/* the unpinned message before the pinned one is not appended either */
	expect_batch_fails(_metadata, self->fd, &m[1], 3, ENOSPC,
			   "a pinned message past the limit");
	ASSERT_EQ(1, lseek(self->fd, 1, SEEK_SET));
	expect_recs(_metadata, self->fd, self->rb, m, 3, 1);
	expect_eagain(_metadata, self->fd);
}

/* A payload no access reaches, in any descriptor, fails the whole batch */
TEST_F(batch, bad_payload_efault)
{
	const struct {
		__u64 data;
		__u32 len;
		const char *what;
	} bad[] = {
		{ 0, 10, "NULL" },
		{ (uintptr_t)bad_ptr(), 10, "PROT_NONE page" },
		{ KERNEL_ADDR, 10, "kernel address" },
		{ (uintptr_t)self->pay + PAY_AREA - 5, 10,
		  "runs into a PROT_NONE page" },
	};
	struct cbm_batch_msg *m = self->msgs;
	char what[64];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		make_msgs(m, 4, self->pay, LEN, 0);
		m[3].data = bad[i].data;
		m[3].len = bad[i].len;
		snprintf(what, sizeof(what), "last payload: %s", bad[i].what);
		expect_batch_fails(_metadata, self->fd, m, 4, EFAULT, what);

		make_msgs(m, 4, self->pay, LEN, 0);
		m[0].data = bad[i].data;
		m[0].len = bad[i].len;
		snprintf(what, sizeof(what), "first payload: %s", bad[i].what);
		expect_batch_fails(_metadata, self->fd, m, 4, EFAULT, what);
	}
}

/* Descriptors no access reaches, whole or in part */
TEST_F(batch, bad_msgs_efault)
{
	unsigned char *end = (unsigned char *)self->msgs + DESC_AREA;
	struct cbm_batch_msg m[3];
	struct cbm_send_batch b;
	unsigned char *p;

	make_msgs(m, 3, self->pay, LEN, 0);
	b = batch_arg(NULL, 3, sizeof(m[0]));
	expect_rejected(_metadata, self->fd, &b, EFAULT, "msgs NULL");
	b = batch_arg(bad_ptr(), 3, sizeof(m[0]));
	expect_rejected(_metadata, self->fd, &b, EFAULT, "msgs PROT_NONE");
	b = batch_arg((void *)(uintptr_t)KERNEL_ADDR, 3, sizeof(m[0]));
	expect_rejected(_metadata, self->fd, &b, EFAULT, "msgs in the kernel");

	/* the last descriptor's data pointer is in the guard page */
	p = end - sizeof(m) + sizeof(__u64);
	memcpy(p, m, sizeof(m) - sizeof(__u64));
	b = batch_arg(p, 3, sizeof(m[0]));
	expect_rejected(_metadata, self->fd, &b, EFAULT,
			"last descriptor runs into a PROT_NONE page");

	/* longer descriptors: only the last one's zero tail is unreachable */
	p = end - 3 * (MSG_V0 + 8) + 4;
	memset(p, 0, end - p);
	memcpy(p, &m[0], sizeof(m[0]));
	memcpy(p + MSG_V0 + 8, &m[1], sizeof(m[1]));
	memcpy(p + 2 * (MSG_V0 + 8), &m[2], sizeof(m[2]));
	b = batch_arg(p, 3, MSG_V0 + 8);
	expect_rejected(_metadata, self->fd, &b, EFAULT,
			"last descriptor's tail runs into a PROT_NONE page");
}

/* Descriptors that end exactly at an unmapped page are all read */
TEST_F(batch, msgs_end_at_guard)
{
	unsigned char *end = (unsigned char *)self->msgs + DESC_AREA;
	struct cbm_batch_msg m[3], *p;
	__u64 first = ~0ULL;

	make_msgs(m, 3, self->pay, LEN, 0);
	p = (struct cbm_batch_msg *)(end - sizeof(m));
	memcpy(p, m, sizeof(m));
	ASSERT_EQ(3, send_batch(self->fd, p, 3, &first));
	EXPECT_EQ(0, first);
	expect_recs(_metadata, self->fd, self->rb, m, 3, 0);
}

/* The argument itself: unreachable, or the size word only */
TEST_F(batch, bad_arg_efault)
{
	unsigned char *end = (unsigned char *)self->msgs + DESC_AREA;
	__u32 size = sizeof(struct cbm_send_batch);
	unsigned char *p = end - sizeof(size);
	int ret;

	ret = ioctl(self->fd, CBM_IOC_SEND_BATCH, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	ret = ioctl(self->fd, CBM_IOC_SEND_BATCH, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	memcpy(p, &size, sizeof(size));
	expect_rejected(_metadata, self->fd, p, EFAULT,
			"only the size word is readable");
}

/*
 * An argument the kernel can read but not write back to (first_seq) still
 * appends the batch, and the call says how many: it fails only when
 * nothing was appended, so that a caller never resubmits messages that
 * are already stored.
 */
TEST_F(batch, first_seq_unwritable)
{
	const size_t page = sysconf(_SC_PAGESIZE);
	struct cbm_send_batch *b;

	b = mmap(NULL, page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, b);
	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	*b = batch_arg(self->msgs, 3, sizeof(*self->msgs));
	ASSERT_EQ(0, mprotect(b, page, PROT_READ));
	EXPECT_EQ(3, ioctl(self->fd, CBM_IOC_SEND_BATCH, b));
	expect_recs(_metadata, self->fd, self->rb, self->msgs, 3, 0);
	expect_eagain(_metadata, self->fd);
	munmap(b, page);
}

/* The size-first rules of every ioctl argument */
TEST_F(batch, struct_size)
{
	static const __u32 short_sizes[] = {
		0, sizeof(__u32), sizeof(struct cbm_send_batch) - 8,
	};
	struct {
		struct cbm_send_batch b;
		__u64 tail;
	} big;
	struct cbm_send_batch b;
	char what[64];
	unsigned int i;

	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	for (i = 0; i < ARRAY_SIZE(short_sizes); i++) {
		b = batch_arg(self->msgs, 3, sizeof(*self->msgs));
		b.size = short_sizes[i];
		snprintf(what, sizeof(what), "size %u", short_sizes[i]);
		expect_rejected(_metadata, self->fd, &b, EINVAL, what);
	}

	big.b = batch_arg(self->msgs, 3, sizeof(*self->msgs));
	big.b.size = sizeof(big);
	big.tail = 1;
	expect_rejected(_metadata, self->fd, &big, E2BIG, "nonzero tail");
	big.tail = 0;
	ASSERT_EQ(3, ioctl(self->fd, CBM_IOC_SEND_BATCH, &big));
	EXPECT_EQ(0, big.b.first_seq);
	EXPECT_EQ(0, big.tail);
	expect_recs(_metadata, self->fd, self->rb, self->msgs, 3, 0);
}

/* A file opened read-only cannot append */
TEST_F(batch, read_only_ebadf)
{
	int fd = open_named(self->name, O_RDONLY | O_NONBLOCK);

	ASSERT_LE(0, fd);
	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	expect_batch_fails(_metadata, fd, self->msgs, 3, EBADF, "O_RDONLY");
	expect_batch_fails(_metadata, fd, self->msgs, 0, EBADF,
			   "empty batch, O_RDONLY");
	close(fd);
}

/* Nothing can be appended to an unlinked conversation */
TEST_F(batch, unlinked_epipe)
{
	int fd = create_named(self->name2, O_RDWR | O_NONBLOCK, 0600, 0, 0);

	ASSERT_LE(0, fd);
	make_msgs(self->msgs, 3, self->pay, LEN, 0);
	ASSERT_EQ(0, unlink_name(self->name2));
	expect_batch_fails(_metadata, fd, self->msgs, 3, EPIPE, "unlinked");
	close(fd);
}

/*
 * write() appends one message, and so does writev(), gathering its
 * vectors; a batch of the same buffers makes one message of each
 */
TEST_F(batch, writev_is_one_message)
{
	static char one[] = "one ", two[] = "two ", three[] = "three";
	struct iovec iov[] = {
		{ one, sizeof(one) - 1 },
		{ two, sizeof(two) - 1 },
		{ three, sizeof(three) - 1 },
	};
	static const char all[] = "one two three";
	const struct cbm_batch_msg whole = {
		.role = CBM_ROLE_USER, .len = sizeof(all) - 1,
		.data = (uintptr_t)all,
	};
	struct cbm_batch_msg m[3];
	unsigned int i;

	ASSERT_EQ(sizeof(all) - 1, write(self->fd, all, sizeof(all) - 1));
	ASSERT_EQ(sizeof(all) - 1, writev(self->fd, iov, ARRAY_SIZE(iov)));
	expect_info(_metadata, self->fd, 0, 2, 2, 0,
		    2 * CBM_RECORD_SPACE(sizeof(all) - 1));
	expect_recs(_metadata, self->fd, self->rb, &whole, 1, 0);
	expect_recs(_metadata, self->fd, self->rb, &whole, 1, 1);

	for (i = 0; i < ARRAY_SIZE(iov); i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].role = CBM_ROLE_USER;
		m[i].data = (uintptr_t)iov[i].iov_base;
		m[i].len = iov[i].iov_len;
	}
	ASSERT_EQ(3, send_batch(self->fd, m, 3, NULL));
	expect_recs(_metadata, self->fd, self->rb, m, 3, 2);
	expect_eagain(_metadata, self->fd);
}

/*
 * A batch larger than the ring evicts the oldest messages, its own first
 * ones too; every reader learns exactly what it lost.
 */
TEST_F(batch, lossy_larger_than_ring)
{
	const __u64 fit = MIN_CAPACITY / CBM_RECORD_SPACE(LEN);
	const __u64 pre = 10, n = 40, next = pre + n, first = next - fit;
	int wfd, rec_rd, pay_rd, late;
	__u64 seq = ~0ULL, i;

	ASSERT_EQ(25, fit);
	ASSERT_LE(n * sizeof(struct cbm_batch_msg), DESC_AREA);
	wfd = create_named(self->name2, O_WRONLY | O_NONBLOCK, 0600, 0,
			   MIN_CAPACITY);
	ASSERT_LE(0, wfd);
	rec_rd = open_reader(self->name2, O_RDONLY | O_NONBLOCK,
			     CBM_FD_RECORDS);
	ASSERT_LE(0, rec_rd);
	pay_rd = open_reader(self->name2, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, pay_rd);
	write_range(_metadata, wfd, LEN, 0, pre);
	for (i = 0; i < 5; i++)
		expect_tagged(_metadata, rec_rd, self->rb, LEN, i);

	make_msgs(self->msgs, n, self->pay, LEN, pre);
	ASSERT_EQ(n, send_batch(wfd, self->msgs, n, &seq));
	EXPECT_EQ(pre, seq);
	expect_info(_metadata, wfd, first, next, fit, first,
		    fit * CBM_RECORD_SPACE(LEN));

	expect_rinfo(_metadata, rec_rd, 5, first - 5, first - 5, fit);
	expect_gap(_metadata, rec_rd, self->rb, 5, first - 5);
	for (i = first; i < next; i++)
		expect_tagged(_metadata, rec_rd, self->rb, LEN, i);
	expect_eagain(_metadata, rec_rd);

	expect_rinfo(_metadata, pay_rd, 0, first, first, fit);
	EXPECT_EQ(-1, read(pay_rd, self->rb, sizeof(*self->rb)));
	EXPECT_EQ(EPIPE, errno);
	read_range(_metadata, pay_rd, LEN, first, next);

	late = open_reader(self->name2, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, late);
	read_range(_metadata, late, LEN, first, next);
	expect_rinfo(_metadata, late, next, 0, 0, 0);
	close(late);
	close(pay_rd);
	close(rec_rd);
	close(wfd);
}

/* A window of the last k messages keeps the batch's last k */
TEST_F(batch, window_keeps_last)
{
	const unsigned int n = 8, k = 3;
	__u64 first = ~0ULL;
	struct cbm_info info;

	ASSERT_EQ(0, set_window(self->fd, 0, k, 0, 0, 0));
	make_msgs(self->msgs, n, self->pay, LEN, 0);
	ASSERT_EQ(n, send_batch(self->fd, self->msgs, n, &first));
	EXPECT_EQ(0, first);
	expect_info(_metadata, self->fd, n - k, n, k, n - k,
		    k * CBM_RECORD_SPACE(LEN));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(k, info.win_msgs);
	expect_gap(_metadata, self->fd, self->rb, 0, n - k);
	expect_recs(_metadata, self->fd, self->rb, &self->msgs[n - k], k,
		    n - k);
	expect_eagain(_metadata, self->fd);
}

/* Pinned messages in a batch stay, whatever the window evicts around them */
TEST_F(batch, window_keeps_pinned)
{
	static const struct {
		__u32 role, flags;
	} d[] = {
		{ CBM_ROLE_SYSTEM, CBM_MSG_PINNED },
		{ CBM_ROLE_USER, 0 },
		{ CBM_ROLE_ASSISTANT, 0 },
		{ CBM_ROLE_USER, 0 },
		{ CBM_ROLE_TOOL, CBM_MSG_PINNED | 0x10000 },
		{ CBM_ROLE_ASSISTANT, 0 },
		{ CBM_ROLE_USER, 0 },
	};
	const unsigned int n = ARRAY_SIZE(d);
	struct cbm_batch_msg *m = self->msgs;
	struct cbm_read_window rw;
	struct cbm_info info;
	unsigned char *buf;
	unsigned int i;

	ASSERT_EQ(0, set_window(self->fd, 0, 2, 0, 0, 0));
	for (i = 0; i < n; i++)
		make_msg(&m[i], d[i].role, d[i].flags, i,
			 self->pay + i * LEN, LEN - i, i);
	ASSERT_EQ(n, send_batch(self->fd, m, n, NULL));

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(n, info.next_seq);
	EXPECT_EQ(4, info.msgs);
	EXPECT_EQ(2, info.pinned);
	EXPECT_EQ(2, info.win_msgs);
	EXPECT_EQ(3, info.evicted);
	EXPECT_EQ(CBM_RECORD_SPACE(LEN) + CBM_RECORD_SPACE(LEN - 4),
		  info.pinned_bytes);

	expect_recs(_metadata, self->fd, self->rb, &m[0], 1, 0);
	expect_gap(_metadata, self->fd, self->rb, 1, 3);
	expect_recs(_metadata, self->fd, self->rb, &m[4], 3, 4);
	expect_eagain(_metadata, self->fd);

	buf = malloc(REC_BUF_SIZE);
	ASSERT_NE(NULL, buf);
	EXPECT_EQ(0, read_window(self->fd, buf, REC_BUF_SIZE, 0, &rw));
	EXPECT_EQ(4, rw.count);
	EXPECT_EQ(0, rw.first_seq);
	free(buf);
}

/* A batch of whole turns: a turns window keeps the last turn's messages */
TEST_F(batch, window_turns)
{
	static const __u32 roles[] = {
		CBM_ROLE_USER, CBM_ROLE_ASSISTANT, CBM_ROLE_TOOL,
		CBM_ROLE_USER, CBM_ROLE_ASSISTANT,
	};
	const unsigned int n = ARRAY_SIZE(roles);
	struct cbm_batch_msg *m = self->msgs;
	unsigned int i;

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 1, 0, 0, 0));
	for (i = 0; i < n; i++)
		make_msg(&m[i], roles[i], 0, 0, self->pay + i * LEN, LEN, i);
	ASSERT_EQ(n, send_batch(self->fd, m, n, NULL));
	expect_info(_metadata, self->fd, 3, n, 2, 3,
		    2 * CBM_RECORD_SPACE(LEN));
	expect_gap(_metadata, self->fd, self->rb, 0, 3);
	expect_recs(_metadata, self->fd, self->rb, &m[3], 2, 3);
}

/* A reader asleep in poll() or epoll_wait() wakes for a batch */
static void reader_wakes(struct __test_metadata *_metadata,
			 FIXTURE_DATA(batch) *self, bool use_epoll)
{
	const unsigned int n = 5;
	struct epoll_event ev = { .events = EPOLLIN };
	int ready[2];
	pid_t pid;

	make_msgs(self->msgs, n, self->pay, LEN, 0);
	ASSERT_EQ(0, pipe(ready));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		union rec_buf *rb = self->rb;
		int fd, epfd = -1;
		unsigned int i;
		char c;

		fd = open_reader(self->name, O_RDONLY | O_NONBLOCK,
				 CBM_FD_RECORDS);
		CHILD_CHECK(fd >= 0);
		if (use_epoll) {
			epfd = epoll_create1(EPOLL_CLOEXEC);
			CHILD_CHECK(epfd >= 0);
			CHILD_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, fd,
					      &ev) == 0);
		}
		CHILD_CHECK(sync_post(ready[1]) == 0);
		if (use_epoll) {
			CHILD_CHECK(epoll_wait(epfd, &ev, 1, WAIT_MS) == 1);
			CHILD_CHECK(ev.events == EPOLLIN);
		} else {
			CHILD_CHECK(poll_events(fd, POLLIN, WAIT_MS) ==
				    POLLIN);
		}
		for (i = 0; i < n; i++) {
			CHILD_CHECK(read_record(fd, rb) ==
				    (ssize_t)(REC_HDR + LEN));
			CHILD_CHECK(rb->rec.seq == i);
			CHILD_CHECK(payload_ok(rb->bytes + REC_HDR, LEN, i));
		}
		CHILD_CHECK(read(fd, &c, 1) == -1 && errno == EAGAIN);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	ASSERT_EQ(0, wait_sleeping(pid));
	ASSERT_EQ(n, send_batch(self->fd, self->msgs, n, NULL));
	EXPECT_EQ(0, wait_child(pid));
	close(ready[0]);
	close(ready[1]);
}

TEST_F(batch, poll_wakes_reader)
{
	reader_wakes(_metadata, self, false);
}

TEST_F(batch, epoll_wakes_reader)
{
	reader_wakes(_metadata, self, true);
}

/*
 * Edge-triggered epoll: each batch makes the reader ready once, and
 * nothing is left pending once that edge is taken.
 */
TEST_F(batch, epollet_edge_per_batch)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	const unsigned int n = 5;
	unsigned int round;
	int epfd;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, epfd);
	ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, self->fd, &ev));
	EXPECT_EQ(0, epoll_wait(epfd, &ev, 1, 0));
	make_msgs(self->msgs, 2 * n, self->pay, LEN, 0);
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(n, send_batch(self->fd, &self->msgs[round * n], n,
					NULL));
		ASSERT_EQ(1, epoll_wait(epfd, &ev, 1, 0))
			TH_LOG("batch %u", round);
		EXPECT_EQ(EPOLLIN, ev.events);
		EXPECT_EQ(0, epoll_wait(epfd, &ev, 1, 0))
			TH_LOG("batch %u", round);
	}
	expect_recs(_metadata, self->fd, self->rb, self->msgs, 2 * n, 0);
	close(epfd);
}

/* Descriptors of a newer (longer) struct, their tails zero */
FIXTURE(layout) {
	char name[CBM_NAME_MAX];
	int fd;
	unsigned char *raw;	/* DESC_AREA bytes, then PROT_NONE */
	unsigned char *pay;
	union rec_buf *rb;
};

FIXTURE_VARIANT(layout) {
	__u32 msg_size;
};

FIXTURE_VARIANT_ADD(layout, v0) { .msg_size = MSG_V0 };
FIXTURE_VARIANT_ADD(layout, plus_8) { .msg_size = MSG_V0 + 8 };
FIXTURE_VARIANT_ADD(layout, plus_4) { .msg_size = MSG_V0 + 4 };
FIXTURE_VARIANT_ADD(layout, size_256) { .msg_size = 256 };

FIXTURE_SETUP(layout)
{
	conv_name(self->name, "layout");
	self->raw = guarded(DESC_AREA);
	ASSERT_NE(NULL, self->raw);
	self->pay = malloc(PAY_AREA);
	ASSERT_NE(NULL, self->pay);
	self->rb = malloc(sizeof(*self->rb));
	ASSERT_NE(NULL, self->rb);
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				CAPACITY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
}

FIXTURE_TEARDOWN(layout)
{
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
	free(self->rb);
	free(self->pay);
	unmap_guarded(self->raw, DESC_AREA);
}

/* The descriptors end exactly at an unmapped page: nothing more is read */
TEST_F(layout, round_trip)
{
	const __u32 size = variant->msg_size, n = 7;
	struct cbm_batch_msg m[7];
	unsigned char *p = self->raw + DESC_AREA - n * size;
	__u64 first = ~0ULL;
	unsigned int i;

	for (i = 0; i < n; i++)
		make_msg(&m[i], CBM_ROLE_USER + i % 3, i << 16, i,
			 self->pay + i * LEN, LEN + i, i);
	memset(p, 0, n * size);
	for (i = 0; i < n; i++)
		memcpy(p + i * size, &m[i], sizeof(m[i]));
	ASSERT_EQ(n, send_batch_sized(self->fd, p, n, size, &first));
	EXPECT_EQ(0, first);
	expect_recs(_metadata, self->fd, self->rb, m, n, 0);
	expect_eagain(_metadata, self->fd);
}

/*
 * A lossless conversation whose one reader, payload format, holds it full:
 * FULL messages of LEN bytes, tagged with their sequence numbers.
 */
#define FULL		25

FIXTURE(lossless) {
	char name[CBM_NAME_MAX];
	int wfd;	/* the creator's, O_WRONLY | O_NONBLOCK: not a reader */
	int rfd;	/* the lossless reader, O_NONBLOCK */
	struct cbm_batch_msg *msgs;
	unsigned char *pay;
};

FIXTURE_SETUP(lossless)
{
	ssize_t n;

	conv_name(self->name, "lossless");
	self->wfd = -1;
	self->rfd = -1;
	self->msgs = calloc(CBM_BATCH_MAX, sizeof(*self->msgs));
	ASSERT_NE(NULL, self->msgs);
	self->pay = malloc(PAY_AREA);
	ASSERT_NE(NULL, self->pay);
	self->wfd = create_named(self->name, O_WRONLY | O_NONBLOCK, 0600,
				 CBM_CONV_LOSSLESS, MIN_CAPACITY);
	ASSERT_LE(0, self->wfd);
	self->rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, self->rfd);
	ASSERT_EQ(FULL, MIN_CAPACITY / CBM_RECORD_SPACE(LEN));
	write_range(_metadata, self->wfd, LEN, 0, FULL);
	n = write_tagged(self->wfd, LEN, FULL);
	ASSERT_EQ(-1, n);
	ASSERT_EQ(EAGAIN, errno);
}

FIXTURE_TEARDOWN(lossless)
{
	if (self->rfd >= 0)
		close(self->rfd);
	if (self->wfd >= 0)
		close(self->wfd);
	unlink_name(self->name);
	free(self->pay);
	free(self->msgs);
}

/* A full ring: a non-blocking batch appends nothing */
TEST_F(lossless, full_eagain)
{
	make_msgs(self->msgs, 3, self->pay, LEN, FULL);
	expect_batch_fails(_metadata, self->wfd, self->msgs, 3, EAGAIN,
			   "full, non-blocking");
	EXPECT_EQ(0, send_batch(self->wfd, self->msgs, 0, NULL));
	read_range(_metadata, self->rfd, LEN, 0, FULL);
}

/*
 * Room for k messages: a batch of more appends k and stops, blocking or
 * not, and keeps nothing of the rest; the caller resubmits the rest.
 */
static void partial_batch(struct __test_metadata *_metadata,
			  FIXTURE_DATA(lossless) *self, int fd)
{
	const unsigned int k = 3, n = 6;
	__u64 first = ~0ULL;

	make_msgs(self->msgs, n, self->pay, LEN, FULL);
	/* 25 * 160 bytes used: 96 free, and 480 more once read */
	ASSERT_EQ(0, read_tag(self->rfd, LEN));
	ASSERT_EQ(1, read_tag(self->rfd, LEN));
	ASSERT_EQ(2, read_tag(self->rfd, LEN));
	ASSERT_EQ(k, send_batch(fd, self->msgs, n, &first));
	EXPECT_EQ(FULL, first);
	expect_info(_metadata, self->wfd, k, FULL + k, FULL, k,
		    FULL * CBM_RECORD_SPACE(LEN));
	expect_batch_fails(_metadata, self->wfd, &self->msgs[k], n - k, EAGAIN,
			   "the rest, still no room");
	read_range(_metadata, self->rfd, LEN, k, FULL + k);

	ASSERT_EQ(n - k, send_batch(fd, &self->msgs[k], n - k, &first));
	EXPECT_EQ(FULL + k, first);
	read_range(_metadata, self->rfd, LEN, FULL + k, FULL + n);
}

TEST_F(lossless, partial_nonblocking)
{
	partial_batch(_metadata, self, self->wfd);
}

TEST_F(lossless, partial_blocking)
{
	int fd = open_named(self->name, O_WRONLY);

	ASSERT_LE(0, fd);
	partial_batch(_metadata, self, fd);
	close(fd);
}

/*
 * No room: a blocking batch waits for the reader; reading one message
 * makes room for exactly one, so that is what the batch appends.
 */
TEST_F_TIMEOUT(lossless, blocks_until_read, 20)
{
	int ready[2];
	pid_t pid;

	make_msgs(self->msgs, 4, self->pay, LEN, FULL);
	ASSERT_EQ(0, pipe(ready));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(self->name, O_WRONLY);
		__u64 first = ~0ULL;

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		CHILD_CHECK(send_batch(fd, self->msgs, 4, &first) == 1);
		CHILD_CHECK(first == FULL);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	ASSERT_EQ(0, wait_sleeping(pid));
	expect_info(_metadata, self->wfd, 0, FULL, FULL, 0,
		    FULL * CBM_RECORD_SPACE(LEN));
	EXPECT_EQ(0, waitpid(pid, NULL, WNOHANG));

	ASSERT_EQ(0, read_tag(self->rfd, LEN));
	EXPECT_EQ(0, wait_child(pid));
	expect_info(_metadata, self->wfd, 1, FULL + 1, FULL, 1,
		    FULL * CBM_RECORD_SPACE(LEN));
	read_range(_metadata, self->rfd, LEN, 1, FULL + 1);
	close(ready[0]);
	close(ready[1]);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* A signal ends a batch waiting for room, with nothing appended */
TEST_F_TIMEOUT(lossless, wait_interrupted_eintr, 20)
{
	pid_t pid;
	int fd;

	fd = open_named(self->name, O_WRONLY);
	ASSERT_LE(0, fd);
	make_msgs(self->msgs, 3, self->pay, LEN, FULL);
	ASSERT_EQ(0, catch_signal(SIGUSR1, 0, on_signal));
	pid = signal_when_sleeping(SIGUSR1);
	ASSERT_LE(0, pid);
	expect_batch_fails(_metadata, fd, self->msgs, 3, EINTR,
			   "interrupted while waiting");
	EXPECT_EQ(0, wait_child(pid));
	read_range(_metadata, self->rfd, LEN, 0, FULL);
	close(fd);
}

/* A bad batch fails at once: the checks come before any wait for room */
TEST_F_TIMEOUT(lossless, checks_before_waiting, 20)
{
	pid_t pid;

	make_msgs(self->msgs, 3, self->pay, LEN, FULL);
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(self->name, O_WRONLY);

		CHILD_CHECK(fd >= 0);
		self->msgs[2].role = __CBM_ROLE_MAX;
		CHILD_CHECK(send_batch(fd, self->msgs, 3, NULL) == -1);
		CHILD_CHECK(errno == EINVAL);
		self->msgs[2].role = CBM_ROLE_USER;
		self->msgs[2].data = (uintptr_t)bad_ptr();
		CHILD_CHECK(send_batch(fd, self->msgs, 3, NULL) == -1);
		CHILD_CHECK(errno == EFAULT);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	read_range(_metadata, self->rfd, LEN, 0, FULL);
}

/*
 * Writers race: batch senders and a single-message writer append to one
 * conversation at once. Each call's messages get consecutive sequence
 * numbers with nothing of another writer's in between: a reader finds,
 * at the sequence numbers each call reported, exactly that call's
 * messages. In the lossless ring the reader cannot keep up, so batches are
 * cut short and the writers resubmit the rest.
 */
struct race {
	/* seqs[w][b][i]: where message i of writer w's batch b went */
	__u64 seqs[RACE_WRITERS][RACE_BATCHES][RACE_N];
	__u64 singles[RACE_SINGLES];
	__u64 short_batches;
};

FIXTURE(race) {
	char name[CBM_NAME_MAX];
	struct race *r;		/* shared with the writers */
	__u64 *tags;		/* by sequence number, as read */
};

FIXTURE_VARIANT(race) {
	__u32 conv_flags;
	__u64 capacity;
};

FIXTURE_VARIANT_ADD(race, lossy) { .capacity = RACE_BIG };
FIXTURE_VARIANT_ADD(race, lossless) {
	.conv_flags = CBM_CONV_LOSSLESS, .capacity = RACE_SMALL,
};

FIXTURE_SETUP(race)
{
	conv_name(self->name, "race");
	self->tags = NULL;
	self->r = mmap(NULL, sizeof(*self->r), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->r);
}

FIXTURE_TEARDOWN(race)
{
	unlink_name(self->name);
	free(self->tags);
	if (self->r != MAP_FAILED)
		munmap(self->r, sizeof(*self->r));
}

static __u64 race_tag(unsigned int w, unsigned int b, unsigned int i)
{
	return (__u64)(w + 1) << 48 | (__u64)b << 16 | i;
}

/* Messages in writer @w's batch @b */
static unsigned int race_n(unsigned int w, unsigned int b)
{
	return 1 + (b * 7 + w * 3) % RACE_N;
}

static __u64 race_total(void)
{
	__u64 total = RACE_SINGLES;
	unsigned int w, b;

	for (w = 0; w < RACE_WRITERS; w++)
		for (b = 0; b < RACE_BATCHES; b++)
			total += race_n(w, b);
	return total;
}

static void __attribute__((noreturn))
race_batcher(FIXTURE_DATA(race) *self, bool lossless, unsigned int w,
	     int go)
{
	static unsigned char pay[RACE_N][RACE_LEN];
	struct cbm_batch_msg m[RACE_N];
	unsigned int b, i, j, n;
	__u64 first;
	int fd, ret;

	fd = open_named(self->name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sync_wait(go) == 0);
	for (b = 0; b < RACE_BATCHES; b++) {
		n = race_n(w, b);
		for (i = 0; i < n; i++)
			make_msg(&m[i], i % 2 ? CBM_ROLE_ASSISTANT :
				 CBM_ROLE_USER, 0, i, pay[i], RACE_LEN,
				 race_tag(w, b, i));
		for (i = 0; i < n; i += ret) {
			ret = send_batch(fd, &m[i], n - i, &first);
			CHILD_CHECK(ret > 0 && ret <= (int)(n - i));
			/* only a lossless ring may cut a batch short */
			CHILD_CHECK(lossless || ret == (int)n);
			if (ret < (int)(n - i))
				__atomic_fetch_add(&self->r->short_batches, 1,
						   __ATOMIC_RELAXED);
			for (j = 0; j < (unsigned int)ret; j++)
				self->r->seqs[w][b][i + j] = first + j;
		}
	}
	_exit(0);
}

static void __attribute__((noreturn))
race_single(FIXTURE_DATA(race) *self, int go)
{
	unsigned char pay[RACE_LEN];
	unsigned int k, i;
	int fd;

	fd = open_named(self->name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sync_wait(go) == 0);
	for (k = 0; k < RACE_SINGLES; k++) {
		for (i = 0; i < RACE_LEN; i++)
			pay[i] = payload_byte(race_tag(RACE_WRITERS, k, 0), i);
		CHILD_CHECK(send_msg(fd, CBM_ROLE_TOOL, 0, pay, RACE_LEN,
				     &self->r->singles[k]) == 0);
	}
	_exit(0);
}

TEST_F_TIMEOUT(race, batches_stay_together, 120)
{
	const __u64 total = race_total();
	bool lossless = variant->conv_flags & CBM_CONV_LOSSLESS;
	pid_t pids[RACE_WRITERS + 1];
	union rec_buf *rb;
	unsigned int w, b, i, k;
	int wfd, rfd, go[2];
	__u64 seq;

	self->tags = calloc(total, sizeof(*self->tags));
	rb = malloc(sizeof(*rb));
	ASSERT_NE(NULL, self->tags);
	ASSERT_NE(NULL, rb);
	wfd = create_named(self->name, O_WRONLY, 0600, variant->conv_flags,
			   variant->capacity);
	ASSERT_LE(0, wfd);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, pipe(go));

	for (w = 0; w <= RACE_WRITERS; w++) {
		pids[w] = fork_worker(100);
		ASSERT_LE(0, pids[w]);
		if (pids[w] == 0) {
			if (w < RACE_WRITERS)
				race_batcher(self, lossless, w, go[0]);
			race_single(self, go[0]);
		}
	}
	for (w = 0; w <= RACE_WRITERS; w++)
		ASSERT_EQ(0, sync_post(go[1]));

	/* read along, which the lossless writers need to go on */
	for (seq = 0; seq < total; seq++) {
		ASSERT_EQ(POLLIN, poll_events(rfd, POLLIN, WAIT_MS))
			TH_LOG("waiting for message %llu", seq);
		ASSERT_LT(0, read_record(rfd, rb)) TH_LOG("message %llu", seq);
		ASSERT_EQ(CBM_RECORD_MSG, rb->rec.type)
			TH_LOG("message %llu", seq);
		ASSERT_EQ(seq, rb->rec.seq);
		ASSERT_EQ(RACE_LEN, rb->rec.len);
		memcpy(&self->tags[seq], rb->bytes + REC_HDR, sizeof(__u64));
		ASSERT_TRUE(payload_ok(rb->bytes + REC_HDR, RACE_LEN,
				       self->tags[seq]));
	}
	for (w = 0; w <= RACE_WRITERS; w++)
		EXPECT_EQ(0, wait_child(pids[w])) TH_LOG("writer %u", w);
	expect_eagain(_metadata, rfd);

	for (w = 0; w < RACE_WRITERS; w++)
		for (b = 0; b < RACE_BATCHES; b++)
			for (i = 0; i < race_n(w, b); i++)
				ASSERT_EQ(race_tag(w, b, i),
					  self->tags[self->r->seqs[w][b][i]])
					TH_LOG("writer %u batch %u message %u",
					       w, b, i);
	for (k = 0; k < RACE_SINGLES; k++)
		ASSERT_EQ(race_tag(RACE_WRITERS, k, 0),
			  self->tags[self->r->singles[k]]);
	TH_LOG("%llu messages, %llu batches cut short", total,
	       self->r->short_batches);
	close(go[0]);
	close(go[1]);
	close(rfd);
	close(wfd);
	free(rb);
}

TEST_HARNESS_MAIN
