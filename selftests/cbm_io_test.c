// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: message boundaries, records, cursors and seeking, blocking and
 * non-blocking reads, signals, poll/epoll, unlink, concurrent writers.
 */
#include <sys/epoll.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* Payload bytes of the tagged messages most tests exchange */
#define TAG_LEN		24

/* Concurrent writers and the messages each of them appends */
#define WRITERS		4
#define WRITER_MSGS	500

/* Capacity that holds every message of the concurrent-writer test */
#define BIG_CAPACITY	(1 << 20)

FIXTURE(io) {
	char name[CBM_NAME_MAX];
	int wfd;	/* O_WRONLY: not a reader */
	int rfd;	/* O_RDONLY | O_NONBLOCK */
};

FIXTURE_VARIANT(io) {
	__u64 capacity;
};

FIXTURE_VARIANT_ADD(io, cap_4k) { .capacity = 4096 };
FIXTURE_VARIANT_ADD(io, cap_64k) { .capacity = 65536 };
FIXTURE_VARIANT_ADD(io, cap_1m) { .capacity = 1 << 20 };

FIXTURE_SETUP(io)
{
	conv_name(self->name, "io");
	self->rfd = -1;
	self->wfd = create_named(self->name, O_WRONLY, 0600, 0,
				 variant->capacity);
	ASSERT_LE(0, self->wfd);
	self->rfd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->rfd);
}

FIXTURE_TEARDOWN(io)
{
	if (self->rfd >= 0)
		close(self->rfd);
	if (self->wfd >= 0)
		close(self->wfd);
	unlink_name(self->name);
}

TEST_F(io, one_write_one_message)
{
	static const char * const msgs[] = { "abc", "defgh", "ij" };
	struct cbm_reader_info ri;
	struct cbm_info info;
	char buf[64];
	__u64 used = 0;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(msgs); i++) {
		ASSERT_EQ(strlen(msgs[i]), write_str(self->wfd, msgs[i]));
		used += CBM_RECORD_SPACE(strlen(msgs[i]));
	}
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(ARRAY_SIZE(msgs), info.msgs);
	EXPECT_EQ(used, info.used);
	EXPECT_EQ(0, info.first_seq);
	EXPECT_EQ(ARRAY_SIZE(msgs), info.next_seq);

	/* a buffer that could hold all of them gets exactly one each time */
	for (i = 0; i < ARRAY_SIZE(msgs); i++) {
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(strlen(msgs[i]), read(self->rfd, buf, sizeof(buf)));
		EXPECT_STREQ(msgs[i], buf);
		ASSERT_EQ(0, read_rinfo(self->rfd, &ri));
		EXPECT_EQ(i + 1, ri.cursor);
		EXPECT_EQ(ARRAY_SIZE(msgs) - i - 1, ri.unread);
	}
	expect_eagain(_metadata, self->rfd);
}

TEST_F(io, writev_gathers_one_message)
{
	struct iovec iov[3] = {
		{ .iov_base = "ab", .iov_len = 2 },
		{ .iov_base = "", .iov_len = 0 },
		{ .iov_base = "cde", .iov_len = 3 },
	};
	struct cbm_info info;
	char buf[64];

	ASSERT_EQ(5, writev(self->wfd, iov, 3));
	ASSERT_EQ(1, writev(self->wfd, (struct iovec[]){ { "f", 1 } }, 1));
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(2, info.msgs);

	ASSERT_EQ(5, read(self->rfd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "abcde", 5));
	ASSERT_EQ(1, read(self->rfd, buf, sizeof(buf)));
	EXPECT_EQ('f', buf[0]);
	expect_eagain(_metadata, self->rfd);
}

