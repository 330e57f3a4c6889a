// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: windows (keep the last k messages or turns, a byte, token or age
 * budget), pinned messages that no window evicts, reading the window in
 * one call (CBM_IOC_READ_WINDOW) and seeking by time or count
 * (CBM_IOC_SEEK).
 *
 * What each step must leave behind is spelled out in the test, not
 * computed by a model of the window, so a test cannot share a bug with the
 * kernel. Conversations are big enough that only the window evicts,
 * except where a test makes the ring lap on purpose.
 */
#include <stddef.h>
#include <sys/epoll.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* Holds every message any test appends to the fixture's conversation */
#define CAPACITY	65536

#define NSEC_PER_MSEC	1000000ULL
#define NSEC_PER_SEC	1000000000ULL

/* How late an expiry may be on a slow guest (TCG, KASAN) */
#define LATE_NS		(2 * NSEC_PER_SEC)

/* The idle test: messages expire while the test only sleeps */
#define IDLE_AGE_SECS	10
#define IDLE_AGE_NS	(IDLE_AGE_SECS * NSEC_PER_SEC)

/*
 * The one-by-one test appends a message every EXPIRY_GAP_MS, each expiring
 * AGE_MS after it was appended, so each count of expired messages lasts
 * EXPIRY_GAP_MS: long enough to be seen by a sampler on a slow guest.
 */
#define AGE_MS		1000
#define EXPIRY_GAP_MS	700
#define SAMPLE_US	5000

/* The ring-lap test: 100-byte messages in the smallest ring */
#define LAP_LEN		100
#define LAP_MSGS	100

/* Payload of the pinned messages of the max_pinned test */
#define PIN_LEN		100

/* A message: what to append, and what its record must say */
struct msg {
	__u64 seq;
	__u32 role;
	__u32 flags;	/* as sent; CBM_MSG_PINNED pins it */
	__u32 tokens;
	const char *text;
};

/* Conversation state a test expects, as CBM_IOC_INFO reports it */
struct want {
	__u64 msgs;
	__u64 first_seq;
	__u64 next_seq;
	__u64 evicted;
	__u64 expired;
	__u64 pinned;
	__u64 win_msgs;
	__u64 win_turns;
	__u64 win_bytes;
	__u64 win_tokens;
};

/*
 * One message of a table-driven test and the window right after it was
 * appended. Message i gets sequence number i; nothing is pinned, so every
 * stored message counts in the window.
 */
struct step {
	__u32 role;
	__u32 len;
	__u32 tokens;
	__u64 msgs;
	__u64 first_seq;
	__u64 evicted;
	__u64 turns;
	__u64 bytes;
	__u64 tok;
};

/* Payload bytes of messages whose content no test reads back */
static char filler[CAPACITY];

static int send_len(int fd, __u32 role, __u32 flags, __u32 len, __u32 tokens,
		    __u64 *seq)
{
	memset(filler, 'x', len);
	return send_tok(fd, role, flags, filler, len, tokens, seq);
}

/* Sleeps, doing nothing else, until CLOCK_REALTIME reaches @ns */
static void sleep_until_ns(__u64 ns)
{
	struct timespec ts = {
		.tv_sec = ns / NSEC_PER_SEC,
		.tv_nsec = ns % NSEC_PER_SEC,
	};

	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL))
		;
}

static void check_info(struct __test_metadata *_metadata, int fd,
		       const struct want *w, const char *what, unsigned int n)
{
	int passed = _metadata->passed;
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info)) TH_LOG("%s %u", what, n);
	EXPECT_EQ(w->msgs, info.msgs);
	EXPECT_EQ(w->first_seq, info.first_seq);
	EXPECT_EQ(w->next_seq, info.next_seq);
	EXPECT_EQ(w->evicted, info.evicted);
	EXPECT_EQ(w->expired, info.expired);
	EXPECT_EQ(w->pinned, info.pinned);
	EXPECT_EQ(w->win_msgs, info.win_msgs);
	EXPECT_EQ(w->win_turns, info.win_turns);
	EXPECT_EQ(w->win_bytes, info.win_bytes);
	EXPECT_EQ(w->win_tokens, info.win_tokens);
	if (passed && !_metadata->passed)
		TH_LOG("info checked at %s %u", what, n);
}

#define EXPECT_INFO(fd, ...) \
	check_info(_metadata, fd, &(const struct want){ __VA_ARGS__ }, \
		   "line", __LINE__)

/* info.used of a ring holding messages of the given lengths, nothing pinned */
static __u64 used_by(const __u32 *lens, __u64 first, __u64 next)
{
	__u64 used = 0;

	for (; first < next; first++)
		used += CBM_RECORD_SPACE(lens[first]);
	return used;
}

static void expect_used(struct __test_metadata *_metadata, int fd, __u64 used,
			const char *what, unsigned int n)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(used, info.used) TH_LOG("used checked at %s %u", what, n);
}

/* Appends steps[] in order, checking the window after each message */
static void run_steps(struct __test_metadata *_metadata, int fd,
		      const struct step *steps, unsigned int n)
{
	__u32 lens[32];
	unsigned int i;
	__u64 seq;

	ASSERT_GE(ARRAY_SIZE(lens), n);
	for (i = 0; i < n; i++) {
		const struct step *s = &steps[i];

		lens[i] = s->len;
		ASSERT_EQ(0, send_len(fd, s->role, 0, s->len, s->tokens, &seq))
			TH_LOG("message %u", i);
		ASSERT_EQ(i, seq);
		check_info(_metadata, fd, &(const struct want){
				.msgs = s->msgs, .first_seq = s->first_seq,
				.next_seq = i + 1, .evicted = s->evicted,
				.win_msgs = s->msgs, .win_turns = s->turns,
				.win_bytes = s->bytes, .win_tokens = s->tok,
			   }, "message", i);
		expect_used(_metadata, fd, used_by(lens, s->first_seq, i + 1),
			    "message", i);
	}
}

static void append(struct __test_metadata *_metadata, int fd,
		   const struct msg *m)
{
	__u64 seq = ~0ULL;

	ASSERT_EQ(0, send_tok(fd, m->role, m->flags, m->text, strlen(m->text),
			      m->tokens, &seq))
		TH_LOG("appending message %llu", m->seq);
	ASSERT_EQ(m->seq, seq);
}

static void append_all(struct __test_metadata *_metadata, int fd,
		       const struct msg *msgs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		append(_metadata, fd, &msgs[i]);
}

/* Checks a record read() or CBM_IOC_READ_WINDOW returned for @m */
static void check_record(struct __test_metadata *_metadata,
			 const struct cbm_record *rec, const struct msg *m)
{
	int passed = _metadata->passed;
	size_t len = strlen(m->text);
	unsigned int i;

	EXPECT_EQ(REC_HDR, rec->hdr_len);
	EXPECT_EQ(CBM_RECORD_MSG, rec->type);
	EXPECT_EQ(m->seq, rec->seq);
	EXPECT_NE(0, rec->ts_ns);
	EXPECT_EQ(0, rec->lost);
	EXPECT_EQ(getpid(), rec->pid);
	EXPECT_EQ(geteuid(), rec->uid);
	EXPECT_EQ(m->flags, rec->flags);
	EXPECT_EQ(m->tokens, rec->tokens);
	EXPECT_EQ(m->role, rec->role);
	for (i = 0; i < sizeof(rec->__reserved); i++)
		EXPECT_EQ(0, rec->__reserved[i]);
	ASSERT_EQ(len, rec->len);
	EXPECT_EQ(0, memcmp((const char *)rec + REC_HDR, m->text, len));
	if (passed && !_metadata->passed)
		TH_LOG("record of message %llu \"%s\"", m->seq, m->text);
}

/* Reads the next record from @fd (record format): message @m */
static void read_msg(struct __test_metadata *_metadata, int fd,
		     union rec_buf *rb, const struct msg *m)
{
	ASSERT_EQ(REC_HDR + strlen(m->text), read_record(fd, rb))
		TH_LOG("reading message %llu", m->seq);
	check_record(_metadata, &rb->rec, m);
}

/* Reads the next record from @fd (record format): a gap */
static void read_gap(struct __test_metadata *_metadata, int fd,
		     union rec_buf *rb, __u64 seq, __u64 lost)
{
	ASSERT_EQ(REC_HDR, read_record(fd, rb)) TH_LOG("gap at %llu", seq);
	EXPECT_EQ(CBM_RECORD_GAP, rb->rec.type);
	EXPECT_EQ(seq, rb->rec.seq);
	EXPECT_EQ(lost, rb->rec.lost);
	EXPECT_EQ(0, rb->rec.len);
	EXPECT_EQ(0, rb->rec.ts_ns);
}

/*
 * Reads the window (its newest @last messages if @last is not 0) with
 * CBM_IOC_READ_WINDOW into @buf (REC_BUF_SIZE bytes) and checks it is
 * exactly @want (not empty): each record CBM_RECORD_SPACE() bytes, zero
 * padded, nothing written after the last one.
 */
static void check_window(struct __test_metadata *_metadata, int fd,
			 unsigned char *buf, __u64 last,
			 const struct msg *want, unsigned int n)
{
	struct cbm_read_window rw;
	__u64 off = 0, need = 0;
	unsigned int i;
	size_t len, j;

	for (i = 0; i < n; i++)
		need += CBM_RECORD_SPACE(strlen(want[i].text));
	memset(buf, JUNK, REC_BUF_SIZE);
	ASSERT_EQ(0, read_window(fd, buf, REC_BUF_SIZE, last, &rw));
	ASSERT_EQ(n, rw.count);
	ASSERT_EQ(need, rw.needed);
	EXPECT_EQ(want[0].seq, rw.first_seq);
	for (i = 0; i < n; i++) {
		len = strlen(want[i].text);
		check_record(_metadata, (const void *)(buf + off), &want[i]);
		for (j = REC_HDR + len; j < CBM_RECORD_SPACE(len); j++)
			EXPECT_EQ(0, buf[off + j]) TH_LOG("record %u", i);
		off += CBM_RECORD_SPACE(len);
	}
	EXPECT_EQ(JUNK, buf[need]);
}

