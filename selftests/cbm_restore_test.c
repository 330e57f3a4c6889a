// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: restoring a saved conversation (CBM_IOC_RESTORE). A snapshot taken
 * with CBM_IOC_READ_WINDOW goes back, with its sequence numbers,
 * timestamps, roles, flags and token counts, into a conversation created
 * for it; only the pid and uid become the restorer's. Holes between the
 * restored numbers are nobody's loss: neither read() readers nor mapped
 * readers report them. Every call is checked whole before anything is
 * restored, and every errno of the uapi header is produced here.
 */
#include "kselftest_harness.h"
#include "cbm_util.h"
#include "cbm_map.h"

/* sizeof(struct cbm_restore_msg) in the first published version */
#define MSG_V0		struct_end(struct cbm_restore_msg, ts_ns)

#define CAPACITY	16384
#define BIG_CAPACITY	262144
#define LEN		40
/* Messages of the multi-call test: more than two full calls */
#define MANY		(2 * CBM_BATCH_MAX + 500)
/* A timestamp well in the past, and an age limit it is beyond */
#define HOUR_NS		(3600ULL * 1000000000ULL)
/* A window snapshot of a whole small conversation fits in this */
#define SNAP_SIZE	(BIG_CAPACITY + 65536)

static unsigned char payloads[MANY][LEN];

/* Fills @m: message @seq at @ts, its payload tagged @seq */
static void rmsg(struct cbm_restore_msg *m, __u32 role, __u32 flags,
		 __u32 tokens, __u64 seq, __u64 ts)
{
	unsigned char *p = payloads[seq % MANY];
	__u32 i;

	for (i = 0; i < LEN; i++)
		p[i] = payload_byte(seq, i);
	memset(m, 0, sizeof(*m));
	m->flags = flags;
	m->role = role;
	m->len = LEN;
	m->tokens = tokens;
	m->data = (uintptr_t)p;
	m->seq = seq;
	m->ts_ns = ts;
}

static int restore_sized(int fd, const void *msgs, __u32 count,
			 __u32 msg_size, __u64 next_seq)
{
	struct cbm_restore r;

	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.msgs = (uintptr_t)msgs;
	r.count = count;
	r.msg_size = msg_size;
	r.next_seq = next_seq;
	return ioctl(fd, CBM_IOC_RESTORE, &r);
}

static int restore(int fd, const struct cbm_restore_msg *msgs, __u32 count,
		   __u64 next_seq)
{
	return restore_sized(fd, msgs, count, sizeof(*msgs), next_seq);
}

/* A new conversation named after @tag, bound to an O_RDWR file */
static int new_conv(struct __test_metadata *_metadata, char *name,
		    const char *tag, __u32 conv_flags, __u64 capacity)
{
	int fd;

	conv_name(name, tag);
	fd = create_named(name, O_RDWR | O_NONBLOCK, 0666, conv_flags,
			  capacity);
	EXPECT_LE(0, fd);
	return fd;
}

/* The ioctl fails with @err and changes nothing */
static void expect_rejected(struct __test_metadata *_metadata, int fd,
			    const void *arg, int err, const char *what)
{
	struct cbm_info before, after;

	ASSERT_EQ(0, read_info(fd, &before));
	EXPECT_EQ(-1, ioctl(fd, CBM_IOC_RESTORE, arg)) TH_LOG("%s", what);
	EXPECT_EQ(err, errno) TH_LOG("%s", what);
	ASSERT_EQ(0, read_info(fd, &after));
	EXPECT_EQ(before.next_seq, after.next_seq) TH_LOG("%s", what);
	EXPECT_EQ(before.msgs, after.msgs) TH_LOG("%s", what);
	EXPECT_EQ(before.used, after.used) TH_LOG("%s", what);
	EXPECT_EQ(before.pinned_bytes, after.pinned_bytes) TH_LOG("%s", what);
}

static struct cbm_restore restore_arg(const void *msgs, __u32 count,
				      __u32 msg_size)
{
	struct cbm_restore r;

	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.msgs = (uintptr_t)msgs;
	r.count = count;
	r.msg_size = msg_size;
	return r;
}

/*
 * Turns a READ_WINDOW snapshot of @count records at @buf into restore
 * descriptors pointing into it; returns the number made.
 */
static unsigned int snap_to_msgs(unsigned char *buf, __u64 count,
				 struct cbm_restore_msg *msgs)
{
	struct cbm_record *rec;
	unsigned int i;

	for (i = 0; i < count; i++) {
		rec = (struct cbm_record *)buf;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].flags = rec->flags;
		msgs[i].role = rec->role;
		msgs[i].len = rec->len;
		msgs[i].tokens = rec->tokens;
		msgs[i].data = (uintptr_t)(buf + rec->hdr_len);
		msgs[i].seq = rec->seq;
		msgs[i].ts_ns = rec->ts_ns;
		buf += CBM_RECORD_SPACE(rec->len);
	}
	return i;
}

