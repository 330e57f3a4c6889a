// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: changing a ring's capacity while it is in use, by hand with
 * CBM_IOC_RESIZE and by the kernel with CBM_IOC_SET_AUTORESIZE.
 *
 * Growing keeps every message; shrinking evicts exactly the oldest
 * messages that no longer fit, or in a lossless conversation refuses to
 * evict one a lossless reader has not read. Readers keep their cursors and
 * gaps, and read the same bytes as if nothing had happened, also while
 * writers, readers, pollers and a resizer all run at once.
 *
 * Messages written by write_range() carry their sequence number as their
 * tag. The auto-resize tests use short periods and bound the kernel's
 * timing from below only: the debug kernel under TCG is slow.
 */
#include "kselftest_harness.h"
#include "cbm_util.h"

/* Auto-resize period of most tests: short, yet many scheduler ticks */
#define PERIOD_MS	100

/* The period of settings that must not act during a test */
#define IDLE_PERIOD_MS	3600000

/* How long something the kernel does on its own may take */
#define EVENTUALLY_MS	3000

/* How often a test that waits for the kernel looks again */
#define STEP_MS		10

/* Payload of the tests that count messages per ring: 1056 bytes each */
#define BIG_LEN		1000

/* Limits of the auto-resize settings, as the header gives them */
#define PERIOD_MS_MIN	10
#define PERIOD_MS_MAX	3600000

/* The max_capacity module parameter, 0 if it cannot be read */
static __u64 max_capacity_param(void)
{
	long long val;

	return param_read("max_capacity", &val) ? 0 : val;
}

static void expect_ar(struct __test_metadata *_metadata, int fd,
		      const struct cbm_autoresize *want)
{
	struct cbm_autoresize got;

	ASSERT_EQ(0, get_ar(fd, &got));
	EXPECT_EQ(sizeof(got), got.size);
	EXPECT_EQ(want->flags, got.flags);
	EXPECT_EQ(want->min_capacity, got.min_capacity);
	EXPECT_EQ(want->max_capacity, got.max_capacity);
	EXPECT_EQ(want->high_pct, got.high_pct);
	EXPECT_EQ(want->low_pct, got.low_pct);
	EXPECT_EQ(want->period_ms, got.period_ms);
	EXPECT_EQ(0, got.__reserved);
}

static void expect_epipe(struct __test_metadata *_metadata, int fd)
{
	char c;
	ssize_t n;

	n = read(fd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EPIPE, errno);
}

/* Reads the record-format message @seq of @len bytes with tag @seq */
static void expect_msg(struct __test_metadata *_metadata, int fd, __u32 len,
		       __u64 seq)
{
	static union rec_buf rb;

	memset(&rb.rec, JUNK, sizeof(rb.rec));
	ASSERT_EQ(REC_HDR + len, read_record(fd, &rb)) TH_LOG("seq %llu", seq);
	EXPECT_EQ(CBM_RECORD_MSG, rb.rec.type);
	EXPECT_EQ(seq, rb.rec.seq);
	EXPECT_EQ(0, rb.rec.lost);
	EXPECT_TRUE(payload_ok(rb.bytes + REC_HDR, len, seq));
}

static void expect_gap(struct __test_metadata *_metadata, int fd, __u64 seq,
		       __u64 lost)
{
	static union rec_buf rb;

	memset(&rb.rec, JUNK, sizeof(rb.rec));
	ASSERT_EQ(REC_HDR, read_record(fd, &rb));
	EXPECT_EQ(CBM_RECORD_GAP, rb.rec.type);
	EXPECT_EQ(seq, rb.rec.seq);
	EXPECT_EQ(lost, rb.rec.lost);
	EXPECT_EQ(0, rb.rec.ts_ns);
}

/* The ring as CBM_IOC_INFO must describe it */
static void expect_ring(struct __test_metadata *_metadata, int fd,
			__u64 capacity, __u64 first_seq, __u64 msgs,
			__u64 evicted, __u64 used)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(capacity, info.capacity);
	EXPECT_EQ(first_seq, info.first_seq);
	EXPECT_EQ(msgs, info.msgs);
	EXPECT_EQ(first_seq + msgs, info.next_seq);
	EXPECT_EQ(evicted, info.evicted);
	EXPECT_EQ(used, info.used);
	EXPECT_EQ(max_payload(capacity), info.max_msg_size);
}

/* Capacity, resize count and configuration generation: what a resize moves */
struct shape {
	__u64 capacity;
	__u64 resizes;
	__u64 config_gen;
};

static int read_shape(int fd, struct shape *s)
{
	struct cbm_info info;

	if (read_info(fd, &info))
		return -1;
	s->capacity = info.capacity;
	s->resizes = info.resizes;
	s->config_gen = info.config_gen;
	return 0;
}

/* A refused change leaves all three as they were */
static void expect_shape(struct __test_metadata *_metadata, int fd,
			 const struct shape *want)
{
	struct shape got;

	ASSERT_EQ(0, read_shape(fd, &got));
	EXPECT_EQ(want->capacity, got.capacity);
	EXPECT_EQ(want->resizes, got.resizes);
	EXPECT_EQ(want->config_gen, got.config_gen);
}

/* What a new record-format reader reads: every stored message, in order */
struct snap {
	unsigned char *buf;
	size_t len;
	__u64 count;
};

static int take_snapshot(const char *name, struct snap *s)
{
	struct cbm_record rec;
	struct cbm_info info;
	size_t size;
	ssize_t n;
	int fd, err = 0;

	fd = open_reader(name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	if (fd < 0)
		return -1;
	s->buf = NULL;
	s->len = 0;
	s->count = 0;
	if (read_info(fd, &info)) {
		err = errno;
		goto out;
	}
	/* a record read takes less than its place in the ring */
	size = info.used + REC_BUF_SIZE;
	s->buf = malloc(size);
	if (!s->buf) {
		err = ENOMEM;
		goto out;
	}
	for (;;) {
		n = read(fd, s->buf + s->len, size - s->len);
		if (n < 0) {
			if (errno != EAGAIN)
				err = errno;
			break;
		}
		if ((size_t)n < REC_HDR) {
			err = EBADMSG;
			break;
		}
		/* records are packed, so the header may be unaligned */
		memcpy(&rec, s->buf + s->len, sizeof(rec));
		if (rec.type != CBM_RECORD_MSG ||
		    (size_t)n != REC_HDR + rec.len) {
			err = EBADMSG;
			break;
		}
		s->len += n;
		s->count++;
	}
out:
	close(fd);
	errno = err;
	return err ? -1 : 0;
}

/*
 * Resizing by hand, over ring sizes whose records divide the capacity and
 * ones that leave a remainder. fit messages fill variant->capacity, fit4
 * four times that capacity.
 */
FIXTURE(resize) {
	char name[CBM_NAME_MAX];
	int wfd;	/* O_WRONLY | O_NONBLOCK: not a reader */
	__u64 space;	/* bytes one message occupies */
	__u64 fit;
	__u64 fit4;
};

FIXTURE_VARIANT(resize) {
	__u64 capacity;
	__u32 len;
};

FIXTURE_VARIANT_ADD(resize, cap_4k) { .capacity = 4096, .len = 16 };
FIXTURE_VARIANT_ADD(resize, cap_16k_odd) { .capacity = 16384, .len = 100 };
FIXTURE_VARIANT_ADD(resize, cap_64k_odd) { .capacity = 65536, .len = 1000 };

FIXTURE_SETUP(resize)
{
	conv_name(self->name, "resize");
	self->wfd = -1;
	self->space = CBM_RECORD_SPACE(variant->len);
	self->fit = variant->capacity / self->space;
	self->fit4 = 4 * variant->capacity / self->space;
}

FIXTURE_TEARDOWN(resize)
{
	if (self->wfd >= 0)
		close(self->wfd);
	unlink_name(self->name);
}

static void resize_create(struct __test_metadata *_metadata,
			  FIXTURE_DATA(resize) *self, __u64 capacity,
			  __u32 conv_flags)
{
	self->wfd = create_named(self->name, O_WRONLY | O_NONBLOCK, 0600,
				 conv_flags, capacity);
	ASSERT_LE(0, self->wfd);
}

/*
 * Growing a ring whose data wraps keeps every byte, every cursor and every
 * pending gap; afterwards the ring holds four times as much.
 */
TEST_F(resize, grow_keeps_messages)
{
	__u64 cap = variant->capacity, len = variant->len, fit = self->fit;
	__u64 lost = 3, total = fit + lost, half = fit / 2, seq;
	struct cbm_resize rs;
	struct cbm_info before, info;
	struct snap s0, s1;
	int slow, mid;

	resize_create(_metadata, self, cap, 0);
	slow = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, slow);
	write_range(_metadata, self->wfd, len, 0, total);
	mid = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, mid);
	for (seq = lost; seq < lost + half; seq++)
		expect_msg(_metadata, mid, len, seq);
	ASSERT_EQ(0, take_snapshot(self->name, &s0));
	ASSERT_EQ(fit, s0.count);
	ASSERT_EQ(0, read_info(self->wfd, &before));
	EXPECT_EQ(0, before.resizes);

	ASSERT_EQ(0, resize_to(self->wfd, 4 * cap, &rs));
	EXPECT_EQ(4 * cap, rs.capacity);
	EXPECT_EQ(0, rs.evicted);
	expect_ring(_metadata, self->wfd, 4 * cap, lost, fit, lost,
		    fit * self->space);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(1, info.resizes);
	EXPECT_EQ(before.config_gen + 1, info.config_gen);

	ASSERT_EQ(0, take_snapshot(self->name, &s1));
	ASSERT_EQ(s0.len, s1.len);
	EXPECT_EQ(0, memcmp(s0.buf, s1.buf, s0.len));
	free(s0.buf);
	free(s1.buf);
	expect_rinfo(_metadata, slow, 0, lost, lost, fit);
	expect_rinfo(_metadata, mid, lost + half, 0, 0, fit - half);

	/* the room is there: three more rings' worth evict nothing */
	write_range(_metadata, self->wfd, len, total, total + 3 * fit);
	expect_ring(_metadata, self->wfd, 4 * cap, lost, 4 * fit, lost,
		    4 * fit * self->space);

	expect_epipe(_metadata, slow);
	read_range(_metadata, slow, len, lost, total + 3 * fit);
	expect_rinfo(_metadata, slow, total + 3 * fit, lost, 0, 0);
	for (seq = lost + half; seq < total + 3 * fit; seq++)
		expect_msg(_metadata, mid, len, seq);
	expect_rinfo(_metadata, mid, total + 3 * fit, 0, 0, 0);
	close(slow);
	close(mid);
}

/*
 * The requested size is rounded as at creation and written back; one that
 * rounds to the current size changes nothing.
 */