/* An empty message is a message: read() returns 0 for it and moves on */
TEST_F(io, zero_length_message)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct cbm_reader_info ri;
	struct cbm_info info;
	char buf[16];

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(0, write(self->wfd, "", 0));
	ASSERT_EQ(2, write_str(self->wfd, "xy"));
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(2, info.msgs);
	EXPECT_EQ(CBM_RECORD_SPACE(0) + CBM_RECORD_SPACE(2), info.used);

	ASSERT_EQ(0, read(self->rfd, buf, sizeof(buf)));
	ASSERT_EQ(0, read_rinfo(self->rfd, &ri));
	EXPECT_EQ(1, ri.cursor);
	ASSERT_EQ(2, read(self->rfd, buf, sizeof(buf)));

	/* in record format it is a header with len 0 */
	ASSERT_EQ(0, set_config(self->rfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(0, lseek(self->rfd, 0, SEEK_SET));
	ASSERT_EQ(REC_HDR, read_record(self->rfd, rb));
	EXPECT_EQ(CBM_RECORD_MSG, rb->rec.type);
	EXPECT_EQ(0, rb->rec.len);
	EXPECT_EQ(0, rb->rec.seq);
	free(rb);
}

/* A short buffer fails with EMSGSIZE, consumes nothing, says what it needs */
TEST_F(io, read_buffer_too_small)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct cbm_reader_info ri;
	int avail;
	ssize_t n;

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(100, write_tagged(self->wfd, 100, 1));
	ASSERT_EQ(100, write_tagged(self->wfd, 100, 2));

	n = read(self->rfd, rb->bytes, 99);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	avail = -1;
	ASSERT_EQ(0, ioctl(self->rfd, FIONREAD, &avail));
	EXPECT_EQ(100, avail);
	ASSERT_EQ(0, read_rinfo(self->rfd, &ri));
	EXPECT_EQ(100, ri.next_len);
	EXPECT_EQ(0, ri.cursor);
	EXPECT_EQ(2, ri.unread);
	EXPECT_EQ(1, read_tag(self->rfd, 100));

	ASSERT_EQ(0, set_config(self->rfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	n = read(self->rfd, rb->bytes, REC_HDR + 99);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	n = read(self->rfd, rb->bytes, REC_HDR - 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	ASSERT_EQ(0, ioctl(self->rfd, FIONREAD, &avail));
	EXPECT_EQ(REC_HDR + 100, avail);
	ASSERT_EQ(0, read_rinfo(self->rfd, &ri));
	EXPECT_EQ(REC_HDR + 100, ri.next_len);
	ASSERT_EQ(REC_HDR + 100, read(self->rfd, rb->bytes, REC_HDR + 100));
	EXPECT_EQ(1, rb->rec.seq);
	EXPECT_TRUE(payload_ok(rb->bytes + REC_HDR, 100, 2));

	ASSERT_EQ(0, ioctl(self->rfd, FIONREAD, &avail));
	EXPECT_EQ(0, avail);
	ASSERT_EQ(0, read_rinfo(self->rfd, &ri));
	EXPECT_EQ(0, ri.next_len);
	free(rb);
}

TEST_F(io, max_message_size)
{
	__u64 max = max_payload(variant->capacity);
	struct iovec iov[2];
	struct cbm_info info;
	void *big;
	ssize_t n;
	int ret;

	ASSERT_NE(0, max);
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(max, info.max_msg_size);

	big = malloc(max + 1);
	ASSERT_NE(NULL, big);
	memset(big, 'x', max + 1);
	n = write(self->wfd, big, max + 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	iov[0].iov_base = big;
	iov[0].iov_len = max;
	iov[1].iov_base = big;
	iov[1].iov_len = 1;
	n = writev(self->wfd, iov, 2);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	ret = send_msg(self->wfd, CBM_ROLE_USER, 0, big, max + 1, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(0, info.next_seq);

	ASSERT_EQ(max, write_tagged(self->wfd, max, 7));
	EXPECT_EQ(7, read_tag(self->rfd, max));
	free(big);
}

/* Every file has its own cursor: each reader sees every message */
TEST_F(io, several_readers)
{
	struct cbm_info info;
	int fds[4], i, r;

	fds[0] = self->rfd;
	for (r = 1; r < 4; r++) {
		fds[r] = open_named(self->name, O_RDONLY | O_NONBLOCK);
		ASSERT_LE(0, fds[r]);
	}
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(4, info.readers);

	for (i = 0; i < 20; i++)
		ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, i));
	/* interleaved, so one reader's progress cannot move another */
	for (i = 0; i < 20; i++)
		for (r = 0; r < 4; r++)
			EXPECT_EQ(i, read_tag(fds[r], TAG_LEN));
	for (r = 0; r < 4; r++)
		expect_eagain(_metadata, fds[r]);

	for (r = 1; r < 4; r++)
		close(fds[r]);
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(1, info.readers);
}

/* dup() shares the open file description, hence the cursor */
TEST_F(io, dup_shares_cursor)
{
	int fd2;

	fd2 = dup(self->rfd);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 0));
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 1));
	EXPECT_EQ(0, read_tag(self->rfd, TAG_LEN));
	EXPECT_EQ(1, read_tag(fd2, TAG_LEN));
	expect_eagain(_metadata, self->rfd);
	close(fd2);
}