/* Messages sent by a helper process, so that their pid is not ours */
static void send_history(const char *name)
{
	static unsigned char big[1000];
	int fd = open_named(name, O_WRONLY);
	__u64 i;

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(!send_tok(fd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, "sys", 3, 7,
			      NULL));
	for (i = 0; i < 10; i++)
		CHILD_CHECK(!send_tok(fd, CBM_ROLE_USER, 0x10000 << (i % 4),
				      big, sizeof(big), i, NULL));
	CHILD_CHECK(!send_tok(fd, CBM_ROLE_TOOL, CBM_MSG_PINNED | 0x80000000,
			      "tool", 4, 2, NULL));
	/* Push everything above out of the 4096-byte ring: holes appear */
	for (i = 0; i < 8; i++)
		CHILD_CHECK(!send_tok(fd, (__u32)(i % __CBM_ROLE_MAX),
				      0x20000, big, 600 + (__u32)i, (__u32)i,
				      NULL));
	close(fd);
}

/*
 * save -> restore -> save gives the same records, holes and all, but for
 * the pid and uid, which are the restorer's.
 */
TEST(round_trip)
{
	static unsigned char a[SNAP_SIZE], b[SNAP_SIZE];
	static struct cbm_restore_msg msgs[64];
	struct cbm_read_window rwa, rwb;
	struct cbm_record *ra, *rb;
	struct cbm_info ia, ib;
	char src[CBM_NAME_MAX], dst[CBM_NAME_MAX];
	unsigned int n, i, holes = 0;
	int sfd, dfd;
	__u64 off;

	sfd = new_conv(_metadata, src, "rt-src", 0, 4096);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, run_as(0, 0, send_history, src));
	ASSERT_EQ(0, read_info(sfd, &ia));
	ASSERT_EQ(0, read_window(sfd, a, sizeof(a), 0, &rwa));
	ASSERT_LT(3, rwa.count);
	ASSERT_GT(64, rwa.count);
	n = snap_to_msgs(a, rwa.count, msgs);
	for (i = 1; i < n; i++)
		holes += msgs[i].seq != msgs[i - 1].seq + 1;
	ASSERT_LE(2, holes);

	dfd = new_conv(_metadata, dst, "rt-dst", 0, 4096);
	ASSERT_LE(0, dfd);
	EXPECT_EQ((int)n, restore(dfd, msgs, n, ia.next_seq));
	ASSERT_EQ(0, read_info(dfd, &ib));
	EXPECT_EQ(ia.next_seq, ib.next_seq);
	EXPECT_EQ(ia.first_seq, ib.first_seq);
	EXPECT_EQ(ia.msgs, ib.msgs);
	EXPECT_EQ(ia.pinned, ib.pinned);
	EXPECT_EQ(ia.pinned_bytes, ib.pinned_bytes);
	EXPECT_EQ(ia.used, ib.used);
	EXPECT_EQ(ia.win_tokens, ib.win_tokens);
	EXPECT_EQ(0, ib.evicted);

	ASSERT_EQ(0, read_window(dfd, b, sizeof(b), 0, &rwb));
	ASSERT_EQ(rwa.count, rwb.count);
	ASSERT_EQ(rwa.needed, rwb.needed);
	EXPECT_EQ(rwa.first_seq, rwb.first_seq);
	for (off = 0; off < rwa.needed; off += CBM_RECORD_SPACE(ra->len)) {
		ra = (struct cbm_record *)(a + off);
		rb = (struct cbm_record *)(b + off);
		EXPECT_NE((__u32)getpid(), ra->pid);
		EXPECT_EQ((__u32)getpid(), rb->pid);
		EXPECT_EQ(geteuid(), rb->uid);
		rb->pid = ra->pid;
		rb->uid = ra->uid;
		ASSERT_EQ(0, memcmp(ra, rb, CBM_RECORD_SPACE(ra->len)))
			TH_LOG("record %llu differs", (unsigned long long)ra->seq);
	}
	/* The numbering goes on where the saved conversation's did */
	ASSERT_EQ(3, write(dfd, "new", 3));
	ASSERT_EQ(0, read_info(dfd, &ib));
	EXPECT_EQ(ia.next_seq + 1, ib.next_seq);
	close(dfd);
	close(sfd);
	EXPECT_EQ(0, unlink_name(dst));
	EXPECT_EQ(0, unlink_name(src));
}