TEST_F(resize, capacity_rounding)
{
	__u64 cap = variant->capacity;
	struct cbm_resize rs;
	struct cbm_info info;
	struct shape s;
	long long def;
	struct {
		__u64 request;
		__u64 expect;	/* 0: the default_capacity parameter */
	} steps[] = {
		{ 2 * cap + 1, 4 * cap },
		{ 4 * cap + 1, 8 * cap },
		{ 2 * cap - 1, 2 * cap },
		{ 1, MIN_CAPACITY },
		{ 0, 0 },
	};
	unsigned int i;
	int rfd;

	ASSERT_EQ(0, param_read("default_capacity", &def));
	ASSERT_NE(MIN_CAPACITY, def);
	resize_create(_metadata, self, cap, 0);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	write_range(_metadata, self->wfd, variant->len, 0, 2);
	ASSERT_EQ(0, read_shape(self->wfd, &s));
	for (i = 0; i < ARRAY_SIZE(steps); i++) {
		__u64 expect = steps[i].expect ? steps[i].expect : (__u64)def;

		ASSERT_EQ(0, resize_to(self->wfd, steps[i].request, &rs))
			TH_LOG("request %llu", steps[i].request);
		EXPECT_EQ(expect, rs.capacity);
		EXPECT_EQ(0, rs.evicted);
		s.capacity = expect;
		s.resizes++;
		s.config_gen++;
		expect_shape(_metadata, self->wfd, &s);
	}

	/* a request that rounds to the current size is no change */
	ASSERT_EQ(0, read_info(rfd, &info));
	ASSERT_EQ(0, resize_to(self->wfd, def - 1, &rs));
	EXPECT_EQ(def, rs.capacity);
	EXPECT_EQ(0, rs.evicted);
	expect_shape(_metadata, self->wfd, &s);
	EXPECT_EQ(0, poll_events(rfd, POLLPRI, 0));
	expect_ring(_metadata, self->wfd, def, 0, 2, 0, 2 * self->space);
	read_range(_metadata, rfd, variant->len, 0, 2);
	close(rfd);
}

/*
 * Shrinking a lossy ring evicts exactly the oldest messages that no longer
 * fit; each reader is told of exactly the ones it had not read.
 */
TEST_F(resize, shrink_lossy_evicts_oldest)
{
	__u64 cap = variant->capacity, len = variant->len, fit = self->fit;
	__u64 extra = 3, total = self->fit4 + extra;
	__u64 gone = self->fit4 - fit;		/* evicted by the shrink */
	__u64 first = total - fit;		/* oldest kept */
	__u64 k1 = gone / 2, seq;
	struct cbm_resize rs;
	struct cbm_info info;
	struct snap s0, s1;
	int r0, r1, r2;

	resize_create(_metadata, self, 4 * cap, 0);
	r0 = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, r0);
	r1 = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, r1);
	write_range(_metadata, self->wfd, len, 0, total);
	/* r1 read part of what the shrink evicts, r2 past it */
	expect_gap(_metadata, r1, 0, extra);
	for (seq = extra; seq < extra + k1; seq++)
		expect_msg(_metadata, r1, len, seq);
	r2 = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, r2);
	for (seq = extra; seq < first + 2; seq++)
		expect_msg(_metadata, r2, len, seq);
	ASSERT_EQ(0, take_snapshot(self->name, &s0));
	ASSERT_EQ(self->fit4, s0.count);

	ASSERT_EQ(0, resize_to(self->wfd, cap, &rs));
	EXPECT_EQ(cap, rs.capacity);
	EXPECT_EQ(gone, rs.evicted);
	expect_ring(_metadata, self->wfd, cap, first, fit, extra + gone,
		    fit * self->space);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(1, info.resizes);

	/* what is left is the newest messages, byte for byte */
	ASSERT_EQ(0, take_snapshot(self->name, &s1));
	ASSERT_EQ(fit, s1.count);
	ASSERT_LE(s1.len, s0.len);
	EXPECT_EQ(0, memcmp(s0.buf + s0.len - s1.len, s1.buf, s1.len));
	free(s0.buf);
	free(s1.buf);

	expect_rinfo(_metadata, r0, 0, first, first, fit);
	expect_epipe(_metadata, r0);
	read_range(_metadata, r0, len, first, total);

	expect_rinfo(_metadata, r1, extra + k1, first - k1, gone - k1, fit);
	expect_gap(_metadata, r1, extra + k1, gone - k1);
	for (seq = first; seq < total; seq++)
		expect_msg(_metadata, r1, len, seq);
	expect_rinfo(_metadata, r1, total, first - k1, 0, 0);

	expect_rinfo(_metadata, r2, first + 2, 0, 0, fit - 2);
	for (seq = first + 2; seq < total; seq++)
		expect_msg(_metadata, r2, len, seq);

	/* the smaller ring is full: the next message evicts one */
	write_range(_metadata, self->wfd, len, total, total + 1);
	expect_ring(_metadata, self->wfd, cap, first + 1, fit, extra + gone + 1,
		    fit * self->space);
	close(r0);
	close(r1);
	close(r2);
}

/*
 * A lossless reader holds back a shrink exactly as it holds back a writer:
 * EBUSY, changing nothing, until it has read every message the shrink
 * evicts. A reader that opted out gets a gap instead.
 */
TEST_F(resize, shrink_lossless_ebusy)
{
	__u64 cap = variant->capacity, len = variant->len, fit = self->fit;
	__u64 pre = self->fit4 / 2, total = pre + self->fit4;
	__u64 need = self->fit4 - fit;
	struct cbm_resize rs;
	struct shape s;
	int rfd, lossy, ret;

	resize_create(_metadata, self, 4 * cap, CBM_CONV_LOSSLESS);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	lossy = open_reader(self->name, O_RDONLY | O_NONBLOCK,
			    CBM_FD_RECORDS | CBM_FD_LOSSY);
	ASSERT_LE(0, lossy);
	/* read messages make room, so the data wraps */
	write_range(_metadata, self->wfd, len, 0, pre);
	for (ret = 0; (__u64)ret < pre; ret++)
		ASSERT_EQ(ret, read_tag(rfd, len));
	write_range(_metadata, self->wfd, len, pre, total);
	expect_ring(_metadata, self->wfd, 4 * cap, pre, self->fit4, pre,
		    self->fit4 * self->space);
	ASSERT_EQ(0, read_shape(self->wfd, &s));
	EXPECT_EQ(0, s.resizes);

	ret = resize_to(self->wfd, cap, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	expect_shape(_metadata, self->wfd, &s);
	expect_ring(_metadata, self->wfd, 4 * cap, pre, self->fit4, pre,
		    self->fit4 * self->space);
	EXPECT_EQ(0, poll_events(rfd, POLLPRI, 0));

	/* one message short of enough */
	for (ret = 0; (__u64)ret < need - 1; ret++)
		ASSERT_EQ(pre + ret, read_tag(rfd, len));
	ret = resize_to(self->wfd, cap, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	expect_shape(_metadata, self->wfd, &s);

	ASSERT_EQ(pre + need - 1, read_tag(rfd, len));
	ASSERT_EQ(0, resize_to(self->wfd, cap, &rs));
	EXPECT_EQ(cap, rs.capacity);
	EXPECT_EQ(need, rs.evicted);
	expect_ring(_metadata, self->wfd, cap, pre + need, fit, pre + need,
		    fit * self->space);
	s.capacity = cap;
	s.resizes++;
	s.config_gen++;
	expect_shape(_metadata, self->wfd, &s);

	expect_rinfo(_metadata, rfd, pre + need, 0, 0, fit);
	read_range(_metadata, rfd, len, pre + need, total);
	expect_rinfo(_metadata, lossy, 0, pre + need, pre + need, fit);
	expect_gap(_metadata, lossy, 0, pre + need);
	expect_msg(_metadata, lossy, len, pre + need);
	close(rfd);
	close(lossy);
}

/*
 * Growing a full lossless ring makes room: a blocked writer completes and
 * a poller waiting for EPOLLOUT wakes, without anyone reading.
 */
TEST_F_TIMEOUT(resize, lossless_grow_releases_writer, 20)
{
	__u64 cap = variant->capacity, len = variant->len, fit = self->fit;
	__u64 used = fit * self->space, big;
	struct cbm_resize rs;
	pid_t writer, poller;
	int rfd, status;
	ssize_t n;

	resize_create(_metadata, self, cap, CBM_CONV_LOSSLESS);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	write_range(_metadata, self->wfd, len, 0, fit);
	n = write_tagged(self->wfd, len, fit);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, poll_events(self->wfd, POLLOUT, 0));

	/* big enough that the largest message still fits after the writer's */
	big = 2 * cap;
	while (big - used - self->space < CBM_RECORD_SPACE(max_payload(big)))
		big *= 2;

	writer = fork_child();
	ASSERT_LE(0, writer);
	if (writer == 0) {
		int fd = open_named(self->name, O_WRONLY);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(write_tagged(fd, len, fit) == (ssize_t)len);
		_exit(0);
	}
	poller = fork_child();
	ASSERT_LE(0, poller);
	if (poller == 0) {
		int fd = open_named(self->name, O_WRONLY);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(poll_events(fd, POLLOUT, WAIT_MS) == POLLOUT);
		_exit(0);
	}
	ASSERT_EQ(0, wait_sleeping(writer));
	ASSERT_EQ(0, wait_sleeping(poller));
	EXPECT_EQ(0, waitpid(writer, &status, WNOHANG));

	ASSERT_EQ(0, resize_to(self->wfd, big, &rs));
	EXPECT_EQ(big, rs.capacity);
	EXPECT_EQ(0, rs.evicted);
	EXPECT_EQ(0, wait_child(writer));
	EXPECT_EQ(0, wait_child(poller));
	expect_ring(_metadata, self->wfd, big, 0, fit + 1, 0,
		    (fit + 1) * self->space);
	read_range(_metadata, rfd, len, 0, fit + 1);
	close(rfd);
}

/*
 * A conversation anyone may open (mode 0666, owned by root), for the tests
 * of errors and EPOLLPRI. other names one an unprivileged user creates.
 */
#define CONV_CAP	65536

FIXTURE(conv) {
	char name[CBM_NAME_MAX];
	char other[CBM_NAME_MAX];
	int wfd;	/* O_WRONLY | O_NONBLOCK: not a reader */
};

FIXTURE_SETUP(conv)
{
	conv_name(self->name, "conv");
	conv_name(self->other, "other");
	self->wfd = create_named(self->name, O_WRONLY | O_NONBLOCK, 0666, 0,
				 CONV_CAP);
	ASSERT_LE(0, self->wfd);
}

FIXTURE_TEARDOWN(conv)
{
	if (self->wfd >= 0)
		close(self->wfd);
	unlink_name(self->name);
	unlink_name(self->other);
}

/* Down to a ring too small for any stored message: all of them go */
TEST_F(conv, shrink_below_one_message)
{
	const __u32 len = 5000;
	__u64 space = CBM_RECORD_SPACE(len), small = MIN_CAPACITY;
	struct cbm_resize rs;
	struct cbm_info info;
	ssize_t n;
	int rfd;
	char c;

	ASSERT_LT(2 * MIN_CAPACITY, 2 * space);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rfd);
	write_range(_metadata, self->wfd, len, 0, 5);

	/* 8 KiB holds one of them */
	ASSERT_EQ(0, resize_to(self->wfd, 2 * small, &rs));
	EXPECT_EQ(2 * small, rs.capacity);
	EXPECT_EQ(4, rs.evicted);
	expect_ring(_metadata, self->wfd, 2 * small, 4, 1, 4, space);

	ASSERT_EQ(0, resize_to(self->wfd, small, &rs));
	EXPECT_EQ(small, rs.capacity);
	EXPECT_EQ(1, rs.evicted);
	expect_ring(_metadata, self->wfd, small, 5, 0, 5, 0);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(2, info.resizes);

	expect_rinfo(_metadata, rfd, 0, 5, 5, 0);
	expect_gap(_metadata, rfd, 0, 5);
	n = read(rfd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);

	/* what the small ring accepts now */
	n = write_tagged(self->wfd, len, 5);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	ASSERT_EQ(max_payload(small), write_tagged(self->wfd,
						   max_payload(small), 5));
	expect_ring(_metadata, self->wfd, small, 5, 1, 5, small);
	expect_msg(_metadata, rfd, max_payload(small), 5);
	close(rfd);
}