TEST_F(io, new_reader_starts_at_oldest)
{
	struct cbm_reader_info ri;
	int fd, i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, i));
	fd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_rinfo(fd, &ri));
	EXPECT_EQ(0, ri.cursor);
	EXPECT_EQ(3, ri.unread);
	EXPECT_EQ(0, ri.lost);
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(TAG_LEN, ri.next_len);
	EXPECT_EQ(0, ri.flags);
	EXPECT_EQ(0, ri.__reserved);
	EXPECT_EQ(0, read_tag(fd, TAG_LEN));
	close(fd);
}

TEST_F(io, seek_whence)
{
	int i;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, i));

	EXPECT_EQ(3, lseek(self->rfd, 3, SEEK_SET));
	EXPECT_EQ(3, read_tag(self->rfd, TAG_LEN));
	EXPECT_EQ(6, lseek(self->rfd, 2, SEEK_CUR));
	EXPECT_EQ(6, read_tag(self->rfd, TAG_LEN));
	EXPECT_EQ(7, lseek(self->rfd, 0, SEEK_CUR));
	EXPECT_EQ(5, lseek(self->rfd, -2, SEEK_CUR));
	EXPECT_EQ(5, read_tag(self->rfd, TAG_LEN));

	/* -N from the end positions at the last N messages */
	EXPECT_EQ(7, lseek(self->rfd, -3, SEEK_END));
	EXPECT_EQ(7, read_tag(self->rfd, TAG_LEN));
	EXPECT_EQ(8, read_tag(self->rfd, TAG_LEN));
	EXPECT_EQ(9, read_tag(self->rfd, TAG_LEN));
	expect_eagain(_metadata, self->rfd);

	/* the end is where the next message will be */
	EXPECT_EQ(10, lseek(self->rfd, 0, SEEK_END));
	expect_eagain(_metadata, self->rfd);
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 10));
	EXPECT_EQ(10, read_tag(self->rfd, TAG_LEN));

	/* seeking back re-reads: it is a log, not a queue */
	EXPECT_EQ(0, lseek(self->rfd, 0, SEEK_SET));
	EXPECT_EQ(0, read_tag(self->rfd, TAG_LEN));
}

TEST_F(io, seek_clamps_to_oldest)
{
	struct cbm_reader_info ri;
	int i;

	for (i = 0; i < 5; i++)
		ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, i));
	EXPECT_EQ(0, lseek(self->rfd, -100, SEEK_END));
	EXPECT_EQ(0, read_tag(self->rfd, TAG_LEN));
	EXPECT_EQ(0, lseek(self->rfd, -100, SEEK_CUR));
	ASSERT_EQ(0, read_rinfo(self->rfd, &ri));
	EXPECT_EQ(0, ri.gap);
	EXPECT_EQ(0, ri.lost);
	EXPECT_EQ(0, read_tag(self->rfd, TAG_LEN));
}