/* More than CBM_BATCH_MAX messages take several calls */
TEST(many_calls)
{
	static struct cbm_restore_msg msgs[MANY];
	static unsigned char buf[BIG_CAPACITY * 2];
	struct cbm_read_window rw;
	struct cbm_record *rec;
	char name[CBM_NAME_MAX];
	__u64 ts = now_ns(), off;
	unsigned int i, done = 0, n;
	struct cbm_info info;
	int fd;

	fd = new_conv(_metadata, name, "many", 0, BIG_CAPACITY);
	ASSERT_LE(0, fd);
	for (i = 0; i < MANY; i++)
		rmsg(&msgs[i], CBM_ROLE_USER + i % 2, 0, i, 1000 + i,
		     ts + i / 3);
	while (done < MANY) {
		n = MANY - done < CBM_BATCH_MAX ? MANY - done : CBM_BATCH_MAX;
		ASSERT_EQ((int)n, restore(fd, msgs + done, n,
					  done + n == MANY ? 1000 + MANY : 0));
		done += n;
	}
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(MANY, info.msgs);
	EXPECT_EQ(1000, info.first_seq);
	EXPECT_EQ(1000 + MANY, info.next_seq);
	ASSERT_EQ(0, read_window(fd, buf, sizeof(buf), 0, &rw));
	ASSERT_EQ(MANY, rw.count);
	for (i = 0, off = 0; i < MANY; i++, off += CBM_RECORD_SPACE(LEN)) {
		rec = (struct cbm_record *)(buf + off);
		ASSERT_EQ(1000 + i, rec->seq);
		ASSERT_EQ(ts + i / 3, rec->ts_ns);
		ASSERT_EQ(i, rec->tokens);
		ASSERT_TRUE(payload_ok(buf + off + REC_HDR, LEN, 1000 + i));
	}
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* next_seq: after the last message, above it, after pinned ones only */
TEST(next_seq)
{
	struct cbm_restore_msg m[3];
	char name[CBM_NAME_MAX];
	struct cbm_info info;
	__u64 ts = now_ns(), seq;
	int fd;

	fd = new_conv(_metadata, name, "next", 0, CAPACITY);
	ASSERT_LE(0, fd);
	/* Alone, on an empty conversation */
	ASSERT_EQ(0, restore(fd, NULL, 0, 3));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(3, info.next_seq);
	EXPECT_EQ(0, info.msgs);
	/* Below the next sequence number, or equal to the last one: EINVAL */
	rmsg(&m[0], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 4, ts);
	rmsg(&m[1], CBM_ROLE_USER, CBM_MSG_PINNED, 0, 6, ts);
	rmsg(&m[2], CBM_ROLE_USER, 0, 0, 7, ts);
	EXPECT_EQ(-1, restore(fd, NULL, 0, 2));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, restore(fd, m, 2, 6));
	EXPECT_EQ(EINVAL, errno);
	/* A hole after an unpinned message cannot be: EINVAL */
	EXPECT_EQ(-1, restore(fd, m, 3, 9));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(3, info.next_seq);
	/* Right after the last one is no hole at all */
	EXPECT_EQ(3, restore(fd, m, 3, 8));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(8, info.next_seq);
	EXPECT_EQ(3, info.msgs);
	EXPECT_EQ(4, info.first_seq);
	ASSERT_EQ(0, send_msg(fd, CBM_ROLE_USER, 0, "x", 1, &seq));
	EXPECT_EQ(8, seq);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));

	/* After pinned messages only, the numbering jumps */
	fd = new_conv(_metadata, name, "next2", 0, CAPACITY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(2, restore(fd, m, 2, 100));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(100, info.next_seq);
	EXPECT_EQ(2, info.msgs);
	EXPECT_EQ(4, info.first_seq);
	/* Restoring goes on from there */
	rmsg(&m[2], CBM_ROLE_USER, 0, 0, 99, ts);
	EXPECT_EQ(-1, restore(fd, &m[2], 1, 0));
	EXPECT_EQ(EINVAL, errno);
	rmsg(&m[2], CBM_ROLE_USER, 0, 0, 100, ts);
	EXPECT_EQ(1, restore(fd, &m[2], 1, 0));
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/*
 * Restored sequence numbers stay below CBM_SEQ_LIMIT, so that appends
 * after them never wrap the numbering and lseek() reaches every one. Just
 * below the limit, restoring and appending work.
 */
TEST(seq_limit)
{
	struct cbm_restore_msg m;
	char name[CBM_NAME_MAX];
	struct cbm_restore arg;
	struct cbm_info info;
	__u64 ts = now_ns(), seq, i;
	union rec_buf rb;
	int fd, rd;

	fd = new_conv(_metadata, name, "limit", 0, CAPACITY);
	ASSERT_LE(0, fd);
	arg = restore_arg(NULL, 0, sizeof(m));
	arg.next_seq = CBM_SEQ_LIMIT;
	expect_rejected(_metadata, fd, &arg, EINVAL, "next_seq at the limit");
	arg.next_seq = UINT64_MAX - 1;
	expect_rejected(_metadata, fd, &arg, EINVAL, "next_seq near 2^64");
	rmsg(&m, CBM_ROLE_USER, 0, 0, CBM_SEQ_LIMIT, ts);
	arg = restore_arg(&m, 1, sizeof(m));
	expect_rejected(_metadata, fd, &arg, EINVAL, "seq at the limit");
	m.seq = UINT64_MAX;
	expect_rejected(_metadata, fd, &arg, EINVAL, "seq U64_MAX");

	/* Just below it: the numbering goes on past it, for appends */
	ASSERT_EQ(0, restore(fd, NULL, 0, CBM_SEQ_LIMIT - 1));
	rd = open_reader(name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rd);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, send_msg(fd, CBM_ROLE_USER, 0, "x", 1, &seq));
		EXPECT_EQ(CBM_SEQ_LIMIT - 1 + i, seq);
	}
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(CBM_SEQ_LIMIT + 2, info.next_seq);
	EXPECT_EQ(CBM_SEQ_LIMIT - 1, info.first_seq);
	EXPECT_EQ(CBM_SEQ_LIMIT, lseek(rd, CBM_SEQ_LIMIT, SEEK_SET));
	ASSERT_LT(0, read_record(rd, &rb));
	EXPECT_EQ(CBM_SEQ_LIMIT, rb.rec.seq);
	EXPECT_EQ(CBM_SEQ_LIMIT + 2, lseek(rd, 0, SEEK_END));
	close(rd);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));

	/* A message just below it; next_seq too must be below it */
	fd = new_conv(_metadata, name, "limit2", 0, CAPACITY);
	ASSERT_LE(0, fd);
	rmsg(&m, CBM_ROLE_USER, 0, 0, CBM_SEQ_LIMIT - 1, ts);
	arg = restore_arg(&m, 1, sizeof(m));
	arg.next_seq = CBM_SEQ_LIMIT;
	expect_rejected(_metadata, fd, &arg, EINVAL, "next_seq at the limit");
	EXPECT_EQ(1, restore(fd, &m, 1, 0));
	ASSERT_EQ(0, send_msg(fd, CBM_ROLE_USER, 0, "x", 1, &seq));
	EXPECT_EQ(CBM_SEQ_LIMIT, seq);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/*
 * Restored timestamps are never 0 nor in the future, where they would precede
 * the stamps of later appends and hold back expiry; and they go on from
 * the newest one the conversation ever stored, even once it is gone.
 */
