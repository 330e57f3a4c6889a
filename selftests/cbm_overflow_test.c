// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: what happens when the ring is full. Lossy conversations evict the
 * oldest messages and tell each reader exactly what it lost; lossless ones
 * hold writers back until every lossless reader has read.
 *
 * Every test writes messages of one payload length, so
 * capacity / CBM_RECORD_SPACE(len) of them fit, and message n (counting
 * from 0) gets sequence number n and carries tag n.
 */
#include "kselftest_harness.h"
#include "cbm_util.h"

/* Concurrent writers and the messages each appends in the lossless test */
#define WRITERS		4
#define WRITER_MSGS	300

struct ring {
	char name[CBM_NAME_MAX];
	int wfd;	/* O_WRONLY | O_NONBLOCK: not a reader */
	int rfd;	/* O_RDONLY | O_NONBLOCK: a reader from seq 0 */
	__u64 space;	/* bytes one message occupies */
	__u64 fit;	/* messages the ring holds */
};

static void ring_setup(struct __test_metadata *_metadata, struct ring *r,
		       __u64 capacity, __u32 len, __u32 conv_flags)
{
	conv_name(r->name, "ring");
	r->rfd = -1;
	r->wfd = create_named(r->name, O_WRONLY | O_NONBLOCK, 0600,
			      conv_flags, capacity);
	ASSERT_LE(0, r->wfd);
	r->rfd = open_named(r->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, r->rfd);
	r->space = CBM_RECORD_SPACE(len);
	r->fit = capacity / r->space;
}

static void ring_teardown(struct ring *r)
{
	if (r->rfd >= 0)
		close(r->rfd);
	if (r->wfd >= 0)
		close(r->wfd);
	unlink_name(r->name);
}

static void expect_info(struct __test_metadata *_metadata, int fd, __u64 msgs,
			__u64 first_seq, __u64 evicted, __u64 used)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(msgs, info.msgs);
	EXPECT_EQ(first_seq, info.first_seq);
	EXPECT_EQ(first_seq + msgs, info.next_seq);
	EXPECT_EQ(evicted, info.evicted);
	EXPECT_EQ(used, info.used);
}

FIXTURE(lossy) {
	struct ring r;
};

FIXTURE_VARIANT(lossy) {
	__u64 capacity;
	__u32 len;
};

/* Record sizes that divide the capacity and ones that leave a remainder */
FIXTURE_VARIANT_ADD(lossy, cap_4k) { .capacity = 4096, .len = 16 };
FIXTURE_VARIANT_ADD(lossy, cap_16k_odd) { .capacity = 16384, .len = 100 };
FIXTURE_VARIANT_ADD(lossy, cap_64k_odd) { .capacity = 65536, .len = 1000 };
FIXTURE_VARIANT_ADD(lossy, cap_1m) { .capacity = 1 << 20, .len = 16336 };

FIXTURE_SETUP(lossy)
{
	ring_setup(_metadata, &self->r, variant->capacity, variant->len, 0);
}

FIXTURE_TEARDOWN(lossy)
{
	ring_teardown(&self->r);
}

TEST_F(lossy, fill_then_evict_one)
{
	struct ring *r = &self->r;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	expect_info(_metadata, r->rfd, r->fit, 0, 0, r->fit * r->space);
	write_range(_metadata, r->wfd, variant->len, r->fit, r->fit + 1);
	expect_info(_metadata, r->rfd, r->fit, 1, 1, r->fit * r->space);
}

TEST_F(lossy, evict_more_than_a_ring)
{
	struct ring *r = &self->r;
	__u64 total = 2 * r->fit + 5;

	write_range(_metadata, r->wfd, variant->len, 0, total);
	expect_info(_metadata, r->rfd, r->fit, total - r->fit, total - r->fit,
		    r->fit * r->space);
}

/* Payload format: EPIPE once, then the oldest message still stored */
TEST_F(lossy, payload_reader_epipe_once)
{
	struct pollfd pfd = { .fd = self->r.rfd, .events = POLLIN };
	struct ring *r = &self->r;
	struct cbm_reader_info ri;
	__u64 lost = 3;
	char c;
	ssize_t n;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit + lost);
	expect_rinfo(_metadata, r->rfd, 0, lost, lost, r->fit);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);

	n = read(r->rfd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	expect_rinfo(_metadata, r->rfd, lost, lost, 0, r->fit);
	ASSERT_EQ(0, read_rinfo(r->rfd, &ri));
	EXPECT_EQ(variant->len, ri.next_len);

	read_range(_metadata, r->rfd, variant->len, lost, r->fit + lost);
	expect_rinfo(_metadata, r->rfd, r->fit + lost, lost, 0, 0);
}