TEST_F(io, seek_errors)
{
	char buf[64];
	ssize_t n;
	off_t ret;
	int i;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, i));
	ASSERT_EQ(4, lseek(self->rfd, 4, SEEK_SET));

	ret = lseek(self->rfd, 11, SEEK_SET);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = lseek(self->rfd, -1, SEEK_SET);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = lseek(self->rfd, 1, SEEK_END);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = lseek(self->rfd, 7, SEEK_CUR);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = lseek(self->rfd, 0, SEEK_DATA);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = lseek(self->rfd, 0, SEEK_HOLE);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = lseek(self->rfd, 0, 99);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	/* failed seeks left the cursor alone */
	EXPECT_EQ(4, lseek(self->rfd, 0, SEEK_CUR));

	n = pread(self->rfd, buf, sizeof(buf), 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ESPIPE, errno);
	n = pwrite(self->wfd, "x", 1, 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(4, read_tag(self->rfd, TAG_LEN));
}

TEST_F(io, seek_empty)
{
	off_t ret;

	EXPECT_EQ(0, lseek(self->rfd, 0, SEEK_END));
	EXPECT_EQ(0, lseek(self->rfd, 0, SEEK_SET));
	EXPECT_EQ(0, lseek(self->rfd, -1, SEEK_END));
	ret = lseek(self->rfd, 1, SEEK_SET);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(io, record_header)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	__u64 before, after;

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(0, set_config(self->rfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 0));
	before = now_ns();
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 1));
	after = now_ns();

	memset(rb, JUNK, sizeof(*rb));
	ASSERT_EQ(1, lseek(self->rfd, 1, SEEK_SET));
	ASSERT_EQ(REC_HDR + TAG_LEN, read_record(self->rfd, rb));
	EXPECT_EQ(REC_HDR, rb->rec.hdr_len);
	EXPECT_EQ(CBM_RECORD_MSG, rb->rec.type);
	EXPECT_EQ(TAG_LEN, rb->rec.len);
	EXPECT_EQ(1, rb->rec.seq);
	EXPECT_LE(before, rb->rec.ts_ns);
	EXPECT_GE(after, rb->rec.ts_ns);
	EXPECT_EQ(0, rb->rec.lost);
	EXPECT_EQ(getpid(), rb->rec.pid);
	EXPECT_EQ(geteuid(), rb->rec.uid);
	EXPECT_EQ(0, rb->rec.flags);
	EXPECT_EQ(CBM_ROLE_USER, rb->rec.role);
	EXPECT_EQ(0, rb->rec.__reserved[0]);
	EXPECT_EQ(0, rb->rec.__reserved[1]);
	EXPECT_EQ(0, rb->rec.__reserved[2]);
	EXPECT_TRUE(payload_ok(rb->bytes + rb->rec.hdr_len, TAG_LEN, 1));
	free(rb);
}