/* The CLOCK_REALTIME stamps of the first @n stored messages */
static void window_stamps(struct __test_metadata *_metadata, int fd,
			  unsigned char *buf, __u64 *ts, unsigned int n)
{
	const struct cbm_record *rec;
	struct cbm_read_window rw;
	__u64 off = 0;
	unsigned int i;

	ASSERT_EQ(0, read_window(fd, buf, REC_BUF_SIZE, 0, &rw));
	ASSERT_LE(n, rw.count);
	for (i = 0; i < n; i++) {
		rec = (const void *)(buf + off);
		ts[i] = rec->ts_ns;
		off += CBM_RECORD_SPACE(rec->len);
	}
}

static void expect_seek(struct __test_metadata *_metadata, int fd,
			__u32 whence, __u64 value, __u64 cursor)
{
	__u64 got = ~0ULL;

	ASSERT_EQ(0, seek_to(fd, whence, value, &got))
		TH_LOG("whence %u value %llu", whence, value);
	EXPECT_EQ(cursor, got) TH_LOG("whence %u value %llu", whence, value);
	EXPECT_EQ(cursor, lseek(fd, 0, SEEK_CUR));
}

FIXTURE(win) {
	char name[CBM_NAME_MAX];
	char name2[CBM_NAME_MAX];	/* made by some tests */
	int fd;		/* the owner's, O_RDWR | O_NONBLOCK: reads from seq 0 */
	long long max_pinned;	/* the parameter to restore, or -1 */
	union rec_buf *rb;
	unsigned char *buf;	/* REC_BUF_SIZE bytes for READ_WINDOW */
};

FIXTURE_SETUP(win)
{
	conv_name(self->name, "win");
	conv_name(self->name2, "win2");
	self->max_pinned = -1;
	self->rb = malloc(sizeof(*self->rb));
	ASSERT_NE(NULL, self->rb);
	self->buf = malloc(REC_BUF_SIZE);
	ASSERT_NE(NULL, self->buf);
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				CAPACITY);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(win)
{
	if (self->max_pinned >= 0)
		EXPECT_EQ(0, param_write("max_pinned", self->max_pinned));
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
	unlink_name(self->name2);
	free(self->buf);
	free(self->rb);
}

TEST_F(win, max_msgs_on_append)
{
	static const struct step steps[] = {
		/* role		   len tok  msgs first evicted turns bytes tok */
		{ CBM_ROLE_USER,	5, 1,	1, 0, 0, 1,  5,  1 },
		{ CBM_ROLE_ASSISTANT,	9, 2,	2, 0, 0, 1, 14,  3 },
		{ CBM_ROLE_USER,	1, 3,	3, 0, 0, 2, 15,  6 },
		{ CBM_ROLE_ASSISTANT,  20, 4,	3, 1, 1, 1, 30,  9 },
		{ CBM_ROLE_USER,	3, 5,	3, 2, 2, 2, 24, 12 },
		{ CBM_ROLE_ASSISTANT,	0, 6,	3, 3, 3, 1, 23, 15 },
	};

	ASSERT_EQ(0, set_window(self->fd, 0, 3, 0, 0, 0));
	run_steps(_metadata, self->fd, steps, ARRAY_SIZE(steps));
}

/* A turn starts at each user message; a greeting before the first goes too */
TEST_F(win, turns_on_append)
{
	static const struct step steps[] = {
		/* role		   len tok  msgs first evicted turns bytes tok */
		{ CBM_ROLE_ASSISTANT,  10,  1,	1, 0, 0, 0, 10,  1 },
		{ CBM_ROLE_USER,       11,  2,	2, 0, 0, 1, 21,  3 },
		{ CBM_ROLE_ASSISTANT,  12,  3,	3, 0, 0, 1, 33,  6 },
		{ CBM_ROLE_USER,       13,  4,	3, 1, 1, 2, 36,  9 },
		{ CBM_ROLE_ASSISTANT,  14,  5,	4, 1, 1, 2, 50, 14 },
		{ CBM_ROLE_TOOL,       15,  6,	5, 1, 1, 2, 65, 20 },
		{ CBM_ROLE_ASSISTANT,  16,  7,	6, 1, 1, 2, 81, 27 },
		{ CBM_ROLE_USER,       17,  8,	5, 3, 3, 2, 75, 30 },
		{ CBM_ROLE_USER,       18,  9,	2, 7, 7, 2, 35, 17 },
		{ CBM_ROLE_ASSISTANT,  19, 10,	3, 7, 7, 2, 54, 27 },
	};

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 2, 0, 0, 0));
	run_steps(_metadata, self->fd, steps, ARRAY_SIZE(steps));
}

/* Payload bytes only, headers not counted; empty messages count as 0 */
TEST_F(win, max_bytes_on_append)
{
	static const struct step steps[] = {
		/* role		   len tok  msgs first evicted turns bytes tok */
		{ CBM_ROLE_USER,       40, 0,	1, 0, 0, 1,  40, 0 },
		{ CBM_ROLE_ASSISTANT,  40, 0,	2, 0, 0, 1,  80, 0 },
		{ CBM_ROLE_USER,       20, 0,	3, 0, 0, 2, 100, 0 },
		{ CBM_ROLE_ASSISTANT,	0, 0,	4, 0, 0, 2, 100, 0 },
		{ CBM_ROLE_USER,	1, 0,	4, 1, 1, 2,  61, 0 },
		{ CBM_ROLE_ASSISTANT,  60, 0,	4, 2, 2, 2,  81, 0 },
		{ CBM_ROLE_USER,       19, 0,	5, 2, 2, 3, 100, 0 },
		{ CBM_ROLE_ASSISTANT, 100, 0,	1, 7, 7, 0, 100, 0 },
	};

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 100, 0, 0));
	run_steps(_metadata, self->fd, steps, ARRAY_SIZE(steps));
}

/* cbm_send.tokens, whatever the payload; write() appends 0 tokens */
TEST_F(win, max_tokens_on_append)
{
	static const struct step steps[] = {
		/* role		   len tok  msgs first evicted turns bytes tok */
		{ CBM_ROLE_USER,	8,  4,	1, 0, 0, 1,  8,  4 },
		{ CBM_ROLE_ASSISTANT,	8,  6,	2, 0, 0, 1, 16, 10 },
		{ CBM_ROLE_USER,	8,  0,	3, 0, 0, 2, 24, 10 },
		{ CBM_ROLE_ASSISTANT,	8,  1,	3, 1, 1, 1, 24,  7 },
		{ CBM_ROLE_USER,	8, 10,	1, 4, 4, 1,  8, 10 },
		{ CBM_ROLE_ASSISTANT,	8,  3,	1, 5, 5, 0,  8,  3 },
	};

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 10, 0));
	run_steps(_metadata, self->fd, steps, ARRAY_SIZE(steps));

	ASSERT_EQ(3, write_str(self->fd, "abc"));
	EXPECT_INFO(self->fd, .msgs = 2, .first_seq = 5, .next_seq = 7,
		    .evicted = 5, .win_msgs = 2, .win_turns = 1,
		    .win_bytes = 11, .win_tokens = 3);
}

/* Every limit applies at once: whichever is tightest decides */
TEST_F(win, combined_tightest_wins)
{
	static const struct step steps[] = {
		/* role		   len tok  msgs first evicted turns bytes tok */
		{ CBM_ROLE_USER,       10, 1,	1, 0, 0, 1, 10, 1 },
		{ CBM_ROLE_ASSISTANT,  10, 1,	2, 0, 0, 1, 20, 2 },
		{ CBM_ROLE_USER,       10, 1,	3, 0, 0, 2, 30, 3 },
		{ CBM_ROLE_ASSISTANT,  10, 1,	4, 0, 0, 2, 40, 4 },
		/* max_msgs */
		{ CBM_ROLE_USER,	5, 1,	4, 1, 1, 2, 35, 4 },
		{ CBM_ROLE_ASSISTANT,  25, 1,	4, 2, 2, 2, 50, 4 },
		/* max_msgs takes one, max_bytes three more */
		{ CBM_ROLE_USER,       30, 1,	1, 6, 6, 1, 30, 1 },
		{ CBM_ROLE_ASSISTANT,	1, 5,	2, 6, 6, 1, 31, 6 },
		/* max_tokens */
		{ CBM_ROLE_USER,	1, 2,	2, 7, 7, 1,  2, 7 },
	};

	ASSERT_EQ(0, set_window(self->fd, 0, 4, 50, 7, 0));
	run_steps(_metadata, self->fd, steps, ARRAY_SIZE(steps));
}

TEST_F(win, combined_turns_and_bytes)
{
	static const struct step steps[] = {
		/* role		   len tok  msgs first evicted turns bytes tok */
		{ CBM_ROLE_USER,       10, 0,	1, 0, 0, 1, 10, 0 },
		{ CBM_ROLE_ASSISTANT,  10, 0,	2, 0, 0, 1, 20, 0 },
		{ CBM_ROLE_USER,       10, 0,	3, 0, 0, 2, 30, 0 },
		/* bytes evict the first turn's user message, leaving 1 turn */
		{ CBM_ROLE_ASSISTANT,  10, 0,	3, 1, 1, 1, 30, 0 },
		{ CBM_ROLE_USER,	5, 0,	3, 2, 2, 2, 25, 0 },
		/* turns */
		{ CBM_ROLE_USER,	1, 0,	2, 4, 4, 2,  6, 0 },
		/* bytes */
		{ CBM_ROLE_ASSISTANT,  30, 0,	1, 6, 6, 0, 30, 0 },
	};

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 2, 30, 0, 0));
	run_steps(_metadata, self->fd, steps, ARRAY_SIZE(steps));
}