/* Record format: a GAP record naming the first lost seq and the count */
TEST_F(lossy, record_reader_gets_gap)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct ring *r = &self->r;
	struct cbm_reader_info ri;
	__u64 lost = r->fit / 2 + 1;
	__u64 total = r->fit + lost + 2;

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(0, set_config(r->rfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	write_range(_metadata, r->wfd, variant->len, 0, 2);
	ASSERT_EQ(REC_HDR + variant->len, read_record(r->rfd, rb));
	ASSERT_EQ(REC_HDR + variant->len, read_record(r->rfd, rb));

	write_range(_metadata, r->wfd, variant->len, 2, total);
	/* the two messages already read were evicted too, but not lost */
	expect_info(_metadata, r->rfd, r->fit, lost + 2, lost + 2,
		    r->fit * r->space);
	expect_rinfo(_metadata, r->rfd, 2, lost, lost, r->fit);
	ASSERT_EQ(0, read_rinfo(r->rfd, &ri));
	EXPECT_EQ(REC_HDR, ri.next_len);

	memset(rb, JUNK, sizeof(*rb));
	ASSERT_EQ(REC_HDR, read_record(r->rfd, rb));
	EXPECT_EQ(REC_HDR, rb->rec.hdr_len);
	EXPECT_EQ(CBM_RECORD_GAP, rb->rec.type);
	EXPECT_EQ(0, rb->rec.len);
	EXPECT_EQ(2, rb->rec.seq);
	EXPECT_EQ(lost, rb->rec.lost);
	EXPECT_EQ(0, rb->rec.ts_ns);
	expect_rinfo(_metadata, r->rfd, lost + 2, lost, 0, r->fit);

	ASSERT_EQ(REC_HDR + variant->len, read_record(r->rfd, rb));
	EXPECT_EQ(CBM_RECORD_MSG, rb->rec.type);
	EXPECT_EQ(lost + 2, rb->rec.seq);
	EXPECT_EQ(0, rb->rec.lost);
	EXPECT_TRUE(payload_ok(rb->bytes + REC_HDR, variant->len, lost + 2));
	free(rb);
}

/* lost counts every loss since bind; gap only the unreported one */
TEST_F(lossy, lost_accumulates)
{
	struct ring *r = &self->r;
	__u64 total = r->fit + 2;
	char c;
	ssize_t n;

	write_range(_metadata, r->wfd, variant->len, 0, total);
	n = read(r->rfd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	EXPECT_EQ(2, read_tag(r->rfd, variant->len));

	/* the cursor is at 3; push the oldest stored message to fit + 3 */
	write_range(_metadata, r->wfd, variant->len, total, 2 * r->fit + 3);
	expect_rinfo(_metadata, r->rfd, 3, r->fit + 2, r->fit, r->fit);
	n = read(r->rfd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	EXPECT_EQ(r->fit + 3, read_tag(r->rfd, variant->len));
	expect_rinfo(_metadata, r->rfd, r->fit + 4, r->fit + 2, 0, r->fit - 1);
}

/* A reader that binds after eviction starts at the oldest, having lost none */
TEST_F(lossy, seek_clamps_without_gap)
{
	struct ring *r = &self->r;
	__u64 first = 4;
	int fd;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit + first);
	fd = open_named(r->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	expect_rinfo(_metadata, fd, first, 0, 0, r->fit);
	EXPECT_EQ(first, read_tag(fd, variant->len));
	EXPECT_EQ(first + 1, read_tag(fd, variant->len));

	EXPECT_EQ(first, lseek(fd, 0, SEEK_SET));
	expect_rinfo(_metadata, fd, first, 0, 0, r->fit);
	EXPECT_EQ(first, read_tag(fd, variant->len));
	EXPECT_EQ(first, lseek(fd, first - 1, SEEK_SET));
	EXPECT_EQ(first, lseek(fd, -(off_t)(r->fit + 10), SEEK_END));
	EXPECT_EQ(r->fit + first - 2, lseek(fd, -2, SEEK_END));
	read_range(_metadata, fd, variant->len, r->fit + first - 2,
		   r->fit + first);
	expect_rinfo(_metadata, fd, r->fit + first, 0, 0, 0);
	close(fd);
}

/* Seeking over a pending gap drops the report, not the count */
TEST_F(lossy, seek_over_pending_gap)
{
	struct ring *r = &self->r;
	__u64 lost = 3;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit + lost);
	EXPECT_EQ(lost, lseek(r->rfd, 0, SEEK_SET));
	expect_rinfo(_metadata, r->rfd, lost, lost, 0, r->fit);
	EXPECT_EQ(lost, read_tag(r->rfd, variant->len));
}

/* The largest message evicts exactly as many messages as it needs room */
TEST_F(lossy, largest_message_evicts_exactly)
{
	struct ring *r = &self->r;
	__u64 max = max_payload(variant->capacity);
	__u64 big = CBM_RECORD_SPACE(max);
	__u64 evict = 0;
	char c;
	ssize_t n;

	ASSERT_NE(0, max);
	while ((r->fit - evict) * r->space + big > variant->capacity)
		evict++;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	ASSERT_EQ(max, write_tagged(r->wfd, max, r->fit));
	expect_info(_metadata, r->rfd, r->fit - evict + 1, evict, evict,
		    (r->fit - evict) * r->space + big);

	n = read(r->rfd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	for (n = evict; (__u64)n < r->fit; n++)
		ASSERT_EQ(n, read_tag(r->rfd, variant->len));
	EXPECT_EQ(r->fit, read_tag(r->rfd, max));
}

TEST_F(lossy, always_writable)
{
	struct pollfd pfd = { .fd = self->r.wfd, .events = POLLOUT };
	struct ring *r = &self->r;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLOUT, pfd.revents);
	write_range(_metadata, r->wfd, variant->len, r->fit, 2 * r->fit);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLOUT, pfd.revents);
}

FIXTURE(lossless) {
	struct ring r;
};

FIXTURE_VARIANT(lossless) {
	__u64 capacity;
	__u32 len;
};

FIXTURE_VARIANT_ADD(lossless, cap_4k) { .capacity = 4096, .len = 16 };
FIXTURE_VARIANT_ADD(lossless, cap_64k_odd) { .capacity = 65536, .len = 1000 };
FIXTURE_VARIANT_ADD(lossless, cap_1m) { .capacity = 1 << 20, .len = 16336 };

FIXTURE_SETUP(lossless)
{
	ring_setup(_metadata, &self->r, variant->capacity, variant->len,
		   CBM_CONV_LOSSLESS);
}

FIXTURE_TEARDOWN(lossless)
{
	ring_teardown(&self->r);
}

TEST_F(lossless, reader_flags)
{
	struct ring *r = &self->r;
	struct cbm_reader_info ri;
	struct cbm_info info;

	ASSERT_EQ(0, read_info(r->rfd, &info));
	EXPECT_EQ(CBM_CONV_LOSSLESS, info.flags);
	EXPECT_EQ(1, info.readers);
	ASSERT_EQ(0, read_rinfo(r->rfd, &ri));
	EXPECT_EQ(CBM_READER_LOSSLESS, ri.flags);
	ASSERT_EQ(0, set_config(r->rfd, CBM_FD_LOSSY, CBM_ROLE_USER));
	ASSERT_EQ(0, read_rinfo(r->rfd, &ri));
	EXPECT_EQ(0, ri.flags);
}

TEST_F(lossless, nonblocking_writer_eagain)
{
	unsigned char *buf = calloc(1, variant->len);
	struct ring *r = &self->r;
	ssize_t n;
	int ret;

	ASSERT_NE(NULL, buf);
	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	n = write_tagged(r->wfd, variant->len, r->fit);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	ret = send_msg(r->wfd, CBM_ROLE_USER, 0, buf, variant->len, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EAGAIN, errno);
	free(buf);
	expect_info(_metadata, r->rfd, r->fit, 0, 0, r->fit * r->space);

	/* reading one message makes room for exactly one */
	EXPECT_EQ(0, read_tag(r->rfd, variant->len));
	write_range(_metadata, r->wfd, variant->len, r->fit, r->fit + 1);
	n = write_tagged(r->wfd, variant->len, r->fit + 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	expect_info(_metadata, r->rfd, r->fit, 1, 1, r->fit * r->space);
	expect_rinfo(_metadata, r->rfd, 1, 0, 0, r->fit);
}

/* EPOLLOUT: a message of max_msg_size would fit without evicting unread */
TEST_F(lossless, pollout_tracks_room)
{
	struct pollfd pfd = { .fd = self->r.wfd, .events = POLLOUT };
	struct ring *r = &self->r;
	__u64 big = CBM_RECORD_SPACE(max_payload(variant->capacity));
	__u64 read_msgs;
	bool room;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	for (read_msgs = 0; read_msgs <= r->fit; read_msgs++) {
		room = variant->capacity - (r->fit - read_msgs) * r->space >= big;
		ASSERT_EQ(room, poll(&pfd, 1, 0)) TH_LOG("read %llu", read_msgs);
		if (room)
			EXPECT_EQ(POLLOUT, pfd.revents);
		if (read_msgs < r->fit)
			ASSERT_EQ(read_msgs, read_tag(r->rfd, variant->len));
	}
}

TEST_F(lossless, too_big_is_emsgsize_not_eagain)
{
	__u64 max = max_payload(variant->capacity);
	struct ring *r = &self->r;
	ssize_t n;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	n = write_tagged(r->wfd, max + 1, 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	n = write_tagged(r->wfd, max, 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
}

/* A blocked writer in another process resumes when the reader reads */
TEST_F_TIMEOUT(lossless, blocked_writer_released_by_read, 20)
{
	struct ring *r = &self->r;
	pid_t pid;
	int status;

	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(r->name, O_WRONLY);
		__u64 i;

		CHILD_CHECK(fd >= 0);
		for (i = 0; i <= r->fit; i++)
			CHILD_CHECK(write_tagged(fd, variant->len, i) ==
				    variant->len);
		_exit(0);
	}
	ASSERT_EQ(0, wait_sleeping(pid));
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG));
	expect_info(_metadata, r->rfd, r->fit, 0, 0, r->fit * r->space);

	EXPECT_EQ(0, read_tag(r->rfd, variant->len));
	EXPECT_EQ(0, wait_child(pid));
	expect_info(_metadata, r->rfd, r->fit, 1, 1, r->fit * r->space);
}

static void on_signal(int sig)
{
	(void)sig;
}

TEST_F_TIMEOUT(lossless, blocked_writer_eintr, 20)
{
	struct ring *r = &self->r;
	ssize_t n;
	pid_t pid;
	int fl;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	fl = fcntl(r->wfd, F_GETFL);
	ASSERT_EQ(0, fcntl(r->wfd, F_SETFL, fl & ~O_NONBLOCK));
	ASSERT_EQ(0, catch_signal(SIGUSR1, 0, on_signal));
	pid = signal_when_sleeping(SIGUSR1);
	ASSERT_LE(0, pid);
	n = write_tagged(r->wfd, variant->len, r->fit);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EINTR, errno);
	EXPECT_EQ(0, wait_child(pid));
	expect_info(_metadata, r->rfd, r->fit, 0, 0, r->fit * r->space);
}