/* write() uses the file's role; SEND chooses role and application flags */
TEST_F(io, roles_and_flags)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct cbm_fd_config cfg;
	__u64 seq = ~0ULL;

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(0, get_config(self->wfd, &cfg));
	EXPECT_EQ(0, cfg.flags);
	EXPECT_EQ(CBM_ROLE_USER, cfg.role);
	EXPECT_EQ(0, cfg.__reserved);

	ASSERT_EQ(0, set_config(self->wfd, 0, CBM_ROLE_ASSISTANT));
	ASSERT_EQ(0, get_config(self->wfd, &cfg));
	EXPECT_EQ(CBM_ROLE_ASSISTANT, cfg.role);
	ASSERT_EQ(3, write_str(self->wfd, "ans"));
	ASSERT_EQ(0, send_msg(self->wfd, CBM_ROLE_SYSTEM, 0xabcd0000, "sys", 3,
			      &seq));
	EXPECT_EQ(1, seq);
	ASSERT_EQ(0, send_msg(self->wfd, CBM_ROLE_TOOL, CBM_MSG_APP_MASK, "",
			      0, &seq));
	EXPECT_EQ(2, seq);
	ASSERT_EQ(0, send_msg(self->wfd, CBM_ROLE_OTHER, 0, "o", 1, &seq));
	EXPECT_EQ(3, seq);

	ASSERT_EQ(0, set_config(self->rfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(REC_HDR + 3, read_record(self->rfd, rb));
	EXPECT_EQ(CBM_ROLE_ASSISTANT, rb->rec.role);
	EXPECT_EQ(0, rb->rec.flags);
	ASSERT_EQ(REC_HDR + 3, read_record(self->rfd, rb));
	EXPECT_EQ(1, rb->rec.seq);
	EXPECT_EQ(CBM_ROLE_SYSTEM, rb->rec.role);
	EXPECT_EQ(0xabcd0000, rb->rec.flags);
	EXPECT_EQ(0, memcmp(rb->bytes + REC_HDR, "sys", 3));
	ASSERT_EQ(REC_HDR, read_record(self->rfd, rb));
	EXPECT_EQ(CBM_ROLE_TOOL, rb->rec.role);
	EXPECT_EQ(CBM_MSG_APP_MASK, rb->rec.flags);
	ASSERT_EQ(REC_HDR + 1, read_record(self->rfd, rb));
	EXPECT_EQ(CBM_ROLE_OTHER, rb->rec.role);
	EXPECT_EQ(3, rb->rec.seq);
	free(rb);
}

TEST_F(io, send_errors)
{
	struct cbm_info info;
	int ret, rofd;

	ret = send_msg(self->wfd, __CBM_ROLE_MAX, 0, "x", 1, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	/* the lowest kernel flag not defined */
	ret = send_msg(self->wfd, CBM_ROLE_USER, CBM_MSG_PINNED << 1, "x", 1,
		       NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = send_msg(self->wfd, CBM_ROLE_USER, CBM_MSG_KERNEL_MASK, "x", 1,
		       NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	ret = send_msg(self->wfd, CBM_ROLE_USER, 0, NULL, 8, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	ret = send_msg(self->wfd, CBM_ROLE_USER, 0, bad_ptr(), 8, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);

	/* SEND is a write: refused on a file opened read-only */
	rofd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, rofd);
	ret = send_msg(rofd, CBM_ROLE_USER, 0, "x", 1, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	close(rofd);

	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(0, info.next_seq);
}

TEST_F(io, config_errors)
{
	struct cbm_fd_config cfg;
	int ret;

	ret = set_config(self->rfd, 1U << 5, CBM_ROLE_USER);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = set_config(self->rfd, CBM_FD_RECORDS, __CBM_ROLE_MAX);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.flags = CBM_FD_RECORDS;
	cfg.role = CBM_ROLE_USER;
	cfg.__reserved = 1;
	ret = ioctl(self->rfd, CBM_IOC_SET_CONFIG, &cfg);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	ASSERT_EQ(0, get_config(self->rfd, &cfg));
	EXPECT_EQ(0, cfg.flags);
	EXPECT_EQ(CBM_ROLE_USER, cfg.role);
}

/* A write-only file is no reader: reading calls fail, as writes on read-only */
TEST_F(io, wrong_direction_ebadf)
{
	struct cbm_reader_info ri;
	char buf[64];
	int ret, avail;
	off_t off;
	ssize_t n;

	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 0));
	n = read(self->wfd, buf, sizeof(buf));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBADF, errno);
	off = lseek(self->wfd, 0, SEEK_SET);
	EXPECT_EQ(-1, off);
	EXPECT_EQ(EBADF, errno);
	ret = ioctl(self->wfd, FIONREAD, &avail);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	ret = read_rinfo(self->wfd, &ri);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);

	n = write(self->rfd, "x", 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBADF, errno);
}

TEST_F(io, bad_buffers_efault)
{
	struct iovec iov[2] = {
		{ .iov_base = "ok", .iov_len = 2 },
		{ .iov_base = bad_ptr(), .iov_len = 8 },
	};
	struct cbm_info info;
	int ret;
	ssize_t n;

	n = write(self->wfd, bad_ptr(), 8);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EFAULT, errno);
	n = writev(self->wfd, iov, 2);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, read_info(self->rfd, &info));
	EXPECT_EQ(0, info.next_seq);

	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN, 0));
	n = read(self->rfd, bad_ptr(), 64);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EFAULT, errno);
	ret = ioctl(self->rfd, FIONREAD, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
}