/*
 * A pinned message outlives its place in the ring: a shrink that evicts
 * everything else leaves it stored, and readers read it in order.
 */
TEST_F(conv, shrink_keeps_pinned)
{
	unsigned char sys[100];
	const __u32 len = 5000, sys_len = sizeof(sys);
	struct cbm_resize rs;
	struct cbm_info info;
	union rec_buf *rb = malloc(sizeof(*rb));
	int early, late, fds[2], i;
	ssize_t n;
	__u64 seq;

	ASSERT_NE(NULL, rb);
	memset(sys, 's', sizeof(sys));
	early = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, early);
	ASSERT_EQ(0, send_msg(self->wfd, CBM_ROLE_SYSTEM, CBM_MSG_PINNED, sys,
			      sys_len, &seq));
	ASSERT_EQ(0, seq);
	write_range(_metadata, self->wfd, len, 1, 6);

	ASSERT_EQ(0, resize_to(self->wfd, MIN_CAPACITY, &rs));
	EXPECT_EQ(MIN_CAPACITY, rs.capacity);
	EXPECT_EQ(5, rs.evicted);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(MIN_CAPACITY, info.capacity);
	EXPECT_EQ(0, info.first_seq);
	EXPECT_EQ(6, info.next_seq);
	EXPECT_EQ(1, info.msgs);
	EXPECT_EQ(1, info.pinned);
	EXPECT_EQ(5, info.evicted);

	late = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, late);
	fds[0] = early;
	fds[1] = late;
	for (i = 0; i < 2; i++) {
		memset(rb, JUNK, sizeof(rb->rec));
		ASSERT_EQ(REC_HDR + sys_len, read_record(fds[i], rb));
		EXPECT_EQ(CBM_RECORD_MSG, rb->rec.type);
		EXPECT_EQ(0, rb->rec.seq);
		EXPECT_EQ(CBM_MSG_PINNED, rb->rec.flags);
		EXPECT_EQ(CBM_ROLE_SYSTEM, rb->rec.role);
		EXPECT_EQ(0, memcmp(rb->bytes + REC_HDR, sys, sys_len));
	}
	/* only the reader that was there lost anything */
	expect_rinfo(_metadata, early, 1, 5, 5, 0);
	expect_rinfo(_metadata, late, 6, 0, 0, 0);
	expect_gap(_metadata, early, 1, 5);
	n = read(early, rb->bytes, sizeof(*rb));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, poll_events(late, POLLIN, 0));
	n = read(late, rb->bytes, sizeof(*rb));
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	write_range(_metadata, self->wfd, sys_len, 6, 7);
	expect_msg(_metadata, early, sys_len, 6);
	expect_msg(_metadata, late, sys_len, 6);
	close(early);
	close(late);
	free(rb);
}

/*
 * A lossless writer waiting for room with a message the shrunk ring can
 * never hold fails with EMSGSIZE instead of waiting forever.
 */
TEST_F_TIMEOUT(conv, shrink_fails_waiting_writer, 20)
{
	const __u32 held = MIN_CAPACITY - REC_HDR - 64, big = MIN_CAPACITY + 128;
	struct cbm_resize rs;
	pid_t pid;
	int rfd;

	/* a lossless conversation of 8 KiB holding one unread message */
	close(self->wfd);
	self->wfd = create_named(self->other, O_WRONLY | O_NONBLOCK, 0600,
				 CBM_CONV_LOSSLESS, 2 * MIN_CAPACITY);
	ASSERT_LE(0, self->wfd);
	rfd = open_reader(self->other, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	write_range(_metadata, self->wfd, held, 0, 1);
	ASSERT_LT(2 * MIN_CAPACITY, CBM_RECORD_SPACE(held) +
				    CBM_RECORD_SPACE(big));

	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(self->other, O_WRONLY);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(write_tagged(fd, big, 1) == -1);
		CHILD_CHECK(errno == EMSGSIZE);
		_exit(0);
	}
	ASSERT_EQ(0, wait_sleeping(pid));
	ASSERT_EQ(0, resize_to(self->wfd, MIN_CAPACITY, &rs));
	EXPECT_EQ(0, rs.evicted);
	EXPECT_EQ(0, wait_child(pid));
	expect_ring(_metadata, self->wfd, MIN_CAPACITY, 0, 1, 0,
		    CBM_RECORD_SPACE(held));
	read_range(_metadata, rfd, held, 0, 1);
	close(rfd);
}

TEST_F(conv, resize_einval)
{
	const __u32 bad_flags[] = { 1, 2, 0x100, 0x80000000 };
	struct cbm_resize rs;
	struct shape s;
	unsigned int i;
	int ret;

	ASSERT_EQ(0, read_shape(self->wfd, &s));
	for (i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		memset(&rs, 0, sizeof(rs));
		rs.size = sizeof(rs);
		rs.flags = bad_flags[i];
		rs.capacity = 2 * CONV_CAP;
		ret = ioctl(self->wfd, CBM_IOC_RESIZE, &rs);
		EXPECT_EQ(-1, ret) TH_LOG("flags %#x", bad_flags[i]);
		EXPECT_EQ(EINVAL, errno);
	}

	memset(&rs, 0, sizeof(rs));
	rs.capacity = 2 * CONV_CAP;
	ret = ioctl(self->wfd, CBM_IOC_RESIZE, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	rs.size = sizeof(rs) - sizeof(rs.evicted);
	ret = ioctl(self->wfd, CBM_IOC_RESIZE, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	ret = ioctl(self->wfd, CBM_IOC_RESIZE, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	ret = ioctl(self->wfd, CBM_IOC_RESIZE, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	expect_shape(_metadata, self->wfd, &s);
}

/* A newer, longer struct is fine while its unknown tail is zero */
TEST_F(conv, resize_struct_sizes)
{
	struct {
		struct cbm_resize rs;
		__u64 tail;
	} big;
	struct shape s;
	int ret;

	ASSERT_EQ(0, read_shape(self->wfd, &s));
	memset(&big, 0, sizeof(big));
	big.rs.size = sizeof(big);
	big.rs.capacity = 2 * CONV_CAP;
	big.tail = 1;
	ret = ioctl(self->wfd, CBM_IOC_RESIZE, &big);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	expect_shape(_metadata, self->wfd, &s);

	big.tail = 0;
	big.rs.evicted = ~0ULL;
	ASSERT_EQ(0, ioctl(self->wfd, CBM_IOC_RESIZE, &big));
	EXPECT_EQ(2 * CONV_CAP, big.rs.capacity);
	EXPECT_EQ(0, big.rs.evicted);
	s.capacity = 2 * CONV_CAP;
	s.resizes++;
	s.config_gen++;
	expect_shape(_metadata, self->wfd, &s);
}

/* Validation comes first, then the file's access mode */
TEST_F(conv, resize_ebadf)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, CONV_CAP, 80, 20,
					 IDLE_PERIOD_MS);
	struct cbm_resize rs;
	struct shape s;
	int fd, ret;

	fd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_shape(self->wfd, &s));
	ret = resize_to(fd, 2 * CONV_CAP, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	ret = set_ar(fd, &ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);

	memset(&rs, 0, sizeof(rs));
	rs.size = sizeof(rs);
	rs.flags = 1;
	rs.capacity = 2 * CONV_CAP;
	ret = ioctl(fd, CBM_IOC_RESIZE, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ar.period_ms = 0;
	ret = set_ar(fd, &ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	/* reading the settings needs no write access */
	ar.flags = 0;
	ar.min_capacity = 0;
	ar.max_capacity = 0;
	ar.high_pct = 0;
	ar.low_pct = 0;
	expect_ar(_metadata, fd, &ar);
	expect_shape(_metadata, self->wfd, &s);
	close(fd);
}

/* Run as UNPRIV_UID against the root-owned conversation */
static void unpriv_changes_refused(const char *name)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, CONV_CAP, 80, 20,
					 IDLE_PERIOD_MS);
	struct cbm_resize rs;
	int fd, rfd;

	fd = open_named(name, O_RDWR | O_NONBLOCK);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(resize_to(fd, 2 * CONV_CAP, &rs) == -1 && errno == EPERM);
	CHILD_CHECK(resize_to(fd, MIN_CAPACITY, &rs) == -1 && errno == EPERM);
	CHILD_CHECK(set_ar(fd, &ar) == -1 && errno == EPERM);
	/* validation comes before ownership */
	ar.low_pct = ar.high_pct;
	CHILD_CHECK(set_ar(fd, &ar) == -1 && errno == EINVAL);
	memset(&rs, 0, sizeof(rs));
	rs.size = sizeof(rs);
	rs.flags = 1;
	CHILD_CHECK(ioctl(fd, CBM_IOC_RESIZE, &rs) == -1 && errno == EINVAL);
	CHILD_CHECK(get_ar(fd, &ar) == 0 && ar.flags == 0);

	/* the access mode comes before ownership */
	rfd = open_named(name, O_RDONLY);
	CHILD_CHECK(rfd >= 0);
	CHILD_CHECK(resize_to(rfd, 2 * CONV_CAP, &rs) == -1 && errno == EBADF);
	CHILD_CHECK(get_ar(rfd, &ar) == 0 && ar.flags == 0);
}

TEST_F(conv, resize_eperm)
{
	struct shape s;

	ASSERT_EQ(0, read_shape(self->wfd, &s));
	EXPECT_EQ(0, run_unpriv(unpriv_changes_refused, self->name));
	expect_shape(_metadata, self->wfd, &s);
}

/* Run as UNPRIV_UID: the owner of a conversation may change it */
static void unpriv_owner_resizes(const char *name)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, CONV_CAP, 80, 20,
					 IDLE_PERIOD_MS);
	struct cbm_resize rs;
	struct cbm_info info;
	int fd;

	fd = create_named(name, O_WRONLY, 0666, 0, 2 * MIN_CAPACITY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(resize_to(fd, 4 * MIN_CAPACITY, &rs) == 0);
	CHILD_CHECK(rs.capacity == 4 * MIN_CAPACITY && rs.evicted == 0);
	CHILD_CHECK(set_ar(fd, &ar) == 0);
	CHILD_CHECK(read_info(fd, &info) == 0);
	CHILD_CHECK(info.uid == UNPRIV_UID && info.resizes == 1);
	CHILD_CHECK(info.capacity == 4 * MIN_CAPACITY);
}

/* ... and so may CAP_SYS_ADMIN */
TEST_F(conv, resize_owner_or_admin)
{
	struct cbm_autoresize ar;
	struct cbm_resize rs;
	struct cbm_info info;
	int fd;

	ASSERT_EQ(0, run_unpriv(unpriv_owner_resizes, self->other));
	fd = open_named(self->other, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, resize_to(fd, 2 * MIN_CAPACITY, &rs));
	EXPECT_EQ(2 * MIN_CAPACITY, rs.capacity);
	memset(&ar, 0, sizeof(ar));
	ar.size = sizeof(ar);
	ASSERT_EQ(0, set_ar(fd, &ar));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(UNPRIV_UID, info.uid);
	EXPECT_EQ(2 * MIN_CAPACITY, info.capacity);
	EXPECT_EQ(2, info.resizes);
	expect_ar(_metadata, fd, &ar);
	close(fd);
}

/*
 * EPOLLPRI: set for a file when the configuration changed since it was
 * bound or last called CBM_IOC_INFO, whoever changed it; refused changes
 * and reading the settings do not set it.
 */
TEST_F(conv, epollpri_tracks_changes)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 4 * CONV_CAP, 80, 20,
					 IDLE_PERIOD_MS);
	struct cbm_resize rs;
	struct cbm_info info;
	struct shape s;
	int pfd, late, ret;

	pfd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, pfd);
	EXPECT_EQ(0, poll_events(pfd, POLLPRI, 0));
	ASSERT_EQ(0, read_shape(self->wfd, &s));

	ASSERT_EQ(0, resize_to(self->wfd, 2 * CONV_CAP, &rs));
	EXPECT_EQ(POLLPRI, poll_events(pfd, POLLPRI, 0));
	/* it stays until this file asks */
	EXPECT_EQ(POLLPRI, poll_events(pfd, POLLPRI, 0));
	EXPECT_EQ(POLLPRI, poll_events(self->wfd, POLLPRI, 0));
	late = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, late);
	EXPECT_EQ(0, poll_events(late, POLLPRI, 0));
	ASSERT_EQ(0, get_ar(pfd, &ar));
	EXPECT_EQ(POLLPRI, poll_events(pfd, POLLPRI, 0));
	ASSERT_EQ(0, read_info(pfd, &info));
	EXPECT_EQ(s.config_gen + 1, info.config_gen);
	EXPECT_EQ(0, poll_events(pfd, POLLPRI, 0));
	/* one file's INFO clears only its own */
	EXPECT_EQ(POLLPRI, poll_events(self->wfd, POLLPRI, 0));
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(0, poll_events(self->wfd, POLLPRI, 0));

	/* refused changes are no changes */
	ret = resize_to(self->wfd, ~0ULL, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ar = ar_on(MIN_CAPACITY, 4 * CONV_CAP, 80, 40, IDLE_PERIOD_MS);
	ret = set_ar(self->wfd, &ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, poll_events(pfd, POLLPRI, 0));
	EXPECT_EQ(0, poll_events(late, POLLPRI, 0));

	ar.low_pct = 20;
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	EXPECT_EQ(POLLPRI, poll_events(pfd, POLLPRI, 0));
	EXPECT_EQ(POLLPRI, poll_events(late, POLLPRI, 0));
	ASSERT_EQ(0, read_info(pfd, &info));
	EXPECT_EQ(s.config_gen + 2, info.config_gen);
	EXPECT_EQ(0, poll_events(pfd, POLLPRI, 0));

	/* switching it off is a change too */
	memset(&ar, 0, sizeof(ar));
	ar.size = sizeof(ar);
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	EXPECT_EQ(POLLPRI, poll_events(pfd, POLLPRI, 0));
	ASSERT_EQ(0, read_info(pfd, &info));
	EXPECT_EQ(s.config_gen + 3, info.config_gen);
	EXPECT_EQ(0, poll_events(pfd, POLLPRI, 0));
	ASSERT_EQ(0, read_info(late, &info));
	EXPECT_EQ(0, poll_events(late, POLLPRI, 0));
	close(late);
	close(pfd);
}