/* A new window applies at once to what is stored, and readers see the gap */
TEST_F(win, set_window_shrinks)
{
	__u32 lens[11];
	struct cbm_reader_info ri;
	unsigned int i;
	__u64 seq;

	/* message i: user if i is even, i + 10 bytes, i + 1 tokens */
	for (i = 0; i < ARRAY_SIZE(lens); i++)
		lens[i] = i + 10;
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, send_len(self->fd, i % 2 ? CBM_ROLE_ASSISTANT :
				      CBM_ROLE_USER, 0, lens[i], i + 1, &seq));
		ASSERT_EQ(i, seq);
	}
	EXPECT_INFO(self->fd, .msgs = 8, .next_seq = 8, .win_msgs = 8,
		    .win_turns = 4, .win_bytes = 108, .win_tokens = 36);

	ASSERT_EQ(0, set_window(self->fd, 0, 6, 0, 0, 0));
	EXPECT_INFO(self->fd, .msgs = 6, .first_seq = 2, .next_seq = 8,
		    .evicted = 2, .win_msgs = 6, .win_turns = 3,
		    .win_bytes = 87, .win_tokens = 33);
	expect_used(_metadata, self->fd, used_by(lens, 2, 8),
		    "line", __LINE__);

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 2, 0, 0, 0));
	EXPECT_INFO(self->fd, .msgs = 4, .first_seq = 4, .next_seq = 8,
		    .evicted = 4, .win_msgs = 4, .win_turns = 2,
		    .win_bytes = 62, .win_tokens = 26);
	expect_used(_metadata, self->fd, used_by(lens, 4, 8),
		    "line", __LINE__);

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 40, 0, 0));
	EXPECT_INFO(self->fd, .msgs = 2, .first_seq = 6, .next_seq = 8,
		    .evicted = 6, .win_msgs = 2, .win_turns = 1,
		    .win_bytes = 33, .win_tokens = 15);
	expect_used(_metadata, self->fd, used_by(lens, 6, 8),
		    "line", __LINE__);

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 8, 0));
	EXPECT_INFO(self->fd, .msgs = 1, .first_seq = 7, .next_seq = 8,
		    .evicted = 7, .win_msgs = 1, .win_turns = 0,
		    .win_bytes = 17, .win_tokens = 8);
	expect_used(_metadata, self->fd, used_by(lens, 7, 8),
		    "line", __LINE__);

	/* the reader at seq 0 lost what the windows took */
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	EXPECT_EQ(0, ri.cursor);
	EXPECT_EQ(7, ri.gap);
	EXPECT_EQ(7, ri.lost);
	EXPECT_EQ(1, ri.unread);

	/* no window: nothing more goes */
	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 0, 0));
	for (i = 8; i < ARRAY_SIZE(lens); i++) {
		ASSERT_EQ(0, send_len(self->fd, i % 2 ? CBM_ROLE_ASSISTANT :
				      CBM_ROLE_USER, 0, lens[i], i + 1, &seq));
		ASSERT_EQ(i, seq);
	}
	EXPECT_INFO(self->fd, .msgs = 4, .first_seq = 7, .next_seq = 11,
		    .evicted = 7, .win_msgs = 4, .win_turns = 2,
		    .win_bytes = 74, .win_tokens = 38);
	expect_used(_metadata, self->fd, used_by(lens, 7, 11),
		    "line", __LINE__);
}

/*
 * A max_age applies at once to old messages. A pinned one stays however
 * old, until it is unpinned: then it expires at once.
 */
TEST_F(win, max_age_on_set_window)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_USER, 0, 1, "old user" },
		{ 1, CBM_ROLE_ASSISTANT, 0, 2, "old answer" },
		{ 2, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 8, "old prompt" },
		{ 3, CBM_ROLE_USER, 0, 4, "new" },
	};

	append_all(_metadata, self->fd, msgs, 3);
	usleep(3 * AGE_MS * 1000 / 2);
	append(_metadata, self->fd, &msgs[3]);
	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 0, AGE_MS * NSEC_PER_MSEC));
	EXPECT_INFO(self->fd, .msgs = 2, .first_seq = 2, .next_seq = 4,
		    .evicted = 2, .expired = 2, .pinned = 1, .win_msgs = 1,
		    .win_turns = 1, .win_bytes = 3, .win_tokens = 4);
	expect_used(_metadata, self->fd, CBM_RECORD_SPACE(strlen(msgs[2].text)) +
		    CBM_RECORD_SPACE(3), "line", __LINE__);

	ASSERT_EQ(0, unpin(self->fd, 2, 0));
	EXPECT_INFO(self->fd, .msgs = 1, .first_seq = 3, .next_seq = 4,
		    .evicted = 3, .expired = 3, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 3, .win_tokens = 4);
	expect_used(_metadata, self->fd, CBM_RECORD_SPACE(3),
		    "line", __LINE__);
}

/*
 * The example of the "Windows" DOC: a pinned system prompt and five turns
 * in a window of two turns keep the prompt, user 4, assistant 4, user 5
 * and assistant 5.
 */
static const struct msg chat[] = {
	{ 0, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 6, "You are a helpful assistant." },
	{ 1, CBM_ROLE_USER, 0, 1, "user 1" },
	{ 2, CBM_ROLE_ASSISTANT, 0, 10, "assistant 1" },
	{ 3, CBM_ROLE_USER, 0, 2, "user 2" },
	{ 4, CBM_ROLE_ASSISTANT, 0, 20, "assistant 2" },
	{ 5, CBM_ROLE_USER, 0, 3, "user 3" },
	{ 6, CBM_ROLE_ASSISTANT, 0, 30, "assistant 3" },
	{ 7, CBM_ROLE_USER, 0, 4, "user 4" },
	{ 8, CBM_ROLE_ASSISTANT, 0, 40, "assistant 4" },
	{ 9, CBM_ROLE_USER, 0, 5, "user 5" },
	{ 10, CBM_ROLE_ASSISTANT, 0, 50, "assistant 5" },
};

static const unsigned int chat_kept[] = { 0, 7, 8, 9, 10 };

static void check_two_turns(struct __test_metadata *_metadata,
			    FIXTURE_DATA(win) *self)
{
	struct msg want[ARRAY_SIZE(chat_kept)];
	struct cbm_info info;
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(chat_kept); i++)
		want[i] = chat[chat_kept[i]];
	EXPECT_INFO(self->fd, .msgs = 5, .first_seq = 0, .next_seq = 11,
		    .evicted = 6, .pinned = 1, .win_msgs = 4, .win_turns = 2,
		    .win_bytes = 34, .win_tokens = 99);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(CBM_RECORD_SPACE(strlen(chat[0].text)), info.pinned_bytes);

	check_window(_metadata, self->fd, self->buf, 0, want, ARRAY_SIZE(want));

	/* a new reader starts at the prompt and reads the same */
	fd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_config(fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	for (i = 0; i < ARRAY_SIZE(want); i++)
		read_msg(_metadata, fd, self->rb, &want[i]);
	expect_eagain(_metadata, fd);
	close(fd);

	/* the reader that was there all along read nothing: a gap */
	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	read_msg(_metadata, self->fd, self->rb, &chat[0]);
	read_gap(_metadata, self->fd, self->rb, 1, 6);
	for (i = 1; i < ARRAY_SIZE(want); i++)
		read_msg(_metadata, self->fd, self->rb, &want[i]);
	expect_eagain(_metadata, self->fd);
}

TEST_F(win, two_turns_window_first)
{
	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 2, 0, 0, 0));
	append_all(_metadata, self->fd, chat, ARRAY_SIZE(chat));
	check_two_turns(_metadata, self);
}

TEST_F(win, two_turns_window_after)
{
	append_all(_metadata, self->fd, chat, ARRAY_SIZE(chat));
	EXPECT_INFO(self->fd, .msgs = 11, .next_seq = 11, .pinned = 1,
		    .win_msgs = 10, .win_turns = 5, .win_bytes = 85,
		    .win_tokens = 165);
	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 2, 0, 0, 0));
	check_two_turns(_metadata, self);
}

/*
 * Expiry needs nobody: messages go when they are max_age_ns old while the
 * test only sleeps, and the timer that frees them wakes pollers. An
 * edge-triggered epoll shows the wake-up: the file is readable before
 * expiry (unread messages) and after it (a gap), so only a wake-up of its
 * wait queue ends epoll_wait().
 */
TEST_F_TIMEOUT(win, max_age_frees_idle_conversation, 3 * IDLE_AGE_SECS)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_USER, 0, 3, "first" },
		{ 1, CBM_ROLE_ASSISTANT, 0, 4, "second" },
		{ 2, CBM_ROLE_USER, 0, 5, "third" },
	};
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	struct cbm_reader_info ri;
	struct cbm_read_window rw;
	struct cbm_info info;
	int ready[2], report[2];
	__u64 ts[3], woke = 0;
	char c;
	ssize_t n;
	pid_t pid;

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 0, IDLE_AGE_NS));
	append_all(_metadata, self->fd, msgs, ARRAY_SIZE(msgs));
	window_stamps(_metadata, self->fd, self->buf, ts, ARRAY_SIZE(ts));
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 3, .win_msgs = 3,
		    .win_turns = 2, .win_bytes = 16, .win_tokens = 12);

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(report));
	pid = fork_worker(3 * IDLE_AGE_SECS);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int ep = epoll_create1(EPOLL_CLOEXEC);

		CHILD_CHECK(ep >= 0);
		CHILD_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ev) == 0);
		/* the first report is the readiness the file already has */
		CHILD_CHECK(epoll_wait(ep, &ev, 1, 0) == 1);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		CHILD_CHECK(epoll_wait(ep, &ev, 1,
				       2 * IDLE_AGE_SECS * 1000) == 1);
		woke = now_ns();
		CHILD_CHECK(write(report[1], &woke, sizeof(woke)) ==
			    sizeof(woke));
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	sleep_until_ns(ts[2] + IDLE_AGE_NS + LATE_NS);

	/* the poller was woken by then, not before the first expiry */
	ASSERT_EQ(POLLIN, poll_events(report[0], POLLIN, 0));
	ASSERT_EQ(sizeof(woke), read(report[0], &woke, sizeof(woke)));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_LE(ts[0] + IDLE_AGE_NS, woke);
	close(ready[0]);
	close(ready[1]);
	close(report[0]);
	close(report[1]);

	EXPECT_INFO(self->fd, .msgs = 0, .first_seq = 3, .next_seq = 3,
		    .evicted = 3, .expired = 3);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(0, info.used);
	ASSERT_EQ(0, read_window(self->fd, self->buf, REC_BUF_SIZE, 0, &rw));
	EXPECT_EQ(0, rw.count);
	EXPECT_EQ(0, rw.needed);
	EXPECT_EQ(3, rw.first_seq);

	/* the reader never read them: it lost them */
	n = read(self->fd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	expect_eagain(_metadata, self->fd);
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	EXPECT_EQ(3, ri.lost);
	EXPECT_EQ(3, ri.cursor);
}

/*
 * Messages appended at different times expire one at a time, each when it
 * is AGE_MS old: never earlier, and at most LATE_NS later. A pinned
 * message never expires.
 */