/*
 * Tests that need no particular capacity. The capacity holds every message
 * of the concurrent-writer test, so it sees no eviction.
 */
FIXTURE(conv) {
	char name[CBM_NAME_MAX];
	int fd;		/* O_RDWR, blocking */
};

FIXTURE_SETUP(conv)
{
	conv_name(self->name, "conv");
	self->fd = create_named(self->name, O_RDWR, 0600, 0, BIG_CAPACITY);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(conv)
{
	close(self->fd);
	unlink_name(self->name);
}

/*
 * Forks a helper that waits until the test process sleeps in the kernel,
 * then, after @delay_ms, writes @msg to the conversation through its own
 * file, or unlinks it if @msg is NULL.
 */
static pid_t poke_later(const char *name, const char *msg, int delay_ms)
{
	pid_t parent = getpid();
	pid_t pid;
	int fd;

	pid = fork_child();
	if (pid)
		return pid;
	CHILD_CHECK(wait_sleeping(parent) == 0);
	usleep(delay_ms * 1000);
	if (!msg) {
		CHILD_CHECK(unlink_name(name) == 0);
		_exit(0);
	}
	fd = open_named(name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(write_str(fd, msg) == (ssize_t)strlen(msg));
	_exit(0);
}

/*
 * poll() looks at the file once more when its timeout expires, which would
 * hide a missing wake-up: it must return well before the timeout.
 */
static int poll_woken(struct pollfd *pfd)
{
	__u64 start = mono_ms();
	int ret;

	ret = poll(pfd, 1, WAIT_MS);
	if (ret >= 0 && mono_ms() - start > WAIT_MS / 2) {
		errno = ETIMEDOUT;
		return -1;
	}
	return ret;
}

TEST_F_TIMEOUT(conv, blocking_read_woken_by_writer, 15)
{
	char buf[16] = { 0 };
	pid_t pid;

	pid = poke_later(self->name, "wake", 0);
	ASSERT_LE(0, pid);
	EXPECT_EQ(4, read(self->fd, buf, sizeof(buf)));
	EXPECT_STREQ("wake", buf);
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(conv, nonblock_eagain)
{
	char buf[16];
	ssize_t n;
	int fl;

	fl = fcntl(self->fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl | O_NONBLOCK));
	n = read(self->fd, buf, sizeof(buf));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(2, write_str(self->fd, "hi"));
	EXPECT_EQ(2, read(self->fd, buf, sizeof(buf)));
	n = read(self->fd, buf, sizeof(buf));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
}

static volatile sig_atomic_t caught;

static void count_signal(int sig)
{
	(void)sig;
	caught++;
}

TEST_F_TIMEOUT(conv, signal_interrupts_read, 15)
{
	struct cbm_reader_info ri;
	char buf[16];
	ssize_t n;
	pid_t pid;

	caught = 0;
	ASSERT_EQ(0, catch_signal(SIGUSR1, 0, count_signal));
	pid = signal_when_sleeping(SIGUSR1);
	ASSERT_LE(0, pid);
	n = read(self->fd, buf, sizeof(buf));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EINTR, errno);
	EXPECT_EQ(1, caught);
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, read_rinfo(self->fd, &ri));
	EXPECT_EQ(0, ri.cursor);
}