/* A poller asleep in poll() is woken by a resize */
TEST_F_TIMEOUT(conv, epollpri_wakes_poller, 20)
{
	struct cbm_resize rs;
	int ready[2];
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(self->name, O_RDONLY);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		CHILD_CHECK(poll_events(fd, POLLPRI, WAIT_MS) == POLLPRI);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	ASSERT_EQ(0, wait_sleeping(pid));
	ASSERT_EQ(0, resize_to(self->wfd, MIN_CAPACITY, &rs));
	EXPECT_EQ(0, wait_child(pid));
}

/*
 * The module parameters that bound a resize; teardown restores them. The
 * memory caps count the new capacity against the owner's uid and all
 * conversations, whoever resizes.
 */
#define CAPS_CAP	16384

/*
 * The uid that owns the conversations of the max_user_bytes tests: one of
 * their own, so that no other test's conversations count against it.
 */
#define CAPS_UID_BASE	100000

FIXTURE(caps) {
	char name[CBM_NAME_MAX];
	int fd;		/* O_WRONLY | O_NONBLOCK: not a reader */
	uid_t uid;	/* owns nothing but this test's conversation */
	long long max_capacity, max_user_bytes, max_total_bytes;
};

FIXTURE_SETUP(caps)
{
	conv_name(self->name, "caps");
	self->fd = -1;
	self->uid = CAPS_UID_BASE + getpid();
	ASSERT_EQ(0, param_read("max_capacity", &self->max_capacity));
	ASSERT_EQ(0, param_read("max_user_bytes", &self->max_user_bytes));
	ASSERT_EQ(0, param_read("max_total_bytes", &self->max_total_bytes));
}

FIXTURE_TEARDOWN(caps)
{
	EXPECT_EQ(0, param_write("max_capacity", self->max_capacity));
	EXPECT_EQ(0, param_write("max_user_bytes", self->max_user_bytes));
	EXPECT_EQ(0, param_write("max_total_bytes", self->max_total_bytes));
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
}

/* Creates the test's conversation owned by @uid:@uid, mode 0666 */
static void caps_create(struct __test_metadata *_metadata,
			FIXTURE_DATA(caps) *self, uid_t uid, __u32 conv_flags,
			__u64 capacity)
{
	ASSERT_EQ(0, become(uid, uid));
	self->fd = create_named(self->name, O_WRONLY | O_NONBLOCK, 0666,
				conv_flags, capacity);
	ASSERT_EQ(0, become_root());
	ASSERT_LE(0, self->fd);
}

TEST_F(caps, max_capacity_e2big)
{
	const __u64 limit = 4 * CAPS_CAP;
	const __u64 requests[] = {
		limit + 1, 2 * limit, ~0ULL, (1ULL << 63) + 1,
	};
	struct cbm_autoresize ar;
	struct cbm_resize rs;
	struct shape s;
	unsigned int i;
	int ret;

	caps_create(_metadata, self, 0, 0, CAPS_CAP);
	write_range(_metadata, self->fd, BIG_LEN, 0, 2);
	ASSERT_EQ(0, param_write("max_capacity", limit));
	ASSERT_EQ(0, resize_to(self->fd, limit, &rs));
	EXPECT_EQ(limit, rs.capacity);
	ASSERT_EQ(0, read_shape(self->fd, &s));
	for (i = 0; i < ARRAY_SIZE(requests); i++) {
		ret = resize_to(self->fd, requests[i], &rs);
		EXPECT_EQ(-1, ret) TH_LOG("request %llu", requests[i]);
		EXPECT_EQ(E2BIG, errno);
	}
	expect_shape(_metadata, self->fd, &s);

	ar = ar_on(MIN_CAPACITY, limit + 1, 80, 20, IDLE_PERIOD_MS);
	ret = set_ar(self->fd, &ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ar.max_capacity = limit;
	EXPECT_EQ(0, set_ar(self->fd, &ar));

	/* lowering the parameter below a ring's size does not shrink it */
	ASSERT_EQ(0, param_write("max_capacity", CAPS_CAP));
	expect_ring(_metadata, self->fd, limit, 0, 2, 0,
		    2 * CBM_RECORD_SPACE(BIG_LEN));
}

/* Run as the owner, once its cap is at twice CAPS_CAP */
static void unpriv_user_cap(const char *name)
{
	struct cbm_resize rs;
	int fd;

	fd = open_named(name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(resize_to(fd, 4 * CAPS_CAP, &rs) == -1 && errno == ENOSPC);
	CHILD_CHECK(resize_to(fd, CAPS_CAP, &rs) == 0 && rs.evicted == 0);
	CHILD_CHECK(resize_to(fd, 2 * CAPS_CAP, &rs) == 0);
}

/*
 * max_user_bytes bounds what one uid's conversations hold: exactly up to
 * it, not beyond, for the owner and for root alike; shrinking is never
 * refused.
 */
TEST_F(caps, max_user_bytes)
{
	struct cbm_resize rs;
	struct shape s;
	int ret;

	caps_create(_metadata, self, self->uid, 0, CAPS_CAP);
	write_range(_metadata, self->fd, BIG_LEN, 0, 2);
	ASSERT_EQ(0, param_write("max_user_bytes", 2 * CAPS_CAP));

	ASSERT_EQ(0, resize_to(self->fd, 2 * CAPS_CAP, &rs));
	ASSERT_EQ(0, read_shape(self->fd, &s));
	ret = resize_to(self->fd, 4 * CAPS_CAP, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);
	expect_shape(_metadata, self->fd, &s);

	EXPECT_EQ(0, run_as(self->uid, self->uid, unpriv_user_cap, self->name));
	s.resizes += 2;
	s.config_gen += 2;
	expect_shape(_metadata, self->fd, &s);

	/* a cap below the usage evicts nothing, and blocks any growth */
	ASSERT_EQ(0, param_write("max_user_bytes", CAPS_CAP / 2));
	expect_ring(_metadata, self->fd, 2 * CAPS_CAP, 0, 2, 0,
		    2 * CBM_RECORD_SPACE(BIG_LEN));
	ASSERT_EQ(0, resize_to(self->fd, CAPS_CAP, &rs));
	ret = resize_to(self->fd, 2 * CAPS_CAP, &rs);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);

	ASSERT_EQ(0, param_write("max_user_bytes", self->max_user_bytes));
	ASSERT_EQ(0, resize_to(self->fd, 4 * CAPS_CAP, &rs));
	expect_ring(_metadata, self->fd, 4 * CAPS_CAP, 0, 2, 0,
		    2 * CBM_RECORD_SPACE(BIG_LEN));
}

/* Either cap, once below the current usage, refuses any growth */
static void cap_blocks_growth(struct __test_metadata *_metadata,
			      FIXTURE_DATA(caps) *self, const char *param,
			      long long saved)
{
	struct cbm_resize rs;
	struct shape s;
	int ret;

	ASSERT_EQ(0, read_shape(self->fd, &s));
	ASSERT_EQ(CAPS_CAP, s.capacity);
	ASSERT_EQ(0, param_write(param, MIN_CAPACITY));
	ret = resize_to(self->fd, 2 * CAPS_CAP, &rs);
	EXPECT_EQ(-1, ret) TH_LOG("%s", param);
	EXPECT_EQ(ENOSPC, errno);
	expect_shape(_metadata, self->fd, &s);

	ASSERT_EQ(0, resize_to(self->fd, CAPS_CAP / 2, &rs));
	EXPECT_EQ(0, rs.evicted);
	ASSERT_EQ(0, param_write(param, saved));
	ASSERT_EQ(0, resize_to(self->fd, CAPS_CAP, &rs));
	expect_ring(_metadata, self->fd, CAPS_CAP, 0, 2, 0,
		    2 * CBM_RECORD_SPACE(BIG_LEN));
}

TEST_F(caps, caps_below_usage)
{
	caps_create(_metadata, self, 0, 0, CAPS_CAP);
	write_range(_metadata, self->fd, BIG_LEN, 0, 2);
	cap_blocks_growth(_metadata, self, "max_user_bytes",
			  self->max_user_bytes);
	cap_blocks_growth(_metadata, self, "max_total_bytes",
			  self->max_total_bytes);
}

/*
 * An automatic grow beyond a limit does not happen: the lossless writer
 * gets EAGAIN as if auto-resize had reached its maximum. A 4 KiB ring
 * allowed to grow to 16 KiB reaches 8 KiB, stops there while @param is
 * 8 KiB, and grows on once it is back at @saved.
 */
static void autogrow_stops_at(struct __test_metadata *_metadata,
			      FIXTURE_DATA(caps) *self, const char *param,
			      long long saved)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 4 * MIN_CAPACITY, 100,
					 1, PERIOD_MS);
	__u64 space = CBM_RECORD_SPACE(BIG_LEN);
	struct cbm_info info;
	ssize_t n;
	int rfd;

	caps_create(_metadata, self, self->uid, CBM_CONV_LOSSLESS,
		    MIN_CAPACITY);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, set_ar(self->fd, &ar));
	ASSERT_EQ(0, param_write(param, 2 * MIN_CAPACITY));

	/* a full 4 KiB ring grows to 8 KiB, which the limit allows */
	write_range(_metadata, self->fd, BIG_LEN, 0, MIN_CAPACITY / space + 1);
	expect_ring(_metadata, self->fd, 2 * MIN_CAPACITY, 0,
		    MIN_CAPACITY / space + 1, 0,
		    (MIN_CAPACITY / space + 1) * space);
	sleep_ms(2 * PERIOD_MS);
	write_range(_metadata, self->fd, BIG_LEN, MIN_CAPACITY / space + 1,
		    2 * MIN_CAPACITY / space);

	/* 16 KiB would pass it */
	n = write_tagged(self->fd, BIG_LEN, 2 * MIN_CAPACITY / space);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	sleep_ms(3 * PERIOD_MS);
	n = write_tagged(self->fd, BIG_LEN, 2 * MIN_CAPACITY / space);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(2 * MIN_CAPACITY, info.capacity);
	EXPECT_EQ(1, info.resizes);
	EXPECT_EQ(0, info.evicted);

	/* a refused grow may count against the rate limit: wait a period */
	ASSERT_EQ(0, param_write(param, saved));
	sleep_ms(2 * PERIOD_MS);
	ASSERT_EQ(BIG_LEN, write_tagged(self->fd, BIG_LEN,
					2 * MIN_CAPACITY / space));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(4 * MIN_CAPACITY, info.capacity);
	EXPECT_EQ(2, info.resizes);
	read_range(_metadata, rfd, BIG_LEN, 0, 2 * MIN_CAPACITY / space + 1);
	close(rfd);
}