TEST_F_TIMEOUT(win, max_age_expires_one_by_one, 20)
{
	static const struct msg prompt = {
		0, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 1, "prompt",
	};
	static const struct msg msgs[] = {
		{ 1, CBM_ROLE_USER, 0, 1, "one" },
		{ 2, CBM_ROLE_ASSISTANT, 0, 2, "two" },
		{ 3, CBM_ROLE_USER, 0, 3, "three" },
	};
	const __u64 age = AGE_MS * NSEC_PER_MSEC;
	bool seen[ARRAY_SIZE(msgs) + 1] = { false };
	__u64 ts[ARRAY_SIZE(msgs)], start, before, after, due, overdue;
	__u64 prompt_ts;
	unsigned int sent = 0, i;
	struct cbm_info info;

	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	append(_metadata, self->fd, &prompt);
	read_msg(_metadata, self->fd, self->rb, &prompt);
	prompt_ts = self->rb->rec.ts_ns;
	ASSERT_EQ(0, set_window(self->fd, 0, 0, 0, 0, age));

	start = mono_ms();
	for (;;) {
		if (sent < ARRAY_SIZE(msgs) &&
		    mono_ms() >= start + sent * EXPIRY_GAP_MS) {
			append(_metadata, self->fd, &msgs[sent]);
			/* its stamp, read before it can expire */
			read_msg(_metadata, self->fd, self->rb, &msgs[sent]);
			ts[sent++] = self->rb->rec.ts_ns;
		}
		before = now_ns();
		ASSERT_EQ(0, read_info(self->fd, &info));
		after = now_ns();
		for (due = 0, overdue = 0, i = 0; i < sent; i++) {
			due += ts[i] + age <= after;
			overdue += ts[i] + age + LATE_NS <= before;
		}
		ASSERT_GE(due, info.expired) TH_LOG("expired early");
		ASSERT_LE(overdue, info.expired) TH_LOG("expired late");
		ASSERT_EQ(info.expired, info.evicted);
		ASSERT_EQ(1 + sent - info.expired, info.msgs);
		ASSERT_EQ(sent - info.expired, info.win_msgs);
		ASSERT_EQ(1, info.pinned);
		seen[info.expired] = true;
		if (info.expired == ARRAY_SIZE(msgs))
			break;
		usleep(SAMPLE_US);
	}
	/* each message went on its own */
	EXPECT_TRUE(seen[1]);
	EXPECT_TRUE(seen[2]);
	EXPECT_INFO(self->fd, .msgs = 1, .first_seq = 0, .next_seq = 4,
		    .evicted = 3, .expired = 3, .pinned = 1);
	/* the prompt is older than the age, and still there */
	EXPECT_LT(prompt_ts + age, now_ns());
	check_window(_metadata, self->fd, self->buf, 0, &prompt, 1);
}

/* Pinned messages count against no limit, and no limit evicts them */
TEST_F(win, pinned_exempt_from_limits)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 50,
		  "a system prompt far longer than the byte budget" },
		{ 1, CBM_ROLE_USER, 0, 1, "a" },
		{ 2, CBM_ROLE_ASSISTANT, 0, 1, "b" },
		{ 3, CBM_ROLE_USER, CBM_MSG_PINNED | 0x10000, 3, "pinned user" },
		{ 4, CBM_ROLE_USER, 0, 1, "c" },
		{ 5, CBM_ROLE_ASSISTANT, 0, 2, "d" },
		{ 6, CBM_ROLE_USER, 0, 1, "e" },
	};
	const struct msg kept[] = { msgs[0], msgs[3], msgs[6] };
	struct cbm_info info;

	ASSERT_EQ(0, set_window(self->fd, 0, 1, 10, 5, 0));
	append(_metadata, self->fd, &msgs[0]);
	EXPECT_INFO(self->fd, .msgs = 1, .next_seq = 1, .pinned = 1);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(CBM_RECORD_SPACE(strlen(msgs[0].text)), info.pinned_bytes);

	append(_metadata, self->fd, &msgs[1]);
	EXPECT_INFO(self->fd, .msgs = 2, .next_seq = 2, .pinned = 1,
		    .win_msgs = 1, .win_turns = 1, .win_bytes = 1,
		    .win_tokens = 1);
	append(_metadata, self->fd, &msgs[2]);
	EXPECT_INFO(self->fd, .msgs = 2, .next_seq = 3, .evicted = 1,
		    .pinned = 1, .win_msgs = 1, .win_bytes = 1,
		    .win_tokens = 1);
	/* a pinned user message starts no turn */
	append(_metadata, self->fd, &msgs[3]);
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 4, .evicted = 1,
		    .pinned = 2, .win_msgs = 1, .win_bytes = 1,
		    .win_tokens = 1);
	append(_metadata, self->fd, &msgs[4]);
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 5, .evicted = 2,
		    .pinned = 2, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 1, .win_tokens = 1);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(CBM_RECORD_SPACE(strlen(msgs[0].text)) +
		  CBM_RECORD_SPACE(strlen(msgs[3].text)), info.pinned_bytes);

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 1, 0, 0, 0));
	append(_metadata, self->fd, &msgs[5]);
	EXPECT_INFO(self->fd, .msgs = 4, .next_seq = 6, .evicted = 2,
		    .pinned = 2, .win_msgs = 2, .win_turns = 1,
		    .win_bytes = 2, .win_tokens = 3);
	append(_metadata, self->fd, &msgs[6]);
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 7, .evicted = 4,
		    .pinned = 2, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 1, .win_tokens = 1);
	check_window(_metadata, self->fd, self->buf, 0, kept, ARRAY_SIZE(kept));
}

/*
 * The ring reuses a pinned message's place like any other, but the kernel
 * keeps a copy: readers and READ_WINDOW still get it, in sequence order.
 */
TEST_F(win, pinned_survives_ring_lap)
{
	static const struct msg prompt = {
		0, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 3, "system prompt",
	};
	const __u64 space = CBM_RECORD_SPACE(LAP_LEN);
	const __u64 fit = MIN_CAPACITY / space;
	const __u64 oldest = LAP_MSGS + 1 - fit;
	unsigned char payload[LAP_LEN];
	struct cbm_reader_info ri;
	const struct cbm_record *rec;
	struct cbm_read_window rw;
	struct cbm_info info;
	int wfd, old, fresh;
	__u64 seq, off, i;
	size_t j;

	wfd = create_named(self->name2, O_WRONLY, 0600, 0, MIN_CAPACITY);
	ASSERT_LE(0, wfd);
	old = open_named(self->name2, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, old);
	ASSERT_EQ(0, set_config(old, CBM_FD_RECORDS, CBM_ROLE_USER));

	append(_metadata, wfd, &prompt);
	for (i = 1; i <= LAP_MSGS; i++) {
		for (j = 0; j < LAP_LEN; j++)
			payload[j] = payload_byte(i, j);
		ASSERT_EQ(0, send_tok(wfd, CBM_ROLE_USER, 0, payload, LAP_LEN,
				      1, &seq));
		ASSERT_EQ(i, seq);
	}
	EXPECT_INFO(wfd, .msgs = fit + 1, .first_seq = 0,
		    .next_seq = LAP_MSGS + 1, .evicted = oldest - 1,
		    .pinned = 1, .win_msgs = fit, .win_turns = fit,
		    .win_bytes = fit * LAP_LEN, .win_tokens = fit);
	ASSERT_EQ(0, read_info(wfd, &info));
	EXPECT_EQ(fit * space, info.used);
	EXPECT_EQ(CBM_RECORD_SPACE(strlen(prompt.text)), info.pinned_bytes);

	memset(self->buf, JUNK, REC_BUF_SIZE);
	ASSERT_EQ(0, read_window(old, self->buf, REC_BUF_SIZE, 0, &rw));
	EXPECT_EQ(fit + 1, rw.count);
	EXPECT_EQ(CBM_RECORD_SPACE(strlen(prompt.text)) + fit * space,
		  rw.needed);
	EXPECT_EQ(0, rw.first_seq);
	check_record(_metadata, (const void *)self->buf, &prompt);
	off = CBM_RECORD_SPACE(strlen(prompt.text));
	for (i = oldest; i <= LAP_MSGS; i++, off += space) {
		rec = (const void *)(self->buf + off);
		ASSERT_EQ(i, rec->seq);
		ASSERT_EQ(LAP_LEN, rec->len);
		EXPECT_EQ(0, rec->flags);
		EXPECT_TRUE(payload_ok((const unsigned char *)rec + REC_HDR,
				       LAP_LEN, i));
	}

	/*
	 * A new reader starts at the pinned message, then reads the ring:
	 * what was evicted before it came is no loss of its own.
	 */
	fresh = open_named(self->name2, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fresh);
	ASSERT_EQ(0, set_config(fresh, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(0, read_rinfo(fresh, &ri));
	EXPECT_EQ(0, ri.cursor);
	EXPECT_EQ(0, ri.lost);
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(fit + 1, ri.unread);
	read_msg(_metadata, fresh, self->rb, &prompt);
	for (i = oldest; i <= LAP_MSGS; i++) {
		ASSERT_EQ(REC_HDR + LAP_LEN, read_record(fresh, self->rb));
		EXPECT_EQ(i, self->rb->rec.seq);
		EXPECT_TRUE(payload_ok(self->rb->bytes + REC_HDR, LAP_LEN, i));
	}
	expect_eagain(_metadata, fresh);
	ASSERT_EQ(0, read_rinfo(fresh, &ri));
	EXPECT_EQ(0, ri.lost);

	/* the reader that was there all along: prompt, gap, the rest */
	read_msg(_metadata, old, self->rb, &prompt);
	read_gap(_metadata, old, self->rb, 1, oldest - 1);
	ASSERT_EQ(REC_HDR + LAP_LEN, read_record(old, self->rb));
	EXPECT_EQ(oldest, self->rb->rec.seq);
	ASSERT_EQ(0, read_rinfo(old, &ri));
	EXPECT_EQ(oldest - 1, ri.lost);

	/* back to the pin: the loss was told once and is not told again */
	expect_seek(_metadata, old, CBM_SEEK_SEQ, 0, 0);
	read_msg(_metadata, old, self->rb, &prompt);
	ASSERT_EQ(REC_HDR + LAP_LEN, read_record(old, self->rb));
	EXPECT_EQ(oldest, self->rb->rec.seq);
	ASSERT_EQ(0, read_rinfo(old, &ri));
	EXPECT_EQ(oldest - 1, ri.lost);

	/* counting back over stored messages steps from the ring to the pin */
	expect_seek(_metadata, fresh, CBM_SEEK_LAST, fit, oldest);
	expect_seek(_metadata, fresh, CBM_SEEK_LAST, fit + 1, 0);
	read_msg(_metadata, fresh, self->rb, &prompt);
	ASSERT_EQ(REC_HDR + LAP_LEN, read_record(fresh, self->rb));
	EXPECT_EQ(oldest, self->rb->rec.seq);
	ASSERT_EQ(0, read_rinfo(fresh, &ri));
	EXPECT_EQ(0, ri.lost);
	close(fresh);
	close(old);
	close(wfd);
}

TEST_F(win, max_pinned_enospc)
{
	const __u64 space = CBM_RECORD_SPACE(PIN_LEN);
	struct cbm_info info;
	long long saved;
	__u64 seq;
	int ret;

	ASSERT_EQ(0, param_read("max_pinned", &saved));
	self->max_pinned = saved;
	ASSERT_EQ(0, param_write("max_pinned", 2 * space));

	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED,
			      PIN_LEN, 0, &seq));
	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED,
			      PIN_LEN, 0, &seq));
	ret = send_len(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 0, &seq);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_INFO(self->fd, .msgs = 2, .next_seq = 2, .pinned = 2);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(2 * space, info.pinned_bytes);

	/* the budget is for pinned messages only */
	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_USER, 0, PIN_LEN, 0, &seq));
	EXPECT_EQ(2, seq);

	/* unpinning gives the room back */
	ASSERT_EQ(0, unpin(self->fd, 0, 0));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(space, info.pinned_bytes);
	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED,
			      PIN_LEN, 0, &seq));
	EXPECT_EQ(3, seq);

	/* lowering the budget below the pinned bytes unpins nothing */
	ASSERT_EQ(0, param_write("max_pinned", space / 2));
	EXPECT_INFO(self->fd, .msgs = 4, .next_seq = 4, .pinned = 2,
		    .win_msgs = 2, .win_turns = 1, .win_bytes = 2 * PIN_LEN);
	ret = send_len(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 0, &seq);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(2 * space, info.pinned_bytes);
	EXPECT_EQ(4, info.next_seq);
}