/* Under SA_RESTART the read goes back to sleep after the handler */
TEST_F_TIMEOUT(conv, sa_restart_restarts_read, 15)
{
	char buf[16] = { 0 };
	pid_t sig, wr;

	caught = 0;
	ASSERT_EQ(0, catch_signal(SIGUSR1, SA_RESTART, count_signal));
	sig = signal_when_sleeping(SIGUSR1);
	ASSERT_LE(0, sig);
	wr = poke_later(self->name, "late", 500);
	ASSERT_LE(0, wr);
	EXPECT_EQ(4, read(self->fd, buf, sizeof(buf)));
	EXPECT_STREQ("late", buf);
	EXPECT_EQ(1, caught);
	EXPECT_EQ(0, wait_child(sig));
	EXPECT_EQ(0, wait_child(wr));
}

TEST_F_TIMEOUT(conv, poll_in_woken_by_writer, 15)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	pid_t pid;

	ASSERT_EQ(0, poll(&pfd, 1, 0));
	pid = poke_later(self->name, "ping", 0);
	ASSERT_LE(0, pid);
	ASSERT_EQ(1, poll_woken(&pfd));
	EXPECT_EQ(POLLIN, pfd.revents & (POLLIN | POLLHUP | POLLERR));
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(conv, poll_out_lossy)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN | POLLOUT };

	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLOUT, pfd.revents);
	ASSERT_EQ(2, write_str(self->fd, "hi"));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN | POLLOUT, pfd.revents);
}

TEST_F_TIMEOUT(conv, epoll, 15)
{
	struct epoll_event ev = { .events = EPOLLIN };
	char buf[16];
	int ep, ret;
	pid_t pid;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	pid = poke_later(self->name, "ping", 0);
	ASSERT_LE(0, pid);
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, WAIT_MS));
	EXPECT_EQ(EPOLLIN, ev.events);
	EXPECT_EQ(0, wait_child(pid));

	/* level-triggered: still ready until read */
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(4, read(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	ASSERT_EQ(0, unlink_name(self->name));
	ret = epoll_wait(ep, &ev, 1, 0);
	ASSERT_EQ(1, ret);
	EXPECT_EQ(EPOLLHUP, ev.events & EPOLLHUP);
	close(ep);
}

/* A poller on a read-only file, which waits for readers' events alone */
TEST_F_TIMEOUT(conv, unlink_wakes_poller, 15)
{
	struct pollfd pfd = { .events = POLLIN };
	pid_t pid;

	pfd.fd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, pfd.fd);
	pid = poke_later(self->name, NULL, 0);
	ASSERT_LE(0, pid);
	ASSERT_EQ(1, poll_woken(&pfd));
	EXPECT_EQ(POLLHUP, pfd.revents & (POLLIN | POLLHUP));
	EXPECT_EQ(0, wait_child(pid));
	close(pfd.fd);
}

TEST_F_TIMEOUT(conv, unlink_wakes_blocked_reader, 15)
{
	char buf[16];
	pid_t pid;

	pid = poke_later(self->name, NULL, 0);
	ASSERT_LE(0, pid);
	EXPECT_EQ(0, read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(0, wait_child(pid));
}

/* Unlinked: writes fail, readers drain what is left, then see end of file */
TEST_F(conv, unlinked_drains_then_eof)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct cbm_info info;
	int i, rfd, ret;
	char buf[64];
	ssize_t n;

	rfd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, rfd);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(TAG_LEN, write_tagged(self->fd, TAG_LEN, i));
	ASSERT_EQ(0, unlink_name(self->name));

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(CBM_CONV_UNLINKED, info.flags);
	EXPECT_EQ(3, info.msgs);
	n = write_str(self->fd, "late");
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	ret = send_msg(self->fd, CBM_ROLE_USER, 0, "late", 4, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EPIPE, errno);

	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN | POLLHUP, pfd.revents & (POLLIN | POLLHUP));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(i, read_tag(rfd, TAG_LEN));
		EXPECT_EQ(i, read_tag(self->fd, TAG_LEN));
	}
	/* end of file, even for a non-blocking reader */
	EXPECT_EQ(0, read(rfd, buf, sizeof(buf)));
	EXPECT_EQ(0, read(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLHUP, pfd.revents & (POLLIN | POLLHUP));
	close(rfd);
}