TEST_F(caps, autoresize_respects_cap)
{
	autogrow_stops_at(_metadata, self, "max_user_bytes",
			  self->max_user_bytes);
}

/* max_capacity lowered after the bounds were set stops growth as well */
TEST_F(caps, autoresize_respects_max_capacity)
{
	autogrow_stops_at(_metadata, self, "max_capacity", self->max_capacity);
}

/*
 * Automatic resizing. Tests that count messages use BIG_LEN payloads:
 * 3 fill 4 KiB to 77%, 7 fill 8 KiB to 90%, 15 fill 16 KiB to 97%, so
 * with high_pct 100 only a writer that would wait makes the ring grow.
 */
FIXTURE(autoresize) {
	char name[CBM_NAME_MAX];
	int wfd;	/* O_WRONLY | O_NONBLOCK: not a reader */
	int rfd;	/* O_RDONLY | O_NONBLOCK: a reader from seq 0 */
};

FIXTURE_SETUP(autoresize)
{
	conv_name(self->name, "auto");
	self->wfd = -1;
	self->rfd = -1;
}

FIXTURE_TEARDOWN(autoresize)
{
	if (self->rfd >= 0)
		close(self->rfd);
	if (self->wfd >= 0)
		close(self->wfd);
	unlink_name(self->name);
}

static void auto_create(struct __test_metadata *_metadata,
			FIXTURE_DATA(autoresize) *self, __u64 capacity,
			__u32 conv_flags)
{
	self->wfd = create_named(self->name, O_WRONLY | O_NONBLOCK, 0600,
				 conv_flags, capacity);
	ASSERT_LE(0, self->wfd);
	self->rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, self->rfd);
}

TEST_F(autoresize, off_by_default)
{
	struct cbm_autoresize off, def;
	int fd, dfd, ret;

	memset(&off, 0, sizeof(off));
	off.size = sizeof(off);
	auto_create(_metadata, self, MIN_CAPACITY, 0);
	expect_ar(_metadata, self->wfd, &off);

	/* like INFO, it binds an unbound file to the default conversation */
	dfd = open_named(CBM_DEFAULT_NAME, O_RDONLY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, get_ar(dfd, &def));
	fd = cbm_open(O_RDONLY);
	ASSERT_LE(0, fd);
	expect_ar(_metadata, fd, &def);
	ret = cbm_bind(fd, self->name, 0, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	close(fd);
	close(dfd);
}

TEST_F(autoresize, set_get_roundtrip)
{
	const __u64 max_capacity = max_capacity_param();
	const struct cbm_autoresize valid[] = {
		ar_on(MIN_CAPACITY, 1 << 20, 80, 20, 250),
		ar_on(MIN_CAPACITY, 1 << 16, 100, 49, PERIOD_MS_MIN),
		ar_on(MIN_CAPACITY, MIN_CAPACITY, 1, 0, PERIOD_MS_MAX),
		ar_on(MIN_CAPACITY, max_capacity, 80, 39, 1000),
	};
	struct cbm_autoresize ar, off;
	struct cbm_info info;
	struct shape s;
	struct {
		struct cbm_autoresize ar;
		__u64 tail;
	} big;
	unsigned int i;
	int ret;

	ASSERT_NE(0, max_capacity);
	auto_create(_metadata, self, MIN_CAPACITY, 0);
	ASSERT_EQ(0, read_shape(self->wfd, &s));
	for (i = 0; i < ARRAY_SIZE(valid); i++) {
		ASSERT_EQ(0, set_ar(self->wfd, &valid[i])) TH_LOG("case %u", i);
		expect_ar(_metadata, self->wfd, &valid[i]);
		s.config_gen++;
		expect_shape(_metadata, self->wfd, &s);
	}

	/* the bounds are rounded as capacities are */
	ar = ar_on(MIN_CAPACITY - 1, 100000, 80, 20, 250);
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	ar.min_capacity = MIN_CAPACITY;
	ar.max_capacity = 1 << 17;
	expect_ar(_metadata, self->wfd, &ar);
	s.config_gen++;
	expect_shape(_metadata, self->wfd, &s);

	/* off: the other fields are ignored, and read back as zero */
	ar = valid[0];
	ar.flags = 0;
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	memset(&off, 0, sizeof(off));
	off.size = sizeof(off);
	expect_ar(_metadata, self->wfd, &off);
	s.config_gen++;
	expect_shape(_metadata, self->wfd, &s);

	/* sizes: a longer struct with a zero tail works both ways */
	memset(&big, 0, sizeof(big));
	big.ar = valid[0];
	big.ar.size = sizeof(big);
	big.tail = 1;
	ret = set_ar(self->wfd, &big.ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	big.tail = 0;
	ASSERT_EQ(0, set_ar(self->wfd, &big.ar));
	memset(&big, JUNK, sizeof(big));
	big.ar.size = sizeof(big);
	ASSERT_EQ(0, ioctl(self->wfd, CBM_IOC_GET_AUTORESIZE, &big));
	EXPECT_EQ(0, big.tail);
	EXPECT_EQ(valid[0].flags, big.ar.flags);
	EXPECT_EQ(valid[0].max_capacity, big.ar.max_capacity);
	EXPECT_EQ(valid[0].period_ms, big.ar.period_ms);

	ar = valid[1];
	ar.size = struct_end(struct cbm_autoresize, period_ms);
	ret = set_ar(self->wfd, &ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = ioctl(self->wfd, CBM_IOC_GET_AUTORESIZE, &ar);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = ioctl(self->wfd, CBM_IOC_GET_AUTORESIZE, bad_ptr());
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	expect_ar(_metadata, self->wfd, &valid[0]);

	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(s.config_gen + 1, info.config_gen);
	EXPECT_EQ(0, info.resizes);
	EXPECT_EQ(MIN_CAPACITY, info.capacity);
}

/* A cbm_autoresize with every field given */
#define AR(flags_, min_, max_, high_, low_, period_, reserved_) {	\
	.size = sizeof(struct cbm_autoresize), .flags = (flags_),	\
	.min_capacity = (min_), .max_capacity = (max_),			\
	.high_pct = (high_), .low_pct = (low_), .period_ms = (period_),	\
	.__reserved = (reserved_),					\
}

/* Every invalid setting fails and leaves the settings as they were */
TEST_F(autoresize, set_invalid)
{
	const struct cbm_autoresize base = ar_on(MIN_CAPACITY, 1 << 16, 80, 20,
						 PERIOD_MS);
	const __u32 on = CBM_AUTORESIZE_ON;
	const __u64 min = MIN_CAPACITY, max = 1 << 16;
	const __u64 max_capacity = max_capacity_param();
	const struct {
		const char *what;
		int err;
		struct cbm_autoresize ar;
	} cases[] = {
		{ "unknown flag", EINVAL, AR(2, min, max, 80, 20, PERIOD_MS, 0) },
		{ "unknown flag with on", EINVAL,
		  AR(on | 2, min, max, 80, 20, PERIOD_MS, 0) },
		{ "high flag", EINVAL,
		  AR(on | 0x80000000, min, max, 80, 20, PERIOD_MS, 0) },
		{ "min > max", EINVAL,
		  AR(on, 2 * max, max, 80, 20, PERIOD_MS, 0) },
		{ "min > max once rounded", EINVAL,
		  AR(on, min + 1, min, 80, 20, PERIOD_MS, 0) },
		{ "high_pct 0", EINVAL, AR(on, min, max, 0, 0, PERIOD_MS, 0) },
		{ "high_pct 101", EINVAL,
		  AR(on, min, max, 101, 20, PERIOD_MS, 0) },
		{ "low_pct half of high_pct", EINVAL,
		  AR(on, min, max, 80, 40, PERIOD_MS, 0) },
		{ "low_pct above high_pct", EINVAL,
		  AR(on, min, max, 80, 90, PERIOD_MS, 0) },
		{ "low_pct half of 100", EINVAL,
		  AR(on, min, max, 100, 50, PERIOD_MS, 0) },
		{ "period_ms 0", EINVAL, AR(on, min, max, 80, 20, 0, 0) },
		{ "period_ms too short", EINVAL,
		  AR(on, min, max, 80, 20, PERIOD_MS_MIN - 1, 0) },
		{ "period_ms too long", EINVAL,
		  AR(on, min, max, 80, 20, PERIOD_MS_MAX + 1, 0) },
		{ "reserved", EINVAL, AR(on, min, max, 80, 20, PERIOD_MS, 1) },
		{ "max above max_capacity", E2BIG,
		  AR(on, min, 2 * max_capacity, 80, 20, PERIOD_MS, 0) },
		{ "max above max_capacity once rounded", E2BIG,
		  AR(on, min, max_capacity + 1, 80, 20, PERIOD_MS, 0) },
	};
	struct shape s;
	unsigned int i;
	int ret;

	ASSERT_NE(0, max_capacity);
	auto_create(_metadata, self, MIN_CAPACITY, 0);
	ASSERT_EQ(0, set_ar(self->wfd, &base));
	ASSERT_EQ(0, read_shape(self->wfd, &s));
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ret = set_ar(self->wfd, &cases[i].ar);
		EXPECT_EQ(-1, ret) TH_LOG("%s", cases[i].what);
		EXPECT_EQ(cases[i].err, errno) TH_LOG("%s", cases[i].what);
	}
	expect_ar(_metadata, self->wfd, &base);
	expect_shape(_metadata, self->wfd, &s);
}

/*
 * A lossless writer that would wait for room makes the ring grow at once
 * (as the rate limit allows), up to the maximum; there it gets EAGAIN.
 */
TEST_F(autoresize, grow_when_writer_would_wait)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 4 * MIN_CAPACITY, 100,
					 1, PERIOD_MS);
	__u64 space = CBM_RECORD_SPACE(BIG_LEN);
	__u64 fit1 = MIN_CAPACITY / space, fit2 = 2 * MIN_CAPACITY / space;
	__u64 fit4 = 4 * MIN_CAPACITY / space;
	struct cbm_info info;
	struct shape s;
	ssize_t n;

	auto_create(_metadata, self, MIN_CAPACITY, CBM_CONV_LOSSLESS);
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	ASSERT_EQ(0, read_shape(self->rfd, &s));

	write_range(_metadata, self->wfd, BIG_LEN, 0, fit1);
	expect_shape(_metadata, self->wfd, &s);
	/* the write that would get EAGAIN grows the ring instead */
	write_range(_metadata, self->wfd, BIG_LEN, fit1, fit1 + 1);
	expect_ring(_metadata, self->wfd, 2 * MIN_CAPACITY, 0, fit1 + 1, 0,
		    (fit1 + 1) * space);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(1, info.resizes);
	EXPECT_EQ(s.config_gen + 1, info.config_gen);
	EXPECT_EQ(POLLPRI, poll_events(self->rfd, POLLPRI, 0));

	/* once a period has passed, again */
	sleep_ms(2 * PERIOD_MS);
	write_range(_metadata, self->wfd, BIG_LEN, fit1 + 1, fit2);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(2 * MIN_CAPACITY, info.capacity);
	write_range(_metadata, self->wfd, BIG_LEN, fit2, fit2 + 1);
	expect_ring(_metadata, self->wfd, 4 * MIN_CAPACITY, 0, fit2 + 1, 0,
		    (fit2 + 1) * space);

	/* at the maximum, the writer gets EAGAIN, now and later */
	sleep_ms(2 * PERIOD_MS);
	write_range(_metadata, self->wfd, BIG_LEN, fit2 + 1, fit4);
	n = write_tagged(self->wfd, BIG_LEN, fit4);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	sleep_ms(3 * PERIOD_MS);
	n = write_tagged(self->wfd, BIG_LEN, fit4);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	expect_ring(_metadata, self->wfd, 4 * MIN_CAPACITY, 0, fit4, 0,
		    fit4 * space);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(2, info.resizes);
	EXPECT_EQ(s.config_gen + 2, info.config_gen);

	read_range(_metadata, self->rfd, BIG_LEN, 0, fit4);
	write_range(_metadata, self->wfd, BIG_LEN, fit4, fit4 + 1);
	expect_ring(_metadata, self->wfd, 4 * MIN_CAPACITY, 1, fit4, 1,
		    fit4 * space);
}