TEST(timestamps)
{
	struct cbm_restore_msg m[2];
	char name[CBM_NAME_MAX];
	struct cbm_restore arg;
	struct cbm_info info;
	__u64 now = now_ns();
	int fd;

	fd = new_conv(_metadata, name, "ts", 0, CAPACITY);
	ASSERT_LE(0, fd);
	rmsg(&m[0], CBM_ROLE_USER, 0, 0, 0, now - 2 * HOUR_NS);
	rmsg(&m[1], CBM_ROLE_USER, 0, 0, 1, now + HOUR_NS);
	arg = restore_arg(&m[1], 1, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EINVAL, "future timestamp");
	/* 0 is a gap record's timestamp, never a message's */
	m[1].ts_ns = 0;
	expect_rejected(_metadata, fd, &arg, EINVAL, "timestamp 0");
	m[1].ts_ns = now + HOUR_NS;
	arg = restore_arg(m, 2, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EINVAL, "future after a past one");

	/* m[0] expires as it comes: nothing is stored after it */
	ASSERT_EQ(0, set_window(fd, 0, 0, 0, 0, HOUR_NS));
	ASSERT_EQ(1, restore(fd, m, 1, 0));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(0, info.msgs);
	EXPECT_EQ(1, info.expired);
	rmsg(&m[1], CBM_ROLE_USER, 0, 0, 1, now - 3 * HOUR_NS);
	arg = restore_arg(&m[1], 1, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EINVAL, "before a gone message");
	m[1].ts_ns = now - 2 * HOUR_NS;
	EXPECT_EQ(1, restore(fd, &m[1], 1, 0));
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* Readers attached while holes are restored see none of them as lost */
TEST(readers_see_no_holes)
{
	struct cbm_restore_msg m[4];
	char name[CBM_NAME_MAX];
	__u64 ts = now_ns(), expect[] = { 0, 5, 9, 20 };
	struct cbm_map_rec mr;
	union rec_buf rb;
	struct cbm_map map;
	int fd, early, late, i;

	fd = new_conv(_metadata, name, "readers", 0, CAPACITY);
	ASSERT_LE(0, fd);
	early = open_reader(name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, early);
	late = open_reader(name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, late);
	ASSERT_EQ(0, cbm_map_open(&map, fd, CBM_MAP_OLDEST));

	rmsg(&m[0], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 1, 0, ts);
	rmsg(&m[1], CBM_ROLE_USER, CBM_MSG_PINNED, 2, 5, ts + 1);
	rmsg(&m[2], CBM_ROLE_ASSISTANT, CBM_MSG_PINNED, 3, 9, ts + 2);
	ASSERT_EQ(1, restore(fd, &m[0], 1, 0));
	/* early and the map reader catch up before each hole */
	ASSERT_EQ(REC_HDR + LEN, read_record(early, &rb));
	EXPECT_EQ(0, rb.rec.seq);
	ASSERT_EQ(1, cbm_map_peek(&map, &mr));
	EXPECT_EQ(0, mr.hdr.seq);
	ASSERT_EQ(0, cbm_map_release(&map));
	ASSERT_EQ(1, restore(fd, &m[1], 1, 0));
	ASSERT_EQ(1, cbm_map_peek(&map, &mr));
	EXPECT_EQ(CBM_RECORD_MSG, mr.hdr.type);
	EXPECT_EQ(5, mr.hdr.seq);
	EXPECT_EQ(0, mr.hdr.lost);
	ASSERT_EQ(0, cbm_map_release(&map));
	ASSERT_EQ(1, restore(fd, &m[2], 1, 0));
	ASSERT_EQ(1, cbm_map_peek(&map, &mr));
	EXPECT_EQ(9, mr.hdr.seq);
	ASSERT_EQ(0, cbm_map_release(&map));
	ASSERT_EQ(0, restore(fd, NULL, 0, 20));
	ASSERT_EQ(3, write(fd, "new", 3));
	ASSERT_EQ(1, cbm_map_peek(&map, &mr));
	EXPECT_EQ(CBM_RECORD_MSG, mr.hdr.type);
	EXPECT_EQ(20, mr.hdr.seq);
	ASSERT_EQ(0, cbm_map_release(&map));
	EXPECT_EQ(0, map.lost);
	cbm_map_close(&map);

	/* late reads everything at the end, early the rest */
	for (i = 0; i < 4; i++) {
		ASSERT_LT(0, read_record(late, &rb));
		EXPECT_EQ(CBM_RECORD_MSG, rb.rec.type);
		EXPECT_EQ(expect[i], rb.rec.seq);
		EXPECT_EQ(0, rb.rec.lost);
		if (!i)
			continue;
		ASSERT_LT(0, read_record(early, &rb));
		EXPECT_EQ(CBM_RECORD_MSG, rb.rec.type);
		EXPECT_EQ(expect[i], rb.rec.seq);
	}
	expect_eagain(_metadata, late);
	expect_eagain(_metadata, early);
	expect_rinfo(_metadata, late, 21, 0, 0, 0);
	expect_rinfo(_metadata, early, 21, 0, 0, 0);
	close(late);
	close(early);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* CBM_IOC_MAP_INFO with a junk-filled struct */
static void map_info(struct __test_metadata *_metadata, int fd,
		     struct cbm_map_info *mi)
{
	memset(mi, JUNK, sizeof(*mi));
	mi->size = sizeof(*mi);
	ASSERT_EQ(0, ioctl(fd, CBM_IOC_MAP_INFO, mi));
}

/* The next map record is a gap from @seq of @lost messages, then @next */
static void expect_map_gap(struct __test_metadata *_metadata,
			   struct cbm_map *map, __u64 seq, __u64 lost,
			   __u64 next)
{
	struct cbm_map_rec mr;

	ASSERT_EQ(1, cbm_map_peek(map, &mr));
	EXPECT_EQ(CBM_RECORD_GAP, mr.hdr.type);
	EXPECT_EQ(seq, mr.hdr.seq);
	EXPECT_EQ(lost, mr.hdr.lost);
	ASSERT_EQ(1, cbm_map_peek(map, &mr));
	EXPECT_EQ(CBM_RECORD_MSG, mr.hdr.type);
	EXPECT_EQ(next, mr.hdr.seq);
	EXPECT_EQ(0, mr.hdr.lost);
	EXPECT_TRUE(payload_ok(mr.payload, mr.hdr.len, next));
	ASSERT_EQ(0, cbm_map_release(map));
	EXPECT_EQ(0, cbm_map_peek(map, &mr));
}

/*
 * The record right after a hole may leave the ring before a map reader
 * sees it: restoring pinned 10, pinned 20 and 30 pushes each pinned
 * record out of the ring as the numbering jumps past it, under one lock
 * hold. A map reader waiting at 0 then finds only 30 in the ring. Of the
 * 30 numbers before it, 28 never existed (0-9, 11-19, 21-29) and 2 were
 * messages that left the ring: it lost exactly those two, whose pinned
 * copies read() still returns. A reader that starts after a first hole
 * starts from that hole's total; one that starts after the restore, and
 * the map after a resize and an append, lose nothing.
 */
TEST(map_holes_left_ring)
{
	struct cbm_map early, mid, late;
	struct cbm_restore_msg m[3];
	char name[CBM_NAME_MAX];
	__u64 ts = now_ns(), expect[] = { 10, 20, 30 };
	struct cbm_map_info mi;
	struct cbm_map_rec mr;
	union rec_buf rb;
	int fd, rd, i;

	fd = new_conv(_metadata, name, "maphole", 0, CAPACITY);
	ASSERT_LE(0, fd);
	rd = open_reader(name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rd);
	ASSERT_EQ(0, cbm_map_open(&early, fd, CBM_MAP_OLDEST));
	ASSERT_EQ(0, restore(fd, NULL, 0, 5));
	map_info(_metadata, fd, &mi);
	EXPECT_EQ(5, mi.next_seq);
	EXPECT_EQ(5, mi.skipped);
	ASSERT_EQ(0, cbm_map_open(&mid, fd, CBM_MAP_NEWEST));

	rmsg(&m[0], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 10, ts);
	rmsg(&m[1], CBM_ROLE_USER, CBM_MSG_PINNED, 0, 20, ts);
	rmsg(&m[2], CBM_ROLE_ASSISTANT, 0, 0, 30, ts);
	ASSERT_EQ(3, restore(fd, m, 3, 0));
	map_info(_metadata, fd, &mi);
	EXPECT_EQ(31, mi.next_seq);
	EXPECT_EQ(30, mi.first_seq);
	EXPECT_EQ(28, mi.skipped);

	expect_map_gap(_metadata, &early, 0, 2, 30);
	EXPECT_EQ(2, early.lost);
	expect_map_gap(_metadata, &mid, 5, 2, 30);
	EXPECT_EQ(2, mid.lost);
	ASSERT_EQ(0, cbm_map_open(&late, fd, CBM_MAP_OLDEST));
	ASSERT_EQ(1, cbm_map_peek(&late, &mr));
	EXPECT_EQ(CBM_RECORD_MSG, mr.hdr.type);
	EXPECT_EQ(30, mr.hdr.seq);
	ASSERT_EQ(0, cbm_map_release(&late));

	/* The two messages the map readers lost, and no more, for read() */
	for (i = 0; i < 3; i++) {
		ASSERT_LT(0, read_record(rd, &rb));
		EXPECT_EQ(CBM_RECORD_MSG, rb.rec.type);
		EXPECT_EQ(expect[i], rb.rec.seq);
		EXPECT_EQ(0, rb.rec.lost);
	}
	expect_eagain(_metadata, rd);
	expect_rinfo(_metadata, rd, 31, 0, 0, 0);

	/* The total survives a resize, and appended messages carry it */
	ASSERT_EQ(0, resize_to(fd, 2 * CAPACITY, NULL));
	ASSERT_EQ(3, write(fd, "new", 3));
	map_info(_metadata, fd, &mi);
	EXPECT_EQ(28, mi.skipped);
	ASSERT_EQ(1, cbm_map_peek(&early, &mr));
	EXPECT_EQ(CBM_RECORD_MSG, mr.hdr.type);
	EXPECT_EQ(31, mr.hdr.seq);
	ASSERT_EQ(0, cbm_map_release(&early));
	ASSERT_EQ(1, cbm_map_peek(&late, &mr));
	EXPECT_EQ(31, mr.hdr.seq);
	ASSERT_EQ(0, cbm_map_release(&late));
	EXPECT_EQ(2, early.lost);
	EXPECT_EQ(0, late.lost);
	cbm_map_close(&late);
	cbm_map_close(&mid);
	cbm_map_close(&early);
	close(rd);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* A loss a reader was not told of yet is counted when a hole follows */
TEST(pending_loss_counted)
{
	struct cbm_restore_msg m[3];
	char name[CBM_NAME_MAX];
	__u64 ts = now_ns() - 2 * HOUR_NS;
	union rec_buf rb;
	int fd, rd;

	fd = new_conv(_metadata, name, "pending", 0, CAPACITY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_window(fd, 0, 0, 0, 0, HOUR_NS));
	rd = open_reader(name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rd);
	/* 1 expires on arrival, 0 and 2 are pinned */
	rmsg(&m[0], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 0, ts);
	rmsg(&m[1], CBM_ROLE_USER, 0, 0, 1, ts);
	rmsg(&m[2], CBM_ROLE_USER, CBM_MSG_PINNED, 0, 2, ts);
	ASSERT_EQ(3, restore(fd, m, 3, 0));
	expect_rinfo(_metadata, rd, 0, 1, 1, 2);
	/* Nothing unpinned is stored now, so a hole may follow */
	ASSERT_EQ(0, restore(fd, NULL, 0, 10));
	expect_rinfo(_metadata, rd, 0, 1, 0, 2);
	ASSERT_LT(0, read_record(rd, &rb));
	EXPECT_EQ(0, rb.rec.seq);
	ASSERT_LT(0, read_record(rd, &rb));
	EXPECT_EQ(CBM_RECORD_MSG, rb.rec.type);
	EXPECT_EQ(2, rb.rec.seq);
	expect_eagain(_metadata, rd);
	expect_rinfo(_metadata, rd, 10, 1, 0, 0);
	close(rd);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

static void restore_unpriv(const char *name)
{
	struct cbm_restore_msg m;
	int fd = open_named(name, O_RDWR);

	CHILD_CHECK(fd >= 0);
	rmsg(&m, CBM_ROLE_USER, 0, 0, 0, 1);
	CHILD_CHECK(restore(fd, &m, 1, 0) == -1 && errno == EPERM);
	CHILD_CHECK(restore(fd, NULL, 0, 5) == -1 && errno == EPERM);
	close(fd);
}

TEST(errors)
{
	static unsigned char big[2 * CBM_RECORD_SPACE(0) + 65536];
	struct cbm_restore_msg m[2];
	unsigned char wide[2 * sizeof(m[0])];
	char name[CBM_NAME_MAX];
	struct cbm_restore arg;
	struct cbm_info info;
	__u64 ts = now_ns();
	int fd, ro;

	fd = new_conv(_metadata, name, "errors", 0, CAPACITY);
	ASSERT_LE(0, fd);
	rmsg(&m[0], CBM_ROLE_USER, 0, 0, 3, ts);
	rmsg(&m[1], CBM_ROLE_USER, 0, 0, 4, ts);
	arg = restore_arg(m, 2, sizeof(m[0]));

	ro = open_named(name, O_RDONLY);
	ASSERT_LE(0, ro);
	EXPECT_EQ(-1, restore(ro, m, 2, 0));
	EXPECT_EQ(EBADF, errno);
	close(ro);
	ASSERT_EQ(0, run_unpriv(restore_unpriv, name));

	arg.flags = 1;
	expect_rejected(_metadata, fd, &arg, EINVAL, "flags");
	arg = restore_arg(m, 2, MSG_V0 - 8);
	expect_rejected(_metadata, fd, &arg, EINVAL, "msg_size below v0");
	arg = restore_arg(m, 2, sysconf(_SC_PAGESIZE) + 8);
	expect_rejected(_metadata, fd, &arg, E2BIG, "msg_size above a page");
	arg = restore_arg(m, CBM_BATCH_MAX + 1, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, E2BIG, "count");
	memset(wide, 0, sizeof(wide));
	memcpy(wide, &m[0], sizeof(m[0]));
	wide[sizeof(wide) - 1] = 1;
	arg = restore_arg(wide, 1, sizeof(wide));
	expect_rejected(_metadata, fd, &arg, E2BIG, "non-zero unknown tail");
	arg = restore_arg(bad_ptr(), 2, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EFAULT, "msgs pointer");
	EXPECT_EQ(-1, ioctl(fd, CBM_IOC_RESTORE, bad_ptr()));
	EXPECT_EQ(EFAULT, errno);

	arg = restore_arg(m, 2, sizeof(m[0]));
	m[1].flags = 0x2;
	expect_rejected(_metadata, fd, &arg, EINVAL, "message flags");
	m[1].flags = 0;
	m[1].role = __CBM_ROLE_MAX;
	expect_rejected(_metadata, fd, &arg, EINVAL, "role");
	m[1].role = CBM_ROLE_USER;
	m[1].seq = 3;
	expect_rejected(_metadata, fd, &arg, EINVAL, "same sequence number");
	m[1].seq = 2;
	expect_rejected(_metadata, fd, &arg, EINVAL, "decreasing seq");
	m[1].seq = 9;
	expect_rejected(_metadata, fd, &arg, EINVAL, "hole after unpinned");
	m[1].seq = 4;
	m[1].ts_ns = ts - 1;
	expect_rejected(_metadata, fd, &arg, EINVAL, "decreasing ts");
	m[1].ts_ns = ts;
	m[1].data = (uintptr_t)bad_ptr();
	expect_rejected(_metadata, fd, &arg, EFAULT, "data pointer");
	m[1].data = (uintptr_t)big;
	m[1].len = max_payload(CAPACITY) + 1;
	expect_rejected(_metadata, fd, &arg, EMSGSIZE, "too large");
	m[1].data = m[0].data;
	m[1].len = LEN;

	/* Checked against what is stored, in a later call too */
	ASSERT_EQ(1, restore(fd, m, 1, 0));
	expect_rejected(_metadata, fd, &arg, EINVAL, "below next_seq");
	m[1].ts_ns = ts - 1;
	arg = restore_arg(&m[1], 1, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EINVAL, "ts below the newest");
	m[1].ts_ns = ts;
	EXPECT_EQ(1, restore(fd, &m[1], 1, 0));

	/* Once something was written, restoring is over */
	ASSERT_EQ(1, write(fd, "w", 1));
	rmsg(&m[0], CBM_ROLE_USER, 0, 0, 10, ts);
	arg = restore_arg(m, 1, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EBUSY, "after write");
	arg = restore_arg(NULL, 0, sizeof(m[0]));
	arg.next_seq = 20;
	expect_rejected(_metadata, fd, &arg, EBUSY, "next_seq after write");
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(6, info.next_seq);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* EBUSY for SEND and SEND_BATCH as for write() */
TEST(busy_after_send)
{
	struct cbm_batch_msg bm = { .role = CBM_ROLE_USER, .len = 1 };
	struct cbm_restore_msg m;
	char name[CBM_NAME_MAX];
	int fd;

	rmsg(&m, CBM_ROLE_USER, 0, 0, 5, now_ns());
	fd = new_conv(_metadata, name, "busy1", 0, CAPACITY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_msg(fd, CBM_ROLE_USER, 0, "s", 1, NULL));
	EXPECT_EQ(-1, restore(fd, &m, 1, 0));
	EXPECT_EQ(EBUSY, errno);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));

	fd = new_conv(_metadata, name, "busy2", 0, CAPACITY);
	ASSERT_LE(0, fd);
	bm.data = (uintptr_t)"b";
	ASSERT_EQ(1, send_batch(fd, &bm, 1, NULL));
	EXPECT_EQ(-1, restore(fd, &m, 1, 0));
	EXPECT_EQ(EBUSY, errno);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* The pinned budget counts restored pinned messages: ENOSPC */
TEST(pinned_budget)
{
	struct cbm_restore_msg m[2];
	char name[CBM_NAME_MAX];
	long long saved;
	struct cbm_restore arg;
	int fd;

	ASSERT_EQ(0, param_read("max_pinned", &saved));
	ASSERT_EQ(0, param_write("max_pinned", CBM_RECORD_SPACE(LEN)));
	fd = new_conv(_metadata, name, "pins", 0, CAPACITY);
	ASSERT_LE(0, fd);
	rmsg(&m[0], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 0, 1);
	rmsg(&m[1], CBM_ROLE_SYSTEM, CBM_MSG_PINNED, 0, 1, 1);
	arg = restore_arg(m, 2, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, ENOSPC, "two pinned");
	EXPECT_EQ(1, restore(fd, m, 1, 0));
	arg = restore_arg(&m[1], 1, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, ENOSPC, "one more pinned");
	EXPECT_EQ(0, param_write("max_pinned", saved));
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* A restore never waits: EAGAIN first, a short count later */
TEST(lossless_full)
{
	static struct cbm_restore_msg m[200];
	char name[CBM_NAME_MAX];
	struct cbm_info info;
	struct cbm_restore arg;
	unsigned int i, fit = 4096 / CBM_RECORD_SPACE(LEN);
	int fd, rd;

	fd = new_conv(_metadata, name, "lossless", CBM_CONV_LOSSLESS, 4096);
	ASSERT_LE(0, fd);
	/* Only rd holds messages back */
	ASSERT_EQ(0, set_config(fd, CBM_FD_LOSSY, CBM_ROLE_USER));
	rd = open_reader(name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rd);
	for (i = 0; i < fit + 2; i++)
		rmsg(&m[i], CBM_ROLE_USER, 0, 0, i, 1);
	/* Two more than fit: the call stops short */
	EXPECT_EQ((int)fit, restore(fd, m, fit + 2, fit + 2));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(fit, info.next_seq);
	EXPECT_EQ(fit, info.msgs);
	EXPECT_EQ(0, info.evicted);
	arg = restore_arg(&m[fit], 2, sizeof(m[0]));
	expect_rejected(_metadata, fd, &arg, EAGAIN, "full");
	/* Room made by the reader is used */
	ASSERT_EQ(0, read_tag(rd, LEN));
	EXPECT_EQ(1, restore(fd, &m[fit], 2, 0));
	close(rd);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

/* The window applies to restored messages as to appended ones */
TEST(window_evicts)
{
	static struct cbm_restore_msg m[10];
	static unsigned char buf[CAPACITY];
	struct cbm_read_window rw;
	char name[CBM_NAME_MAX];
	struct cbm_info info;
	__u64 old = now_ns() - 2 * HOUR_NS;
	unsigned int i;
	int fd;

	fd = new_conv(_metadata, name, "window", 0, CAPACITY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_window(fd, 0, 3, 0, 0, HOUR_NS));
	/* 0-4 are too old for the window: they expire as they come */
	for (i = 0; i < 10; i++)
		rmsg(&m[i], CBM_ROLE_USER, 0, 0, i,
		     i < 5 ? old + i : now_ns());
	EXPECT_EQ(10, restore(fd, m, 10, 0));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(3, info.msgs);
	EXPECT_EQ(7, info.evicted);
	EXPECT_EQ(5, info.expired);
	EXPECT_EQ(10, info.next_seq);
	ASSERT_EQ(0, read_window(fd, buf, sizeof(buf), 0, &rw));
	EXPECT_EQ(3, rw.count);
	EXPECT_EQ(7, rw.first_seq);
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

TEST_HARNESS_MAIN