/* Unpinning returns a message to the window, which may evict it at once */
TEST_F(win, unpin)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 1, "sys" },
		{ 1, CBM_ROLE_USER, 0, 2, "u1" },
		{ 2, CBM_ROLE_ASSISTANT, 0, 3, "a2" },
		{ 3, CBM_ROLE_SYSTEM, CBM_MSG_PINNED | 0x10000, 4, "keep" },
	};
	/* message 3 unpinned: the application's flag stays */
	const struct msg kept[] = {
		msgs[1], msgs[2], { 3, CBM_ROLE_SYSTEM, 0x10000, 4, "keep" },
	};
	struct cbm_info info;

	ASSERT_EQ(0, set_window(self->fd, 0, 2, 0, 0, 0));
	append_all(_metadata, self->fd, msgs, 3);
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 3, .pinned = 1,
		    .win_msgs = 2, .win_turns = 1, .win_bytes = 4,
		    .win_tokens = 5);

	/* three unpinned messages in a window of two: the oldest goes */
	ASSERT_EQ(0, unpin(self->fd, 0, 0));
	/* that changed no configuration (EXPECT_INFO cleared EPOLLPRI) */
	EXPECT_EQ(0, poll_events(self->fd, POLLPRI, 0));
	EXPECT_INFO(self->fd, .msgs = 2, .first_seq = 1, .next_seq = 3,
		    .evicted = 1, .win_msgs = 2, .win_turns = 1,
		    .win_bytes = 4, .win_tokens = 5);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(0, info.pinned_bytes);

	/* room in the window: the message stays, unpinned */
	ASSERT_EQ(0, set_window(self->fd, 0, 3, 0, 0, 0));
	append(_metadata, self->fd, &msgs[3]);
	ASSERT_EQ(0, unpin(self->fd, 3, 0));
	EXPECT_INFO(self->fd, .msgs = 3, .first_seq = 1, .next_seq = 4,
		    .evicted = 1, .win_msgs = 3, .win_turns = 1,
		    .win_bytes = 8, .win_tokens = 9);
	check_window(_metadata, self->fd, self->buf, 0, kept, ARRAY_SIZE(kept));
}

/*
 * Unpinning a message whose ring place was reused removes it: a reader
 * that had not read it counts it as lost, with a gap record if it was
 * bound before the message left the ring, by the count alone if after.
 */
TEST_F(win, unpin_gone_is_lost)
{
	static const struct msg prompt = {
		0, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 3, "system prompt",
	};
	const __u64 fit = MIN_CAPACITY / CBM_RECORD_SPACE(LAP_LEN);
	const __u64 oldest = LAP_MSGS + 1 - fit;
	unsigned char payload[LAP_LEN] = { 0 };
	struct cbm_reader_info ri;
	int wfd, old, fresh;
	__u64 i;

	wfd = create_named(self->name2, O_WRONLY, 0600, 0, MIN_CAPACITY);
	ASSERT_LE(0, wfd);
	old = open_named(self->name2, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, old);
	ASSERT_EQ(0, set_config(old, CBM_FD_RECORDS, CBM_ROLE_USER));
	append(_metadata, wfd, &prompt);
	for (i = 1; i <= LAP_MSGS; i++)
		ASSERT_EQ(0, send_tok(wfd, CBM_ROLE_USER, 0, payload, LAP_LEN,
				      0, NULL));
	fresh = open_named(self->name2, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fresh);
	ASSERT_EQ(0, set_config(fresh, CBM_FD_RECORDS, CBM_ROLE_USER));

	/* the owner's write-only file may unpin */
	ASSERT_EQ(0, unpin(wfd, 0, 0));
	EXPECT_INFO(wfd, .msgs = fit, .first_seq = oldest,
		    .next_seq = LAP_MSGS + 1, .evicted = oldest,
		    .win_msgs = fit, .win_turns = fit,
		    .win_bytes = fit * LAP_LEN);

	/* bound before: one gap from seq 0, the prompt included */
	ASSERT_EQ(0, read_rinfo(old, &ri));
	EXPECT_EQ(oldest, ri.lost);
	EXPECT_EQ(oldest, ri.gap);
	ASSERT_EQ((ssize_t)REC_HDR, read_record(old, self->rb));
	EXPECT_EQ(CBM_RECORD_GAP, self->rb->rec.type);
	EXPECT_EQ(0, self->rb->rec.seq);
	EXPECT_EQ(oldest, self->rb->rec.lost);

	/* bound after: the holes before it are not its; the prompt was */
	ASSERT_EQ(0, read_rinfo(fresh, &ri));
	EXPECT_EQ(1, ri.lost);
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(oldest, ri.cursor);
	ASSERT_LT(0, read_record(fresh, self->rb));
	EXPECT_EQ(CBM_RECORD_MSG, self->rb->rec.type);
	EXPECT_EQ(oldest, self->rb->rec.seq);
	ASSERT_EQ(0, read_rinfo(fresh, &ri));
	EXPECT_EQ(1, ri.lost);

	close(fresh);
	close(old);
	close(wfd);
}

TEST_F(win, unpin_errors)
{
	struct {
		struct cbm_pin p;
		__u64 tail;
	} big;
	struct cbm_pin p;
	int ret, rofd;

	ASSERT_EQ(0, send_tok(self->fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, "s",
			      1, 0, NULL));
	ASSERT_EQ(0, send_tok(self->fd, CBM_ROLE_USER, 0, "u", 1, 0, NULL));

	ret = unpin(self->fd, 1, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	ret = unpin(self->fd, 2, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	ret = unpin(self->fd, ~0ULL, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	ret = unpin(self->fd, 0, 1);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	memset(&p, 0, sizeof(p));
	p.size = offsetof(struct cbm_pin, seq);
	ret = ioctl(self->fd, CBM_IOC_UNPIN, &p);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	memset(&big, 0, sizeof(big));
	big.p.size = sizeof(big);
	big.tail = 1;
	ret = ioctl(self->fd, CBM_IOC_UNPIN, &big);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ret = ioctl(self->fd, CBM_IOC_UNPIN, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);

	rofd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, rofd);
	ret = unpin(rofd, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	close(rofd);

	/* none of that unpinned it; a longer struct with a zero tail does */
	EXPECT_INFO(self->fd, .msgs = 2, .next_seq = 2, .pinned = 1,
		    .win_msgs = 1, .win_turns = 1, .win_bytes = 1);
	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_UNPIN, &big));
	ret = unpin(self->fd, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	EXPECT_INFO(self->fd, .msgs = 2, .next_seq = 2, .win_msgs = 2,
		    .win_turns = 1, .win_bytes = 2);
}

/* What the window takes from a reader that had not read it is a gap */
TEST_F(win, window_gaps)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_USER, 0, 0, "m0" },
		{ 1, CBM_ROLE_ASSISTANT, 0, 0, "m1" },
		{ 2, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, "pinned" },
		{ 3, CBM_ROLE_USER, 0, 0, "m3" },
		{ 4, CBM_ROLE_ASSISTANT, 0, 0, "m4" },
		{ 5, CBM_ROLE_USER, 0, 0, "m5" },
		{ 6, CBM_ROLE_ASSISTANT, 0, 0, "m6" },
	};
	struct cbm_reader_info ri;
	char buf[16] = { 0 };
	ssize_t n;
	int rfd;

	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	rfd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, set_window(self->fd, 0, 2, 0, 0, 0));
	append_all(_metadata, self->fd, msgs, ARRAY_SIZE(msgs));
	EXPECT_INFO(self->fd, .msgs = 3, .first_seq = 2, .next_seq = 7,
		    .evicted = 4, .pinned = 1, .win_msgs = 2, .win_turns = 1,
		    .win_bytes = 4);

	/* record format: gap, pinned message, gap, the window */
	read_gap(_metadata, self->fd, self->rb, 0, 2);
	read_msg(_metadata, self->fd, self->rb, &msgs[2]);
	read_gap(_metadata, self->fd, self->rb, 3, 2);
	read_msg(_metadata, self->fd, self->rb, &msgs[5]);
	read_msg(_metadata, self->fd, self->rb, &msgs[6]);
	expect_eagain(_metadata, self->fd);
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	EXPECT_EQ(4, ri.lost);
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(7, ri.cursor);

	/* payload format: EPIPE for each gap */
	n = read(rfd, buf, sizeof(buf));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	ASSERT_EQ(6, read(rfd, buf, sizeof(buf)));
	EXPECT_STREQ("pinned", buf);
	n = read(rfd, buf, sizeof(buf));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(2, read(rfd, buf, sizeof(buf)));
	EXPECT_STREQ("m5", buf);
	ASSERT_EQ(2, read(rfd, buf, sizeof(buf)));
	EXPECT_STREQ("m6", buf);
	expect_eagain(_metadata, rfd);
	close(rfd);
}