/*
 * Usage at or above high_pct for period_ms grows the ring by itself, one
 * doubling a period for as long as usage stays there, with no writer
 * waiting and nobody doing anything; not before the period, and never
 * beyond the maximum.
 */
TEST_F(autoresize, grow_on_high_usage)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 8 * MIN_CAPACITY, 30,
					 10, PERIOD_MS);
	__u64 space = CBM_RECORD_SPACE(BIG_LEN), start, end, k;
	struct cbm_info info;
	struct shape s;

	auto_create(_metadata, self, MIN_CAPACITY, 0);
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	ASSERT_EQ(0, read_shape(self->wfd, &s));

	/* 77%, then 39% of twice the size: both above the mark; 19% is not */
	start = mono_ms();
	write_range(_metadata, self->wfd, BIG_LEN, 0, 3);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	if (mono_ms() - start < PERIOD_MS) {
		EXPECT_EQ(MIN_CAPACITY, info.capacity)
			TH_LOG("grown before the period passed");
	}
	sleep_ms(EVENTUALLY_MS);
	expect_ring(_metadata, self->wfd, 4 * MIN_CAPACITY, 0, 3, 0,
		    3 * space);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(2, info.resizes);
	EXPECT_EQ(s.config_gen + 2, info.config_gen);

	/* a lossy ring kept full grows to the maximum and stops there */
	end = mono_ms() + EVENTUALLY_MS;
	for (k = 3; mono_ms() < end; k++) {
		ASSERT_EQ(BIG_LEN, write_tagged(self->wfd, BIG_LEN, k));
		ASSERT_EQ(0, read_info(self->wfd, &info));
		ASSERT_GE(8 * MIN_CAPACITY, info.capacity);
		if (info.capacity == 8 * MIN_CAPACITY)
			break;
		sleep_ms(1);
	}
	EXPECT_EQ(8 * MIN_CAPACITY, info.capacity);
	end = mono_ms() + 5 * PERIOD_MS;
	for (; mono_ms() < end; k++) {
		ASSERT_EQ(BIG_LEN, write_tagged(self->wfd, BIG_LEN, k));
		sleep_ms(1);
	}
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(8 * MIN_CAPACITY, info.capacity);
	EXPECT_EQ(3, info.resizes);
	EXPECT_EQ(s.config_gen + 3, info.config_gen);
}

/*
 * Usage at or below low_pct for period_ms shrinks the ring one halving a
 * period down to the minimum, with no activity at all: the test only
 * sleeps, then looks. A ring grown by hand comes back down the same way.
 */
TEST_F(autoresize, shrink_when_idle)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 8 * MIN_CAPACITY, 80,
					 20, PERIOD_MS);
	const __u32 len = 100;
	struct cbm_resize rs;
	struct cbm_info info;
	struct shape s;

	auto_create(_metadata, self, 8 * MIN_CAPACITY, 0);
	write_range(_metadata, self->wfd, len, 0, 1);
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	ASSERT_EQ(0, read_shape(self->wfd, &s));

	/* three halvings need three periods; give them ten times that */
	sleep_ms(30 * PERIOD_MS);
	expect_ring(_metadata, self->wfd, MIN_CAPACITY, 0, 1, 0,
		    CBM_RECORD_SPACE(len));
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(3, info.resizes);
	EXPECT_EQ(s.config_gen + 3, info.config_gen);

	/* and not below the minimum */
	sleep_ms(5 * PERIOD_MS);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(MIN_CAPACITY, info.capacity);
	EXPECT_EQ(3, info.resizes);

	ASSERT_EQ(0, resize_to(self->wfd, 4 * MIN_CAPACITY, &rs));
	sleep_ms(20 * PERIOD_MS);
	expect_ring(_metadata, self->wfd, MIN_CAPACITY, 0, 1, 0,
		    CBM_RECORD_SPACE(len));
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(6, info.resizes);
	EXPECT_EQ(s.config_gen + 6, info.config_gen);
	read_range(_metadata, self->rfd, len, 0, 1);
}

/*
 * An automatic resize wakes a poller waiting for EPOLLPRI. The period is
 * long enough that the poller has taken note of the new settings before
 * the ring shrinks; should it be slower, it sees both changes at once.
 */
#define WAKE_PERIOD_MS	500

TEST_F_TIMEOUT(autoresize, auto_resize_wakes_poller, 20)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 2 * MIN_CAPACITY, 80,
					 20, WAKE_PERIOD_MS);
	struct cbm_info info;
	int ready[2];
	pid_t pid;

	auto_create(_metadata, self, 2 * MIN_CAPACITY, 0);
	ASSERT_EQ(0, pipe(ready));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_named(self->name, O_RDONLY), wakeups;

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		/* the settings, then the shrink */
		for (wakeups = 0; wakeups < 2; wakeups++) {
			CHILD_CHECK(poll_events(fd, POLLPRI, WAIT_MS) ==
				    POLLPRI);
			CHILD_CHECK(read_info(fd, &info) == 0);
			if (info.capacity == MIN_CAPACITY)
				_exit(0);
		}
		_exit(1);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(MIN_CAPACITY, info.capacity);
	EXPECT_EQ(1, info.resizes);
}

/*
 * Usage that stays between the marks, with writes going on or with none,
 * never resizes. A window of 8 messages holds usage at exactly 50% while
 * a message a few milliseconds is written.
 */
TEST_F(autoresize, no_flapping_between_marks)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, 16 * MIN_CAPACITY, 75,
					 20, PERIOD_MS);
	const __u32 len = 1024 - REC_HDR;
	const __u64 cap = 4 * MIN_CAPACITY, keep = 8;
	struct cbm_window win;
	struct cbm_info info;
	__u64 k, end;

	ASSERT_EQ(keep * CBM_RECORD_SPACE(len), cap / 2);
	auto_create(_metadata, self, cap, 0);
	memset(&win, 0, sizeof(win));
	win.size = sizeof(win);
	win.max_msgs = keep;
	ASSERT_EQ(0, ioctl(self->wfd, CBM_IOC_SET_WINDOW, &win));
	ASSERT_EQ(0, set_ar(self->wfd, &ar));

	write_range(_metadata, self->wfd, len, 0, keep);
	end = mono_ms() + 10 * PERIOD_MS;
	for (k = keep; mono_ms() < end; k++) {
		ASSERT_EQ(len, write_tagged(self->wfd, len, k));
		ASSERT_EQ(0, read_info(self->wfd, &info));
		ASSERT_EQ(cap, info.capacity);
		ASSERT_EQ(cap / 2, info.used);
		sleep_ms(STEP_MS);
	}
	sleep_ms(10 * PERIOD_MS);
	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(cap, info.capacity);
	EXPECT_EQ(0, info.resizes);
	EXPECT_EQ(k - keep, info.evicted);
}