TEST_F_TIMEOUT(lossless, unlink_releases_blocked_writer, 20)
{
	struct ring *r = &self->r;
	pid_t pid;

	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(r->name, O_WRONLY);
		__u64 i;

		CHILD_CHECK(fd >= 0);
		for (i = 0; i < r->fit; i++)
			CHILD_CHECK(write_tagged(fd, variant->len, i) ==
				    variant->len);
		CHILD_CHECK(write_tagged(fd, variant->len, i) == -1);
		CHILD_CHECK(errno == EPIPE);
		_exit(0);
	}
	ASSERT_EQ(0, wait_sleeping(pid));
	ASSERT_EQ(0, unlink_name(r->name));
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(lossless, lossy_reader_does_not_hold)
{
	struct ring *r = &self->r;
	char c;
	ssize_t n;

	ASSERT_EQ(0, set_config(r->rfd, CBM_FD_LOSSY, CBM_ROLE_USER));
	write_range(_metadata, r->wfd, variant->len, 0, 2 * r->fit);
	expect_info(_metadata, r->rfd, r->fit, r->fit, r->fit,
		    r->fit * r->space);
	expect_rinfo(_metadata, r->rfd, 0, r->fit, r->fit, r->fit);
	n = read(r->rfd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
	EXPECT_EQ(r->fit, read_tag(r->rfd, variant->len));
}

/* The setting belongs to the file: it holds when made before binding */
TEST_F(lossless, lossy_set_before_bind)
{
	struct ring *r = &self->r;
	struct cbm_reader_info ri;

	close(r->rfd);
	r->rfd = cbm_open(O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, r->rfd);
	ASSERT_EQ(0, set_config(r->rfd, CBM_FD_LOSSY, CBM_ROLE_USER));
	ASSERT_EQ(0, cbm_bind(r->rfd, r->name, 0, 0, 0, 0));
	ASSERT_EQ(0, read_rinfo(r->rfd, &ri));
	EXPECT_EQ(0, ri.flags);
	write_range(_metadata, r->wfd, variant->len, 0, 2 * r->fit);
	expect_rinfo(_metadata, r->rfd, 0, r->fit, r->fit, r->fit);
}

TEST_F(lossless, write_only_files_are_not_readers)
{
	struct ring *r = &self->r;
	struct cbm_info info;
	int fd;

	close(r->rfd);
	r->rfd = -1;
	fd = open_named(r->name, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(0, info.readers);
	write_range(_metadata, r->wfd, variant->len, 0, 2 * r->fit);
	expect_info(_metadata, fd, r->fit, r->fit, r->fit, r->fit * r->space);
	close(fd);
}

TEST_F(lossless, closing_reader_releases)
{
	struct ring *r = &self->r;
	ssize_t n;

	write_range(_metadata, r->wfd, variant->len, 0, r->fit);
	n = write_tagged(r->wfd, variant->len, r->fit);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	close(r->rfd);
	r->rfd = -1;
	write_range(_metadata, r->wfd, variant->len, r->fit, r->fit + 1);
}

/*
 * Four processes append through a ring far smaller than what they write,
 * while this one reads: nothing is lost, each writer's order is kept and
 * sequence numbers are dense.
 */
TEST_F_TIMEOUT(lossless, concurrent_writers_lose_nothing, 60)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct ring *r = &self->r;
	__u32 next[WRITERS] = { 0 };
	__u32 tag[2];
	pid_t pids[WRITERS];
	int go[2], w, i, fl;

	ASSERT_NE(NULL, rb);
	ASSERT_EQ(0, set_config(r->rfd, CBM_FD_RECORDS, CBM_ROLE_USER));
	fl = fcntl(r->rfd, F_GETFL);
	ASSERT_EQ(0, fcntl(r->rfd, F_SETFL, fl & ~O_NONBLOCK));
	ASSERT_EQ(0, pipe(go));
	for (w = 0; w < WRITERS; w++) {
		pids[w] = fork_child();
		ASSERT_LE(0, pids[w]);
		if (pids[w] == 0) {
			unsigned char *buf = calloc(1, variant->len);
			int fd = open_named(r->name, O_WRONLY);
			char c;

			CHILD_CHECK(buf && fd >= 0);
			close(go[1]);
			CHILD_CHECK(read(go[0], &c, 1) == 0);
			for (i = 0; i < WRITER_MSGS; i++) {
				tag[0] = w;
				tag[1] = i;
				memcpy(buf, tag, sizeof(tag));
				CHILD_CHECK(write(fd, buf, variant->len) ==
					    variant->len);
			}
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);

	for (i = 0; i < WRITERS * WRITER_MSGS; i++) {
		ASSERT_EQ(REC_HDR + variant->len, read_record(r->rfd, rb));
		ASSERT_EQ(CBM_RECORD_MSG, rb->rec.type);
		ASSERT_EQ(i, rb->rec.seq);
		memcpy(tag, rb->bytes + REC_HDR, sizeof(tag));
		ASSERT_GT(WRITERS, tag[0]);
		ASSERT_EQ(next[tag[0]], tag[1]);
		next[tag[0]]++;
	}
	for (w = 0; w < WRITERS; w++)
		EXPECT_EQ(0, wait_child(pids[w]));
	expect_rinfo(_metadata, r->rfd, WRITERS * WRITER_MSGS, 0, 0, 0);
	free(rb);
}

TEST_HARNESS_MAIN