/* A message the window could never hold fails, unless it is pinned */
TEST_F(win, emsgsize_over_budget)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_USER, 0, 1, "0123456789" },
		{ 1, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 11,
		  "a pinned message over both budgets, bytes and tokens" },
		{ 2, CBM_ROLE_USER, 0, 9, "forty bytes of a message that fits, just" },
	};
	ssize_t n;
	int ret;

	ASSERT_EQ(0, set_window(self->fd, 0, 0, 50, 10, 0));
	append(_metadata, self->fd, &msgs[0]);

	ret = send_len(self->fd, CBM_ROLE_USER, 0, 51, 0, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);
	ret = send_len(self->fd, CBM_ROLE_USER, 0, 1, 11, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);
	memset(filler, 'x', 51);
	n = write(self->fd, filler, 51);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	/* failing, they evicted nothing */
	EXPECT_INFO(self->fd, .msgs = 1, .next_seq = 1, .win_msgs = 1,
		    .win_turns = 1, .win_bytes = 10, .win_tokens = 1);

	append(_metadata, self->fd, &msgs[1]);
	append(_metadata, self->fd, &msgs[2]);
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 3, .pinned = 1,
		    .win_msgs = 2, .win_turns = 2, .win_bytes = 50,
		    .win_tokens = 10);

	/* exactly the budget fits, and takes the whole window */
	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_USER, 0, 50, 10, NULL));
	EXPECT_INFO(self->fd, .msgs = 2, .first_seq = 1, .next_seq = 4,
		    .evicted = 2, .pinned = 1, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 50, .win_tokens = 10);

	/* unpinned, the big message can never be in the window: it goes */
	ASSERT_EQ(0, unpin(self->fd, 1, 0));
	EXPECT_INFO(self->fd, .msgs = 1, .first_seq = 3, .next_seq = 4,
		    .evicted = 3, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 50, .win_tokens = 10);
}

/* Messages of every padding, roles, flags and tokens, as READ_WINDOW sees */
static const struct msg layout[] = {
	{ 0, CBM_ROLE_USER, 0, 1, "" },
	{ 1, CBM_ROLE_ASSISTANT, 0x20000, 2, "a" },
	{ 2, CBM_ROLE_TOOL, 0, 3, "1234567" },
	{ 3, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 4, "12345678" },
	{ 4, CBM_ROLE_OTHER, 0x80000000, 5, "123456789" },
};

TEST_F(win, read_window_layout)
{
	struct cbm_reader_info ri;
	struct cbm_read_window rw;
	__u64 before, after, prev = 0, off = 0, need;
	const struct cbm_record *rec;
	unsigned int i;

	before = now_ns();
	append_all(_metadata, self->fd, layout, ARRAY_SIZE(layout));
	after = now_ns();
	check_window(_metadata, self->fd, self->buf, 0, layout,
		     ARRAY_SIZE(layout));
	for (i = 0; i < ARRAY_SIZE(layout); i++) {
		rec = (const void *)(self->buf + off);
		EXPECT_LE(before, rec->ts_ns);
		EXPECT_GE(after, rec->ts_ns);
		EXPECT_LE(prev, rec->ts_ns);
		prev = rec->ts_ns;
		off += CBM_RECORD_SPACE(rec->len);
	}
	need = off;
	EXPECT_EQ(56 + 64 + 64 + 64 + 72, need);

	/* a buffer of exactly the records' size is enough */
	ASSERT_EQ(0, read_window(self->fd, self->buf, need, 0, &rw));
	EXPECT_EQ(ARRAY_SIZE(layout), rw.count);
	EXPECT_EQ(need, rw.needed);

	/* the cursor did not move */
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	EXPECT_EQ(0, ri.cursor);
	EXPECT_EQ(ARRAY_SIZE(layout), ri.unread);
}

/* Too small a buffer: EMSGSIZE, the size needed, and nothing copied */
TEST_F(win, read_window_too_small)
{
	__u64 need = 0, last2, i;
	struct cbm_read_window rw;
	int ret;

	append_all(_metadata, self->fd, layout, ARRAY_SIZE(layout));
	for (i = 0; i < ARRAY_SIZE(layout); i++)
		need += CBM_RECORD_SPACE(strlen(layout[i].text));
	last2 = CBM_RECORD_SPACE(strlen(layout[3].text)) +
		CBM_RECORD_SPACE(strlen(layout[4].text));

	memset(self->buf, JUNK, REC_BUF_SIZE);
	ret = read_window(self->fd, self->buf, need - 1, 0, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(ARRAY_SIZE(layout), rw.count);
	EXPECT_EQ(need, rw.needed);
	for (i = 0; i < need; i++)
		ASSERT_EQ(JUNK, self->buf[i]) TH_LOG("byte %llu", i);

	/* a size query */
	ret = read_window(self->fd, NULL, 0, 0, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(ARRAY_SIZE(layout), rw.count);
	EXPECT_EQ(need, rw.needed);

	ret = read_window(self->fd, self->buf, last2 - 1, 2, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(2, rw.count);
	EXPECT_EQ(last2, rw.needed);
	for (i = 0; i < last2; i++)
		ASSERT_EQ(JUNK, self->buf[i]) TH_LOG("byte %llu", i);

	ASSERT_EQ(0, read_window(self->fd, self->buf, last2, 2, &rw));
	EXPECT_EQ(2, rw.count);
	EXPECT_EQ(last2, rw.needed);
	EXPECT_EQ(3, rw.first_seq);
}

/* @last counts stored messages, pinned ones included, newest first */
TEST_F(win, read_window_last)
{
	const struct msg stored[] = { chat[0], chat[2], chat[3], chat[4] };

	ASSERT_EQ(0, set_window(self->fd, 0, 3, 0, 0, 0));
	append_all(_metadata, self->fd, chat, 5);
	check_window(_metadata, self->fd, self->buf, 0, stored,
		     ARRAY_SIZE(stored));
	check_window(_metadata, self->fd, self->buf, 1, &stored[3], 1);
	check_window(_metadata, self->fd, self->buf, 3, &stored[1], 3);
	check_window(_metadata, self->fd, self->buf, 4, stored,
		     ARRAY_SIZE(stored));
	check_window(_metadata, self->fd, self->buf, 100, stored,
		     ARRAY_SIZE(stored));
}

TEST_F(win, read_window_empty)
{
	struct cbm_read_window rw;

	memset(self->buf, JUNK, REC_BUF_SIZE);
	ASSERT_EQ(0, read_window(self->fd, self->buf, REC_BUF_SIZE, 0, &rw));
	EXPECT_EQ(0, rw.count);
	EXPECT_EQ(0, rw.needed);
	EXPECT_EQ(0, rw.first_seq);
	EXPECT_EQ(JUNK, self->buf[0]);
	ASSERT_EQ(0, read_window(self->fd, NULL, 0, 0, &rw));
	EXPECT_EQ(0, rw.count);
	ASSERT_EQ(0, read_window(self->fd, NULL, 0, 5, &rw));
	EXPECT_EQ(0, rw.count);
	EXPECT_EQ(0, rw.needed);
}

TEST_F(win, read_window_errors)
{
	struct {
		struct cbm_read_window rw;
		__u64 tail;
	} big;
	struct cbm_read_window rw;
	int ret, wfd;

	append_all(_metadata, self->fd, layout, 2);

	memset(&rw, 0, sizeof(rw));
	rw.size = sizeof(rw);
	rw.flags = 1;
	rw.buf = (uintptr_t)self->buf;
	rw.len = REC_BUF_SIZE;
	ret = ioctl(self->fd, CBM_IOC_READ_WINDOW, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	rw.flags = 0;
	rw.size = offsetof(struct cbm_read_window, first_seq);
	ret = ioctl(self->fd, CBM_IOC_READ_WINDOW, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	memset(&big, 0, sizeof(big));
	big.rw.size = sizeof(big);
	big.rw.buf = (uintptr_t)self->buf;
	big.rw.len = REC_BUF_SIZE;
	big.tail = 1;
	ret = ioctl(self->fd, CBM_IOC_READ_WINDOW, &big);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	big.tail = 0;
	ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_READ_WINDOW, &big));
	EXPECT_EQ(2, big.rw.count);

	ret = read_window(self->fd, bad_ptr(), REC_BUF_SIZE, 0, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	ret = ioctl(self->fd, CBM_IOC_READ_WINDOW, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);

	wfd = open_named(self->name, O_WRONLY);
	ASSERT_LE(0, wfd);
	ret = read_window(wfd, self->buf, REC_BUF_SIZE, 0, &rw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	close(wfd);
}

TEST_F(win, seek_time)
{
	__u64 ts[5];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ts); i++) {
		ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_USER, 0, 4, 0, NULL));
		usleep(2000);
	}
	window_stamps(_metadata, self->fd, self->buf, ts, ARRAY_SIZE(ts));
	for (i = 1; i < ARRAY_SIZE(ts); i++)
		ASSERT_LT(ts[i - 1], ts[i]);

	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[2], 2);
	ASSERT_EQ(REC_HDR + 4, read_record(self->fd, self->rb));
	EXPECT_EQ(2, self->rb->rec.seq);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[2] + 1, 3);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[1] - 1, 1);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, 0, 0);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[4], 4);
	/* after the newest: the end */
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[4] + 1, 5);
	expect_eagain(_metadata, self->fd);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ~0ULL, 5);

	/* only stored messages count */
	ASSERT_EQ(0, set_window(self->fd, 0, 3, 0, 0, 0));
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, 0, 2);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[1], 2);
	expect_seek(_metadata, self->fd, CBM_SEEK_TIME, ts[3], 3);
}