/*
 * Rate limit: under continuous pressure, no more than one automatic resize
 * per period. A writer process keeps the ring full (lossy) or waits for
 * room behind a reader that never reads (lossless) while the test samples
 * CBM_IOC_INFO: between any two samples the count may grow by at most the
 * time between them over the period, plus one.
 */
#define RATE_PERIOD_MS	250
#define RATE_WINDOW_MS	2000
#define RATE_MAX_CAP	(16ULL << 20)
#define RATE_SAMPLES	(RATE_WINDOW_MS / STEP_MS + 1)

struct rate_sample {
	__u64 before_ns;	/* CLOCK_MONOTONIC before the INFO call */
	__u64 after_ns;		/* ... and after */
	__u64 resizes;
	__u64 capacity;
};

FIXTURE(ratelimit) {
	char name[CBM_NAME_MAX];
	int wfd;
	int rfd;
	pid_t writer;
	struct rate_sample samples[RATE_SAMPLES];
};

FIXTURE_VARIANT(ratelimit) {
	__u32 conv_flags;
};

FIXTURE_VARIANT_ADD(ratelimit, lossy) { .conv_flags = 0 };
FIXTURE_VARIANT_ADD(ratelimit, lossless) { .conv_flags = CBM_CONV_LOSSLESS };

FIXTURE_SETUP(ratelimit)
{
	conv_name(self->name, "rate");
	self->writer = -1;
	self->rfd = -1;
	self->wfd = create_named(self->name, O_WRONLY, 0600,
				 variant->conv_flags, MIN_CAPACITY);
	ASSERT_LE(0, self->wfd);
	self->rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, self->rfd);
}

FIXTURE_TEARDOWN(ratelimit)
{
	if (self->writer > 0) {
		kill(self->writer, SIGKILL);
		waitpid(self->writer, NULL, 0);
	}
	if (self->rfd >= 0)
		close(self->rfd);
	close(self->wfd);
	unlink_name(self->name);
}

TEST_F_TIMEOUT(ratelimit, one_resize_per_period, 30)
{
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, RATE_MAX_CAP, 50, 10,
					 RATE_PERIOD_MS);
	const __u64 period_ns = RATE_PERIOD_MS * 1000000ULL;
	struct rate_sample *a, *b;
	struct cbm_info info;
	unsigned int n, i, j;
	__u64 end;

	ASSERT_EQ(0, set_ar(self->wfd, &ar));
	self->writer = fork_worker(CHILD_TIMEOUT + RATE_WINDOW_MS / 1000);
	ASSERT_LE(0, self->writer);
	if (self->writer == 0) {
		__u64 k;

		/* until the conversation is unlinked */
		for (k = 0; write_tagged(self->wfd, BIG_LEN, k) == BIG_LEN; k++)
			;
		CHILD_CHECK(errno == EPIPE);
		_exit(0);
	}

	end = mono_ms() + RATE_WINDOW_MS;
	for (n = 0; n < RATE_SAMPLES && mono_ms() < end; n++) {
		self->samples[n].before_ns = mono_ns();
		ASSERT_EQ(0, read_info(self->wfd, &info));
		self->samples[n].after_ns = mono_ns();
		self->samples[n].resizes = info.resizes;
		self->samples[n].capacity = info.capacity;
		ASSERT_LE(MIN_CAPACITY, info.capacity);
		ASSERT_GE(RATE_MAX_CAP, info.capacity);
		ASSERT_EQ(0, info.capacity & (info.capacity - 1));
		sleep_ms(STEP_MS);
	}
	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++) {
			a = &self->samples[i];
			b = &self->samples[j];
			ASSERT_GE((b->after_ns - a->before_ns) / period_ns + 1,
				  b->resizes - a->resizes)
				TH_LOG("%llu resizes in %llu ms",
				       b->resizes - a->resizes,
				       (b->after_ns - a->before_ns) / 1000000);
		}
	}
	/* the pressure was real: more than one period's worth of resizes */
	EXPECT_LE(2, self->samples[n - 1].resizes);
	TH_LOG("%llu resizes in %u ms, capacity %llu",
	       self->samples[n - 1].resizes, RATE_WINDOW_MS,
	       self->samples[n - 1].capacity);

	ASSERT_EQ(0, unlink_name(self->name));
	EXPECT_EQ(0, wait_child(self->writer));
	self->writer = -1;
}

/*
 * Resizing under load: writer processes append tagged messages of varied
 * lengths, reader processes check each one, a poller follows the
 * configuration through EPOLLPRI and CBM_IOC_INFO, and a resizer changes
 * the capacity up and down all the while. Readers check every payload,
 * that sequence numbers and gaps account for every message, and that each
 * writer's messages arrive in order, all of them in a lossless
 * conversation. CBM_STRESS_SECS (default LOAD_SECS) bounds the whole run;
 * the variants share it.
 */
#define LOAD_WRITERS		3
#define LOAD_SECS		10
#define LOAD_SLACK		120
#define LOAD_HARNESS_TIMEOUT	(7 * 24 * 3600)

/* The resizer picks MIN_CAPACITY << 0 .. LOAD_CAP_STEPS - 1 */
#define LOAD_CAP_STEPS		5
#define LOAD_MAX_CAP		(MIN_CAPACITY << (LOAD_CAP_STEPS - 1))
#define LOAD_MAX_LEN		1024

/*
 * Writers pause now and then (one message in LOAD_BURST, up to
 * LOAD_PAUSE_US), so that readers catch up and a lossless ring can shrink;
 * the resizer goes on for LOAD_TAIL_MS after the writers stop, when the
 * readers surely catch up.
 */
#define LOAD_BURST		16
#define LOAD_PAUSE_US		1000
#define LOAD_TAIL_MS		300

#define TAG_LEN			sizeof(__u64)
#define TAG_WRITER_SHIFT	48
#define TAG_COUNTER_MASK	((1ULL << TAG_WRITER_SHIFT) - 1)

/* The parent's closing message uses this writer index */
#define END_WRITER		LOAD_WRITERS

/* How long a helper's poll() waits before it looks at its state again */
#define LOAD_POLL_MS		100

/* Written by the helpers before they exit, read after they have */
struct load_shared {
	__u64 sent[LOAD_WRITERS];
	__u64 resizes;		/* successful CBM_IOC_RESIZE calls */
	__u64 shrinks;		/* ... of them to a smaller size */
	__u64 resize_evicted;	/* their cbm_resize.evicted summed */
	__u64 busy;		/* shrinks refused with EBUSY */
	__u64 capacity;		/* the last size set */
	__u64 pri;		/* EPOLLPRI reports the poller saw */
	__u64 poller_gen;	/* the last config_gen the poller read */
	int stop;		/* the poller stops once set */
};

FIXTURE(load) {
	char name[CBM_NAME_MAX];
	int wfd;	/* the parent's file, O_WRONLY: not a reader */
	struct load_shared *sh;
	pid_t writers[LOAD_WRITERS];
	pid_t readers[READERS];
	pid_t poller, resizer;
	__u64 deadline_ms;
};

FIXTURE_VARIANT(load) {
	__u32 conv_flags;
};

FIXTURE_VARIANT_ADD(load, lossy) { .conv_flags = 0 };
FIXTURE_VARIANT_ADD(load, lossless) { .conv_flags = CBM_CONV_LOSSLESS };

FIXTURE_SETUP(load)
{
	conv_name(self->name, "load");
	self->wfd = create_named(self->name, O_WRONLY, 0600,
				 variant->conv_flags, MIN_CAPACITY);
	ASSERT_LE(0, self->wfd);
	ASSERT_LE(LOAD_MAX_LEN, max_payload(MIN_CAPACITY));
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
}