struct tagged {
	__u32 writer;
	__u32 n;
};

/*
 * Four processes append concurrently while this one reads: the log keeps
 * each writer's order, gives dense increasing sequence numbers and loses
 * nothing.
 */
TEST_F_TIMEOUT(conv, concurrent_writers_ordered, 60)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	__u32 next[WRITERS] = { 0 };
	struct tagged t;
	struct cbm_info info;
	pid_t pids[WRITERS];
	int go[2], w, i;

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(0, pipe(go));
	for (w = 0; w < WRITERS; w++) {
		pids[w] = fork_child();
		ASSERT_LE(0, pids[w]);
		if (pids[w] == 0) {
			int fd = open_named(self->name, O_WRONLY);
			char c;

			CHILD_CHECK(fd >= 0);
			close(go[1]);
			/* all writers start together when the pipe closes */
			CHILD_CHECK(read(go[0], &c, 1) == 0);
			for (i = 0; i < WRITER_MSGS; i++) {
				t.writer = w;
				t.n = i;
				CHILD_CHECK(write(fd, &t, sizeof(t)) ==
					    (ssize_t)sizeof(t));
			}
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);

	for (i = 0; i < WRITERS * WRITER_MSGS; i++) {
		ASSERT_EQ(REC_HDR + sizeof(t), read_record(self->fd, rb));
		ASSERT_EQ(i, rb->rec.seq);
		memcpy(&t, rb->bytes + REC_HDR, sizeof(t));
		ASSERT_GT(WRITERS, t.writer);
		ASSERT_EQ(next[t.writer], t.n);
		next[t.writer]++;
	}
	for (w = 0; w < WRITERS; w++)
		EXPECT_EQ(0, wait_child(pids[w]));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(0, info.evicted);
	EXPECT_EQ(WRITERS * WRITER_MSGS, info.next_seq);
	free(rb);
}

/*
 * The default conversation: a non-blocking reader stops at the end with
 * EAGAIN (what `dd iflag=nonblock` relies on) after the whole history.
 */
TEST(default_nonblock_stops_at_end)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct cbm_reader_info ri;
	bool last_is_token = false;
	char token[64];
	size_t len;
	int wfd, rfd, reads;
	ssize_t n;

	ASSERT_NE(NULL, rb);
	snprintf(token, sizeof(token), "nonblock-%d\n", (int)getpid());
	len = strlen(token);
	wfd = cbm_open(O_WRONLY);
	ASSERT_LE(0, wfd);
	ASSERT_EQ(len, write_str(wfd, token));

	rfd = cbm_open(O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, rfd);
	/* bounded: default holds at most default_capacity / 48 messages */
	for (reads = 0; reads < 100000; reads++) {
		n = read(rfd, rb->bytes, sizeof(*rb));
		if (n < 0)
			break;
		last_is_token = (size_t)n == len && !memcmp(rb->bytes, token, len);
	}
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_TRUE(last_is_token);
	ASSERT_EQ(0, read_rinfo(rfd, &ri));
	EXPECT_EQ(0, ri.unread);
	close(rfd);
	close(wfd);
	free(rb);
}

TEST_HARNESS_MAIN