TEST_F(win, seek_last)
{
	struct cbm_reader_info ri;
	unsigned int i;
	int rfd;

	rfd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, rfd);
	for (i = 0; i < 6; i++)
		ASSERT_EQ(8, write_tagged(self->fd, 8, i));
	expect_seek(_metadata, self->fd, CBM_SEEK_LAST, 2, 4);
	EXPECT_EQ(4, read_tag(self->fd, 8));
	expect_seek(_metadata, self->fd, CBM_SEEK_LAST, 0, 6);
	expect_eagain(_metadata, self->fd);
	expect_seek(_metadata, self->fd, CBM_SEEK_LAST, 6, 0);
	expect_seek(_metadata, self->fd, CBM_SEEK_LAST, 100, 0);
	EXPECT_EQ(0, read_tag(self->fd, 8));

	/* seeking drops a pending gap but counts it */
	ASSERT_EQ(0, set_window(self->fd, 0, 2, 0, 0, 0));
	ASSERT_EQ(0, read_rinfo(rfd, &ri));
	EXPECT_EQ(4, ri.gap);
	expect_seek(_metadata, rfd, CBM_SEEK_LAST, 1, 5);
	ASSERT_EQ(0, read_rinfo(rfd, &ri));
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(4, ri.lost);
	EXPECT_EQ(5, read_tag(rfd, 8));
	expect_seek(_metadata, rfd, CBM_SEEK_LAST, 100, 4);
	EXPECT_EQ(4, read_tag(rfd, 8));
	close(rfd);
}

TEST_F(win, seek_seq)
{
	struct cbm_reader_info ri;
	unsigned int i;

	for (i = 0; i < 6; i++)
		ASSERT_EQ(8, write_tagged(self->fd, 8, i));
	expect_seek(_metadata, self->fd, CBM_SEEK_SEQ, 3, 3);
	EXPECT_EQ(3, read_tag(self->fd, 8));
	expect_seek(_metadata, self->fd, CBM_SEEK_SEQ, 6, 6);
	expect_seek(_metadata, self->fd, CBM_SEEK_SEQ, 0, 0);
	EXPECT_EQ(0, read_tag(self->fd, 8));

	/* before the oldest stored: clamped, without a gap */
	ASSERT_EQ(0, set_window(self->fd, 0, 2, 0, 0, 0));
	expect_seek(_metadata, self->fd, CBM_SEEK_SEQ, 1, 4);
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(4, read_tag(self->fd, 8));
}

TEST_F(win, seek_errors)
{
	struct {
		struct cbm_seek s;
		__u64 tail;
	} big;
	struct cbm_seek s;
	__u64 cursor;
	int ret, wfd;

	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_USER, 0, 1, 0, NULL));
	ASSERT_EQ(0, send_len(self->fd, CBM_ROLE_USER, 0, 1, 0, NULL));
	expect_seek(_metadata, self->fd, CBM_SEEK_SEQ, 1, 1);

	ret = seek_to(self->fd, CBM_SEEK_SEQ, 3, &cursor);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = seek_to(self->fd, CBM_SEEK_SEQ, ~0ULL, &cursor);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = seek_to(self->fd, __CBM_SEEK_MAX, 0, &cursor);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = seek_to(self->fd, ~0U, 0, &cursor);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	memset(&s, 0, sizeof(s));
	s.size = offsetof(struct cbm_seek, cursor);
	ret = ioctl(self->fd, CBM_IOC_SEEK, &s);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	memset(&big, 0, sizeof(big));
	big.s.size = sizeof(big);
	big.tail = 1;
	ret = ioctl(self->fd, CBM_IOC_SEEK, &big);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ret = ioctl(self->fd, CBM_IOC_SEEK, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	/* failed seeks left the cursor alone */
	EXPECT_EQ(1, lseek(self->fd, 0, SEEK_CUR));

	wfd = open_named(self->name, O_WRONLY);
	ASSERT_LE(0, wfd);
	ret = seek_to(wfd, CBM_SEEK_LAST, 1, &cursor);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	close(wfd);
}

/*
 * In a lossless conversation the window waits for every lossless reader:
 * a message beyond it goes as soon as they have all read it.
 */