FIXTURE_TEARDOWN(load)
{
	if (self->sh && self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
	close(self->wfd);
	unlink_name(self->name);
}

/* Each variant gets an equal share of CBM_STRESS_SECS, at least a second */
static unsigned int load_secs(void)
{
	struct __fixture_variant_metadata *v;
	unsigned int n = 0, secs;

	for (v = _load_fixture_object.variant; v; v = v->next)
		n++;
	secs = env_secs("CBM_STRESS_SECS", LOAD_SECS) / n;
	return secs ? secs : 1;
}

static __u64 make_tag(unsigned int w, __u64 k)
{
	return (__u64)w << TAG_WRITER_SHIFT | k;
}

/* The length of message k of writer w: TAG_LEN to LOAD_MAX_LEN bytes */
static __u32 load_len(unsigned int w, __u64 k)
{
	return TAG_LEN + mix64(make_tag(w, k)) % (LOAD_MAX_LEN - TAG_LEN + 1);
}

static void load_writer(FIXTURE_DATA(load) *self, unsigned int w, int go)
{
	unsigned char *buf = malloc(LOAD_MAX_LEN);
	__u64 k, tag;
	__u64 rng = getpid();
	__u32 len, i;
	char c;
	int fd;

	CHILD_CHECK(buf != NULL);
	fd = open_named(self->name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	/* end of file on the pipe is the start signal */
	CHILD_CHECK(read(go, &c, 1) == 0);
	for (k = 0; mono_ms() < self->deadline_ms; k++) {
		tag = make_tag(w, k);
		len = load_len(w, k);
		for (i = 0; i < len; i++)
			buf[i] = payload_byte(tag, i);
		CHILD_CHECK(write(fd, buf, len) == (ssize_t)len);
		if (!rng_below(&rng, LOAD_BURST))
			usleep(rng_below(&rng, LOAD_PAUSE_US));
	}
	self->sh->sent[w] = k;
	_exit(0);
}

/* Resizes to a random other size until the deadline */
static void load_resizer(FIXTURE_DATA(load) *self, bool lossless, int go)
{
	__u64 rng = getpid(), cur = MIN_CAPACITY, cap;
	struct cbm_resize rs;
	char c;
	int fd;

	fd = open_named(self->name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(read(go, &c, 1) == 0);
	while (mono_ms() < self->deadline_ms + LOAD_TAIL_MS) {
		do {
			cap = MIN_CAPACITY << rng_below(&rng, LOAD_CAP_STEPS);
		} while (cap == cur);
		if (resize_to(fd, cap, &rs)) {
			/* only a shrink, only in a lossless conversation */
			CHILD_CHECK(errno == EBUSY && lossless && cap < cur);
			self->sh->busy++;
		} else {
			CHILD_CHECK(rs.capacity == cap);
			CHILD_CHECK(cap < cur || rs.evicted == 0);
			self->sh->resizes++;
			self->sh->shrinks += cap < cur;
			self->sh->resize_evicted += rs.evicted;
			cur = cap;
		}
		usleep(rng_below(&rng, 2000));
	}
	self->sh->capacity = cur;
	_exit(0);
}

/*
 * Follows the configuration: each EPOLLPRI must come with a new
 * config_gen, advanced by exactly the resizes done since the last look,
 * and the state CBM_IOC_INFO reports must be consistent.
 */
static void load_poller(FIXTURE_DATA(load) *self, int ready)
{
	struct cbm_info last, info;
	bool stopping;
	int fd, n;

	/* a lossy reader that never reads holds nobody back */
	fd = open_reader(self->name, O_RDONLY, CBM_FD_LOSSY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(read_info(fd, &last) == 0);
	CHILD_CHECK(sync_post(ready) == 0);
	for (;;) {
		stopping = __atomic_load_n(&self->sh->stop, __ATOMIC_ACQUIRE);
		n = poll_events(fd, POLLPRI, stopping ? 0 : LOAD_POLL_MS);
		CHILD_CHECK(n >= 0);
		if (!n) {
			if (stopping)
				break;
			continue;
		}
		CHILD_CHECK(n == POLLPRI);
		CHILD_CHECK(read_info(fd, &info) == 0);
		CHILD_CHECK(info.config_gen > last.config_gen);
		CHILD_CHECK(info.config_gen - last.config_gen ==
			    info.resizes - last.resizes);
		CHILD_CHECK(info.capacity >= MIN_CAPACITY &&
			    info.capacity <= LOAD_MAX_CAP &&
			    !(info.capacity & (info.capacity - 1)));
		CHILD_CHECK(info.used <= info.capacity);
		CHILD_CHECK(info.first_seq + info.msgs == info.next_seq);
		CHILD_CHECK(info.next_seq >= last.next_seq);
		CHILD_CHECK(info.evicted >= last.evicted);
		CHILD_CHECK(info.max_msg_size == max_payload(info.capacity));
		last = info;
		self->sh->pri++;
	}
	self->sh->poller_gen = last.config_gen;
	_exit(0);
}

/* What a reader knows; a writer's counter is exact until a loss */
struct reader {
	enum reader_kind kind;
	bool lossless;
	__u64 seq;		/* record formats: the next sequence number */
	__u64 msgs;		/* messages read, the closing one included */
	__u64 lost;		/* as reported by gaps */
	__u64 epipes;
	__u64 next[LOAD_WRITERS];	/* lowest counter each writer may send */
	bool exact[LOAD_WRITERS];	/* ... and nothing was lost since */
	__u64 count[LOAD_WRITERS];	/* messages read per writer */
	const struct cbm_record *rec;	/* the record being checked */
};

static void __attribute__((noreturn))
reader_fail(const struct reader *r, const char *what, int line)
{
	fprintf(stderr, "# %s:%d: %s reader: %s failed (errno %d)\n",
		__FILE__, line, reader_name(r->kind), what, errno);
	fprintf(stderr, "#   expected seq %llu, read %llu, lost %llu\n",
		(unsigned long long)r->seq, (unsigned long long)r->msgs,
		(unsigned long long)r->lost);
	if (r->rec)
		fprintf(stderr, "#   record: type %u seq %llu len %u lost %llu\n",
			r->rec->type, (unsigned long long)r->rec->seq,
			r->rec->len, (unsigned long long)r->rec->lost);
	_exit(1);
}

#define VERIFY(r, cond) do {						\
	if (!(cond))							\
		reader_fail(r, #cond, __LINE__);			\
} while (0)

static void reader_lost(struct reader *r, __u64 lost)
{
	unsigned int w;

	r->lost += lost;
	for (w = 0; w < LOAD_WRITERS; w++)
		r->exact[w] = false;
}

/* Checks one payload; returns true for the parent's closing message */
static bool check_payload(struct reader *r, const unsigned char *p, size_t len)
{
	unsigned int w;
	__u64 tag, k;

	VERIFY(r, len >= TAG_LEN);
	memcpy(&tag, p, TAG_LEN);
	w = tag >> TAG_WRITER_SHIFT;
	r->msgs++;
	if (w == END_WRITER) {
		VERIFY(r, len == TAG_LEN && tag == make_tag(END_WRITER, 0));
		return true;
	}
	VERIFY(r, w < LOAD_WRITERS);
	k = tag & TAG_COUNTER_MASK;
	/* skipping a message is a loss, and losses are never silent */
	VERIFY(r, r->exact[w] ? k == r->next[w] : k >= r->next[w]);
	VERIFY(r, len == load_len(w, k));
	VERIFY(r, payload_ok(p, len, tag));
	r->next[w] = k + 1;
	r->exact[w] = true;
	r->count[w]++;
	return false;
}

static bool check_record(struct reader *r, const union rec_buf *rb)
{
	const struct cbm_record *rec = &rb->rec;

	r->rec = rec;
	VERIFY(r, rec->seq == r->seq);
	if (rec->type == CBM_RECORD_GAP) {
		VERIFY(r, !r->lossless);
		VERIFY(r, rec->lost > 0 && rec->len == 0 && rec->ts_ns == 0);
		r->seq += rec->lost;
		reader_lost(r, rec->lost);
		return false;
	}
	VERIFY(r, rec->type == CBM_RECORD_MSG && rec->lost == 0);
	r->seq++;
	return check_payload(r, rb->bytes + rec->hdr_len, rec->len);
}

/* Reads one record or payload the way this reader's kind does */
static ssize_t reader_read(struct reader *r, int fd, union rec_buf *rb)
{
	int next_len;
	ssize_t n;

	switch (r->kind) {
	case RD_RECORD:
		return read_record(fd, rb);
	case RD_RECORD_POLL:
		for (;;) {
			VERIFY(r, ioctl(fd, FIONREAD, &next_len) == 0);
			if (next_len)
				break;
			VERIFY(r, poll_events(fd, POLLIN, LOAD_POLL_MS) >= 0);
		}
		/*
		 * A buffer of the size FIONREAD gave is enough even if a
		 * shrink evicts the message meanwhile: a smaller gap comes.
		 */
		n = read(fd, rb->bytes, next_len);
		VERIFY(r, n == next_len ||
			  (!r->lossless && n == (ssize_t)REC_HDR));
		VERIFY(r, rb->rec.hdr_len == REC_HDR &&
			  (size_t)n == REC_HDR + rb->rec.len);
		return n;
	default:
		return read(fd, rb->bytes, sizeof(*rb));
	}
}

static void load_reader(FIXTURE_DATA(load) *self,
			const FIXTURE_VARIANT(load) *variant,
			enum reader_kind kind, int ready)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct cbm_reader_info ri;
	struct cbm_info info;
	struct reader r = { .kind = kind };
	__u64 missed = 0;
	unsigned int w;
	ssize_t n;
	bool end;
	int fd;

	CHILD_CHECK(rb != NULL);
	r.lossless = (variant->conv_flags & CBM_CONV_LOSSLESS) &&
		     kind != RD_PAYLOAD;
	fd = start_reader(self->name, kind, r.lossless, ready);

	do {
		n = reader_read(&r, fd, rb);
		if (kind == RD_PAYLOAD && n < 0 && errno == EPIPE) {
			r.epipes++;
			reader_lost(&r, 0);
			end = false;
			continue;
		}
		VERIFY(&r, n >= 0);
		end = kind == RD_PAYLOAD ? check_payload(&r, rb->bytes, n) :
					   check_record(&r, rb);
	} while (!end);
	r.rec = NULL;

	/* every message was read or counted as lost, exactly */
	VERIFY(&r, read_info(fd, &info) == 0);
	VERIFY(&r, read_rinfo(fd, &ri) == 0);
	VERIFY(&r, ri.cursor == info.next_seq && ri.unread == 0 && ri.gap == 0);
	VERIFY(&r, r.msgs + ri.lost == info.next_seq);
	if (kind == RD_PAYLOAD)
		VERIFY(&r, ri.lost >= r.epipes && !ri.lost == !r.epipes);
	else
		VERIFY(&r, ri.lost == r.lost && r.seq == info.next_seq);
	for (w = 0; w < LOAD_WRITERS; w++) {
		VERIFY(&r, r.count[w] <= self->sh->sent[w]);
		missed += self->sh->sent[w] - r.count[w];
	}
	VERIFY(&r, missed == ri.lost);
	if (r.lossless)
		VERIFY(&r, ri.lost == 0);
	_exit(0);
}

TEST_F_TIMEOUT(load, resize_under_load, LOAD_HARNESS_TIMEOUT)
{
	unsigned int secs = load_secs();
	bool lossless = variant->conv_flags & CBM_CONV_LOSSLESS;
	int go[2], ready[2], i;
	struct cbm_info start, info;
	__u64 total = 0;

	/* helpers die with this process, which ends itself if it hangs */
	alarm(secs + 2 * LOAD_SLACK);
	ASSERT_EQ(0, read_info(self->wfd, &start));
	self->deadline_ms = mono_ms() + secs * 1000ULL;
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(ready));
	for (i = 0; i < LOAD_WRITERS; i++) {
		self->writers[i] = fork_worker(secs + LOAD_SLACK);
		ASSERT_LE(0, self->writers[i]);
		if (self->writers[i] == 0) {
			close(go[1]);
			load_writer(self, i, go[0]);
		}
	}
	self->resizer = fork_worker(secs + LOAD_SLACK);
	ASSERT_LE(0, self->resizer);
	if (self->resizer == 0) {
		close(go[1]);
		load_resizer(self, lossless, go[0]);
	}
	close(go[0]);
	for (i = 0; i < READERS; i++) {
		self->readers[i] = fork_worker(secs + LOAD_SLACK);
		ASSERT_LE(0, self->readers[i]);
		if (self->readers[i] == 0) {
			close(go[1]);
			load_reader(self, variant, i, ready[1]);
		}
	}
	self->poller = fork_worker(secs + LOAD_SLACK);
	ASSERT_LE(0, self->poller);
	if (self->poller == 0) {
		close(go[1]);
		load_poller(self, ready[1]);
	}
	/* readers are bound from sequence number 0 before anyone writes */
	for (i = 0; i < READERS + 1; i++)
		ASSERT_EQ(0, sync_wait(ready[0]));
	close(go[1]);

	for (i = 0; i < LOAD_WRITERS; i++) {
		EXPECT_EQ(0, wait_child(self->writers[i])) TH_LOG("writer %d", i);
		total += self->sh->sent[i];
	}
	EXPECT_EQ(0, wait_child(self->resizer));
	/* the closing message tells readers that no more will come */
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN,
					make_tag(END_WRITER, 0)));
	for (i = 0; i < READERS; i++)
		EXPECT_EQ(0, wait_child(self->readers[i]))
			TH_LOG("reader %d", i);
	__atomic_store_n(&self->sh->stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(0, wait_child(self->poller));

	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(total + 1, info.next_seq);
	EXPECT_EQ(self->sh->capacity, info.capacity);
	EXPECT_EQ(self->sh->resizes, info.resizes);
	EXPECT_EQ(start.config_gen + self->sh->resizes, info.config_gen);
	EXPECT_EQ(info.config_gen, self->sh->poller_gen);
	EXPECT_LE(self->sh->resize_evicted, info.evicted);
	EXPECT_LE(info.used, info.capacity);
	EXPECT_LT(0, self->sh->shrinks);
	EXPECT_LT(self->sh->shrinks, self->sh->resizes);
	EXPECT_LT(0, self->sh->pri);
	TH_LOG("%llu messages in %u s, %llu resizes (%llu shrinks, %llu refused), %llu evicted",
	       (unsigned long long)total, secs,
	       (unsigned long long)self->sh->resizes,
	       (unsigned long long)self->sh->shrinks,
	       (unsigned long long)self->sh->busy,
	       (unsigned long long)info.evicted);
}

TEST_HARNESS_MAIN