TEST_F(win, lossless_window_waits)
{
	static const struct msg msgs[] = {
		{ 0, CBM_ROLE_USER, 0, 1, "m0" },
		{ 1, CBM_ROLE_USER, 0, 1, "m1" },
		{ 2, CBM_ROLE_USER, 0, 1, "m2" },
		{ 3, CBM_ROLE_USER, 0, 1, "m3" },
		{ 4, CBM_ROLE_USER, 0, 1, "m4" },
		{ 5, CBM_ROLE_USER, 0, 1, "m5" },
	};
	struct cbm_reader_info ri;
	int wfd, lfd, yfd;

	wfd = create_named(self->name2, O_WRONLY | O_NONBLOCK, 0600,
			   CBM_CONV_LOSSLESS, CAPACITY);
	ASSERT_LE(0, wfd);
	lfd = open_named(self->name2, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, set_config(lfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	/* a lossy reader holds nothing back */
	yfd = open_named(self->name2, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, yfd);
	ASSERT_EQ(0, set_config(yfd, CBM_FD_RECORDS | CBM_FD_LOSSY,
				CBM_ROLE_USER));

	ASSERT_EQ(0, set_window(wfd, 0, 2, 0, 0, 0));
	append_all(_metadata, wfd, msgs, 5);
	EXPECT_INFO(wfd, .msgs = 5, .next_seq = 5, .win_msgs = 5,
		    .win_turns = 5, .win_bytes = 10, .win_tokens = 5);

	read_msg(_metadata, lfd, self->rb, &msgs[0]);
	EXPECT_INFO(wfd, .msgs = 4, .first_seq = 1, .next_seq = 5,
		    .evicted = 1, .win_msgs = 4, .win_turns = 4,
		    .win_bytes = 8, .win_tokens = 4);
	read_msg(_metadata, lfd, self->rb, &msgs[1]);
	read_msg(_metadata, lfd, self->rb, &msgs[2]);
	EXPECT_INFO(wfd, .msgs = 2, .first_seq = 3, .next_seq = 5,
		    .evicted = 3, .win_msgs = 2, .win_turns = 2,
		    .win_bytes = 4, .win_tokens = 2);
	/* inside the window: reading it takes nothing */
	read_msg(_metadata, lfd, self->rb, &msgs[3]);
	EXPECT_INFO(wfd, .msgs = 2, .first_seq = 3, .next_seq = 5,
		    .evicted = 3, .win_msgs = 2, .win_turns = 2,
		    .win_bytes = 4, .win_tokens = 2);
	append(_metadata, wfd, &msgs[5]);
	EXPECT_INFO(wfd, .msgs = 2, .first_seq = 4, .next_seq = 6,
		    .evicted = 4, .win_msgs = 2, .win_turns = 2,
		    .win_bytes = 4, .win_tokens = 2);

	/* a smaller window waits for the unread message too */
	ASSERT_EQ(0, set_window(wfd, 0, 1, 0, 0, 0));
	EXPECT_INFO(wfd, .msgs = 2, .first_seq = 4, .next_seq = 6,
		    .evicted = 4, .win_msgs = 2, .win_turns = 2,
		    .win_bytes = 4, .win_tokens = 2);
	read_msg(_metadata, lfd, self->rb, &msgs[4]);
	EXPECT_INFO(wfd, .msgs = 1, .first_seq = 5, .next_seq = 6,
		    .evicted = 5, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 2, .win_tokens = 1);
	read_msg(_metadata, lfd, self->rb, &msgs[5]);
	ASSERT_EQ(0, read_rinfo(lfd, &ri));
	EXPECT_EQ(0, ri.lost);
	EXPECT_EQ(CBM_READER_LOSSLESS, ri.flags);

	read_gap(_metadata, yfd, self->rb, 0, 5);
	read_msg(_metadata, yfd, self->rb, &msgs[5]);
	close(yfd);
	close(lfd);
	close(wfd);
}

TEST_F(win, set_window_errors)
{
	struct {
		struct cbm_window w;
		__u64 tail;
	} big;
	struct cbm_window w;
	int ret, rofd;

	ASSERT_EQ(0, set_window(self->fd, 0, 7, 0, 0, 0));
	ret = set_window(self->fd, CBM_WINDOW_TURNS << 1, 1, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = set_window(self->fd, ~0U, 1, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	memset(&w, 0, sizeof(w));
	w.size = offsetof(struct cbm_window, max_age_ns);
	w.max_msgs = 1;
	ret = ioctl(self->fd, CBM_IOC_SET_WINDOW, &w);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	w.size = 0;
	ret = ioctl(self->fd, CBM_IOC_SET_WINDOW, &w);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	memset(&big, 0, sizeof(big));
	big.w.size = sizeof(big);
	big.w.max_msgs = 1;
	big.tail = 1;
	ret = ioctl(self->fd, CBM_IOC_SET_WINDOW, &big);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ret = ioctl(self->fd, CBM_IOC_SET_WINDOW, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);

	/* validation comes before the file's access mode */
	rofd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, rofd);
	ret = set_window(rofd, 0, 1, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	ret = set_window(rofd, CBM_WINDOW_TURNS << 1, 1, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	close(rofd);

	ASSERT_EQ(0, get_window(self->fd, &w));
	EXPECT_EQ(7, w.max_msgs);

	/* a longer struct with a zero tail is fine */
	big.tail = 0;
	big.w.flags = CBM_WINDOW_TURNS;
	ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_SET_WINDOW, &big));
	ASSERT_EQ(0, get_window(self->fd, &w));
	EXPECT_EQ(CBM_WINDOW_TURNS, w.flags);
	EXPECT_EQ(1, w.max_msgs);
}

TEST_F(win, get_window_roundtrip)
{
	struct {
		struct cbm_window w;
		__u64 tail;
	} big;
	struct cbm_window w;
	int ret, fd;

	ASSERT_EQ(0, get_window(self->fd, &w));
	EXPECT_EQ(sizeof(w), w.size);
	EXPECT_EQ(0, w.flags);
	EXPECT_EQ(0, w.max_msgs);
	EXPECT_EQ(0, w.max_bytes);
	EXPECT_EQ(0, w.max_tokens);
	EXPECT_EQ(0, w.max_age_ns);

	ASSERT_EQ(0, set_window(self->fd, CBM_WINDOW_TURNS, 3, 1000, 500,
				5 * NSEC_PER_SEC));
	ASSERT_EQ(0, get_window(self->fd, &w));
	EXPECT_EQ(sizeof(w), w.size);
	EXPECT_EQ(CBM_WINDOW_TURNS, w.flags);
	EXPECT_EQ(3, w.max_msgs);
	EXPECT_EQ(1000, w.max_bytes);
	EXPECT_EQ(500, w.max_tokens);
	EXPECT_EQ(5 * NSEC_PER_SEC, w.max_age_ns);

	/* a longer struct gets its unknown tail zeroed */
	memset(&big, JUNK, sizeof(big));
	big.w.size = sizeof(big);
	ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_GET_WINDOW, &big));
	EXPECT_EQ(3, big.w.max_msgs);
	EXPECT_EQ(0, big.tail);
	memset(&w, 0, sizeof(w));
	w.size = offsetof(struct cbm_window, max_age_ns);
	ret = ioctl(self->fd, CBM_IOC_GET_WINDOW, &w);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	/* any bound file may look, whatever its access mode */
	fd = open_named(self->name, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_window(fd, &w));
	EXPECT_EQ(3, w.max_msgs);
	close(fd);
	fd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_window(fd, &w));
	EXPECT_EQ(1000, w.max_bytes);
	close(fd);

	/* an unbound file is bound to the default conversation */
	fd = cbm_open(O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_window(fd, &w));
	ret = cbm_bind(fd, self->name, 0, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	close(fd);
}

/* The window root set on this conversation, which a helper checks */
#define OWNER_MAX_MSGS	3

static void unpriv_configure(const char *name)
{
	struct cbm_read_window rw;
	struct cbm_window w;
	char buf[256];
	int fd, rofd;

	fd = open_named(name, O_RDWR);
	CHILD_CHECK(fd >= 0);
	rofd = open_named(name, O_RDONLY);
	CHILD_CHECK(rofd >= 0);
	/* validation first, then the file's access mode, then ownership */
	CHILD_CHECK(set_window(fd, CBM_WINDOW_TURNS << 1, 1, 0, 0, 0) == -1);
	CHILD_CHECK(errno == EINVAL);
	CHILD_CHECK(set_window(rofd, 0, 1, 0, 0, 0) == -1);
	CHILD_CHECK(errno == EBADF);
	CHILD_CHECK(set_window(fd, 0, 1, 0, 0, 0) == -1);
	CHILD_CHECK(errno == EPERM);
	CHILD_CHECK(unpin(fd, 0, 1) == -1);
	CHILD_CHECK(errno == EINVAL);
	CHILD_CHECK(unpin(rofd, 0, 0) == -1);
	CHILD_CHECK(errno == EBADF);
	CHILD_CHECK(unpin(fd, 0, 0) == -1);
	CHILD_CHECK(errno == EPERM);

	/* looking needs no ownership */
	CHILD_CHECK(get_window(rofd, &w) == 0);
	CHILD_CHECK(w.max_msgs == OWNER_MAX_MSGS);
	CHILD_CHECK(read_window(rofd, buf, sizeof(buf), 0, &rw) == 0);
	CHILD_CHECK(rw.count == 2);
	/* appending is writing, which the mode allows */
	CHILD_CHECK(send_tok(fd, CBM_ROLE_USER, 0, "hi", 2, 1, NULL) == 0);
}

TEST_F(win, non_owner_eperm)
{
	struct cbm_window w;
	int fd;

	fd = create_named(self->name2, O_RDWR, 0666, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_window(fd, 0, OWNER_MAX_MSGS, 0, 0, 0));
	ASSERT_EQ(0, send_tok(fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, "s", 1, 0,
			      NULL));
	ASSERT_EQ(0, send_tok(fd, CBM_ROLE_USER, 0, "u", 1, 0, NULL));

	ASSERT_EQ(0, run_unpriv(unpriv_configure, self->name2));
	ASSERT_EQ(0, get_window(fd, &w));
	EXPECT_EQ(OWNER_MAX_MSGS, w.max_msgs);
	EXPECT_INFO(fd, .msgs = 3, .next_seq = 3, .pinned = 1, .win_msgs = 2,
		    .win_turns = 2, .win_bytes = 3, .win_tokens = 1);
	close(fd);
}

static void unpriv_create(const char *name)
{
	int fd = create_named(name, O_WRONLY, 0666, 0, 0);

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(send_tok(fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, "s", 1, 0,
			     NULL) == 0);
	CHILD_CHECK(send_tok(fd, CBM_ROLE_USER, 0, "u1", 2, 0, NULL) == 0);
	CHILD_CHECK(send_tok(fd, CBM_ROLE_USER, 0, "u2", 2, 0, NULL) == 0);
}

/* CAP_SYS_ADMIN configures a conversation someone else owns */
TEST_F(win, cap_sys_admin_configures_foreign)
{
	struct cbm_info info;
	int fd;

	ASSERT_EQ(0, run_unpriv(unpriv_create, self->name2));
	fd = open_named(self->name2, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(UNPRIV_UID, info.uid);

	ASSERT_EQ(0, set_window(fd, 0, 1, 0, 0, 0));
	EXPECT_INFO(fd, .msgs = 2, .next_seq = 3, .evicted = 1, .pinned = 1,
		    .win_msgs = 1, .win_turns = 1, .win_bytes = 2);
	ASSERT_EQ(0, unpin(fd, 0, 0));
	EXPECT_INFO(fd, .msgs = 1, .first_seq = 2, .next_seq = 3,
		    .evicted = 2, .win_msgs = 1, .win_turns = 1,
		    .win_bytes = 2);
	close(fd);
}

/*
 * EPOLLPRI: the configuration changed since this file was bound or last
 * asked CBM_IOC_INFO. Messages, evictions and unpinning are no change.
 */
TEST_F_TIMEOUT(win, epollpri_on_config_change, 20)
{
	struct cbm_info info;
	struct cbm_window w;
	int other, late, i;
	__u64 gen;
	pid_t pid;

	other = open_named(self->name, O_RDWR);
	ASSERT_LE(0, other);
	EXPECT_EQ(0, poll_events(self->fd, POLLPRI, 0));
	EXPECT_EQ(0, poll_events(other, POLLPRI, 0));
	ASSERT_EQ(0, read_info(self->fd, &info));
	gen = info.config_gen;

	ASSERT_EQ(0, set_window(other, 0, 5, 0, 0, 0));
	EXPECT_EQ(POLLPRI, poll_events(self->fd, POLLPRI, 0));
	EXPECT_EQ(POLLPRI, poll_events(other, POLLPRI, 0));
	/* looking at the window is not CBM_IOC_INFO */
	ASSERT_EQ(0, get_window(self->fd, &w));
	EXPECT_EQ(POLLPRI, poll_events(self->fd, POLLPRI, 0));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(gen + 1, info.config_gen);
	EXPECT_EQ(0, poll_events(self->fd, POLLPRI, 0));
	EXPECT_EQ(POLLPRI, poll_events(other, POLLPRI, 0));
	ASSERT_EQ(0, read_info(other, &info));
	EXPECT_EQ(0, poll_events(other, POLLPRI, 0));

	/* a file bound after the change saw it at bind time */
	late = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, late);
	EXPECT_EQ(0, poll_events(late, POLLPRI, 0));

	/* appending past the window, pinning and unpinning change nothing */
	for (i = 0; i < 7; i++)
		ASSERT_EQ(0, send_len(other, CBM_ROLE_USER, 0, 1, 0, NULL));
	ASSERT_EQ(0, send_len(other, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 1, 0,
			      NULL));
	ASSERT_EQ(0, unpin(other, 7, 0));
	EXPECT_EQ(0, poll_events(self->fd, POLLPRI, 0));
	EXPECT_EQ(0, poll_events(late, POLLPRI, 0));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(gen + 1, info.config_gen);

	/* a poller is woken by the change */
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pollfd pfd = { .fd = late, .events = POLLPRI };
		__u64 start = mono_ms();

		CHILD_CHECK(poll(&pfd, 1, WAIT_MS) == 1);
		CHILD_CHECK(pfd.revents == POLLPRI);
		/* poll() looks once more at its timeout: that is no wake-up */
		CHILD_CHECK(mono_ms() - start < WAIT_MS / 2);
		_exit(0);
	}
	ASSERT_EQ(0, wait_sleeping(pid));
	ASSERT_EQ(0, set_window(other, CBM_WINDOW_TURNS, 2, 0, 0, 0));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(POLLPRI, poll_events(late, POLLPRI, 0));
	ASSERT_EQ(0, read_info(late, &info));
	EXPECT_EQ(gen + 2, info.config_gen);
	EXPECT_EQ(0, poll_events(late, POLLPRI, 0));
	close(late);
	close(other);
}

/* Token counts are stored as sent; an older, shorter cbm_send sends none */
TEST_F(win, send_tokens)
{
	struct cbm_send s;
	int ret;

	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(0, send_tok(self->fd, CBM_ROLE_USER, 0, "abc", 3, 42, NULL));
	ASSERT_EQ(REC_HDR + 3, read_record(self->fd, self->rb));
	EXPECT_EQ(42, self->rb->rec.tokens);

	ASSERT_EQ(3, write_str(self->fd, "def"));
	ASSERT_EQ(REC_HDR + 3, read_record(self->fd, self->rb));
	EXPECT_EQ(0, self->rb->rec.tokens);

	/* the version before tokens: the kernel must not look past it */
	memset(&s, 0, sizeof(s));
	s.size = struct_end(struct cbm_send, seq);
	s.role = CBM_ROLE_USER;
	s.len = 3;
	s.data = (uintptr_t)"ghi";
	s.tokens = 7;
	s.__reserved = 1;
	ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_SEND, &s));
	EXPECT_EQ(2, s.seq);
	ASSERT_EQ(REC_HDR + 3, read_record(self->fd, self->rb));
	EXPECT_EQ(0, self->rb->rec.tokens);

	s.size = sizeof(s);
	ret = ioctl(self->fd, CBM_IOC_SEND, &s);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_INFO(self->fd, .msgs = 3, .next_seq = 3, .win_msgs = 3,
		    .win_turns = 3, .win_bytes = 9, .win_tokens = 42);
}

TEST_HARNESS_MAIN
