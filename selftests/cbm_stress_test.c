// SPDX-License-Identifier: GPL-2.0
/*
 * cbm stress: writer processes append tagged messages of every size from
 * zero to the largest one a ring holds, through small rings so that the
 * oldest messages are evicted all the time, while reader processes check
 * every record they get:
 *
 * - sequence numbers go up by exactly one, except across a gap record (or,
 *   in payload format, an EPIPE) whose count covers the jump, and every
 *   lost message is counted in CBM_IOC_READER_INFO;
 * - each writer's messages come in the order it wrote them, with the
 *   length, role, flags and bytes it wrote, stamped with its pid and uid;
 * - in a lossless conversation a lossless reader sees no gap at all and
 *   every message of every writer exactly once.
 *
 * CBM_STRESS_SECS (default STRESS_SECS) bounds the whole run; the variants
 * share it.
 */
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

#define WRITERS		4
#define STRESS_SECS	10

/*
 * Seconds a helper may take beyond the writers' deadline: readers drain at
 * most a ring, and the debug kernel under TCG is slow.
 */
#define STRESS_SLACK	120

/* The test bounds itself with alarm(); the harness's timeout only backs it up */
#define STRESS_HARNESS_TIMEOUT	(7 * 24 * 3600)

/*
 * A payload of at least TAG_LEN bytes starts with its tag: the writer's
 * index above TAG_WRITER_SHIFT, the writer's message counter below.
 */
#define TAG_LEN			sizeof(__u64)
#define TAG_WRITER_SHIFT	48
#define TAG_COUNTER_MASK	((1ULL << TAG_WRITER_SHIFT) - 1)

/*
 * Messages sent with CBM_IOC_SEND carry the low bits of the counter in the
 * application flags, so an empty message can be told apart too.
 */
#define FLAGS_COUNTER_SHIFT	16
#define FLAGS_COUNTER_MASK	0xffffULL

/* The parent's closing message uses this writer index */
#define END_WRITER		WRITERS

/* How long a poll() waits before a helper looks again */
#define POLL_MS			1000

/* Bytes of some lengths that a message may have, see plan_msg() */
#define SMALL_SPREAD		120
#define NEAR_MAX_SPREAD		64

enum how { BY_WRITE, BY_WRITEV, BY_SEND };

/* What writer w sends as its message number k */
struct plan {
	__u32 len;
	__u32 role;
	__u32 flags;
	enum how how;
};

/* Written by the writers before they exit, read after they have */
struct shared {
	__u64 sent[WRITERS];
};

FIXTURE(stress) {
	char name[CBM_NAME_MAX];
	int wfd;		/* the parent's file, O_WRONLY: not a reader */
	struct shared *sh;
	pid_t writers[WRITERS];
	pid_t readers[READERS];
	__u32 max;		/* largest payload of the ring */
	__u64 deadline_ms;	/* CLOCK_MONOTONIC end of writing */
};

FIXTURE_VARIANT(stress) {
	__u64 capacity;
	__u32 conv_flags;
};

FIXTURE_VARIANT_ADD(stress, lossy_4k) { .capacity = 4096 };
FIXTURE_VARIANT_ADD(stress, lossy_64k) { .capacity = 65536 };
FIXTURE_VARIANT_ADD(stress, lossless_4k) {
	.capacity = 4096, .conv_flags = CBM_CONV_LOSSLESS,
};
FIXTURE_VARIANT_ADD(stress, lossless_64k) {
	.capacity = 65536, .conv_flags = CBM_CONV_LOSSLESS,
};

/* Each variant gets an equal share of CBM_STRESS_SECS, at least a second */
static unsigned int variant_secs(void)
{
	struct __fixture_variant_metadata *v;
	unsigned int n = 0, secs;

	for (v = _stress_fixture_object.variant; v; v = v->next)
		n++;
	secs = env_secs("CBM_STRESS_SECS", STRESS_SECS) / n;
	return secs ? secs : 1;
}

static __u64 make_tag(unsigned int w, __u64 k)
{
	return (__u64)w << TAG_WRITER_SHIFT | k;
}

/*
 * Message k of writer w, a pure function so readers can check it: mostly
 * small, some medium, some within NEAR_MAX_SPREAD of the largest payload,
 * some empty (those go through CBM_IOC_SEND, whose flags identify them).
 */
static void plan_msg(unsigned int w, __u64 k, __u32 max, struct plan *p)
{
	__u64 h = mix64(make_tag(w, k));
	__u64 r = h >> 8;

	p->how = k % 4 == 0 ? BY_WRITE : k % 4 == 2 ? BY_WRITEV : BY_SEND;
	switch (h % 16) {
	case 0:
		p->len = p->how == BY_SEND ? 0 : TAG_LEN;
		break;
	case 1:
		p->len = max - r % NEAR_MAX_SPREAD;
		break;
	case 2:
	case 3:
		p->len = TAG_LEN + r % (max / 4);
		break;
	default:
		p->len = TAG_LEN + r % SMALL_SPREAD;
		break;
	}
	if (p->how == BY_SEND) {
		p->role = k % __CBM_ROLE_MAX;
		p->flags = (k & FLAGS_COUNTER_MASK) << FLAGS_COUNTER_SHIFT;
	} else {
		p->role = CBM_ROLE_USER;
		p->flags = 0;
	}
}

/* Appends message k of writer w; returns 0 or -1 with errno set */
static int send_planned(int fd, unsigned int w, __u64 k, const struct plan *p,
			unsigned char *buf, __u64 *seq)
{
	struct iovec iov[3];
	__u64 tag = make_tag(w, k);
	size_t i, cut;
	ssize_t n;

	for (i = 0; i < p->len; i++)
		buf[i] = payload_byte(tag, i);
	switch (p->how) {
	case BY_WRITE:
		n = write(fd, buf, p->len);
		break;
	case BY_WRITEV:
		/* three pieces, the middle one possibly empty */
		cut = p->len / 3;
		iov[0].iov_base = buf;
		iov[0].iov_len = cut;
		iov[1].iov_base = buf + cut;
		iov[1].iov_len = k % 3 ? cut : 0;
		iov[2].iov_base = buf + cut + iov[1].iov_len;
		iov[2].iov_len = p->len - cut - iov[1].iov_len;
		n = writev(fd, iov, 3);
		break;
	default:
		return send_msg(fd, p->role, p->flags, buf, p->len, seq);
	}
	if (n < 0)
		return -1;
	if ((size_t)n != p->len) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/*
 * Writers 0 and 1 block when a lossless ring is full; 2 and 3 are
 * non-blocking and wait for EPOLLOUT.
 */
static void run_writer(FIXTURE_DATA(stress) *self, unsigned int w, int go)
{
	unsigned char *buf = malloc(self->max);
	bool nonblock = w >= WRITERS / 2;
	__u64 k, seq = 0, last_seq = 0;
	struct pollfd pfd;
	struct plan p;
	char c;
	int fd;

	CHILD_CHECK(buf != NULL);
	fd = open_named(self->name, O_WRONLY | (nonblock ? O_NONBLOCK : 0));
	CHILD_CHECK(fd >= 0);
	/* end of file on the pipe is the start signal */
	CHILD_CHECK(read(go, &c, 1) == 0);

	for (k = 0; mono_ms() < self->deadline_ms; k++) {
		plan_msg(w, k, self->max, &p);
		while (send_planned(fd, w, k, &p, buf, &seq)) {
			CHILD_CHECK(nonblock && errno == EAGAIN);
			pfd.fd = fd;
			pfd.events = POLLOUT;
			CHILD_CHECK(poll(&pfd, 1, POLL_MS) >= 0);
		}
		/* the sequence numbers a writer gets only go up */
		if (p.how == BY_SEND) {
			CHILD_CHECK(!last_seq || seq > last_seq);
			last_seq = seq;
		}
	}
	self->sh->sent[w] = k;
	_exit(0);
}

/* What a reader knows; a writer's counter is exact until a loss */
struct reader {
	enum reader_kind kind;
	bool lossless;
	pid_t parent;
	const pid_t *writers;
	const struct shared *sh;
	__u32 max;
	__u64 seq;		/* record formats: the next sequence number */
	__u64 msgs;		/* messages read, the closing one included */
	__u64 lost;		/* as reported by gaps */
	__u64 epipes;
	__u64 last_ts;
	__u64 next[WRITERS];	/* lowest counter each writer may send next */
	bool exact[WRITERS];	/* ... and nothing was lost since */
	__u64 count[WRITERS];	/* messages read per writer */
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
		fprintf(stderr,
			"#   record: type %u seq %llu len %u lost %llu pid %u uid %u role %u flags %#x\n",
			r->rec->type, (unsigned long long)r->rec->seq,
			r->rec->len, (unsigned long long)r->rec->lost,
			r->rec->pid, r->rec->uid, r->rec->role, r->rec->flags);
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
	for (w = 0; w < WRITERS; w++)
		r->exact[w] = false;
}

/*
 * Checks message k of writer w against its plan. Counters the reader
 * skipped are lost messages, so none may be skipped while exact; only the
 * payload reader, which cannot attribute empty messages, may skip ones
 * that were empty.
 */
static void check_msg(struct reader *r, unsigned int w, __u64 k,
		      const unsigned char *payload, __u32 len)
{
	struct plan p;
	__u64 j;

	VERIFY(r, k >= r->next[w]);
	if (r->exact[w]) {
		for (j = r->next[w]; j < k; j++) {
			plan_msg(w, j, r->max, &p);
			VERIFY(r, r->kind == RD_PAYLOAD && p.len == 0);
		}
	}
	plan_msg(w, k, r->max, &p);
	VERIFY(r, len == p.len);
	VERIFY(r, payload_ok(payload, len, make_tag(w, k)));
	if (r->rec) {
		VERIFY(r, r->rec->role == p.role);
		VERIFY(r, r->rec->flags == p.flags);
	}
	r->next[w] = k + 1;
	r->exact[w] = true;
	r->count[w]++;
}

static int writer_index(const struct reader *r, __u32 pid)
{
	int w;

	for (w = 0; w < WRITERS; w++)
		if ((__u32)r->writers[w] == pid)
			return w;
	return -1;
}

/* Returns true once the parent's closing message was read */
static bool check_record(struct reader *r, const union rec_buf *rb)
{
	const struct cbm_record *rec = &rb->rec;
	const unsigned char *payload = rb->bytes + rec->hdr_len;
	__u64 tag = 0, k;
	int w;

	r->rec = rec;
	VERIFY(r, rec->seq == r->seq);
	if (rec->type == CBM_RECORD_GAP) {
		VERIFY(r, !r->lossless);
		VERIFY(r, rec->lost > 0 && rec->len == 0 && rec->ts_ns == 0);
		r->seq += rec->lost;
		reader_lost(r, rec->lost);
		return false;
	}
	VERIFY(r, rec->type == CBM_RECORD_MSG);
	VERIFY(r, rec->lost == 0);
	VERIFY(r, rec->uid == geteuid());
	VERIFY(r, rec->ts_ns >= r->last_ts);
	r->last_ts = rec->ts_ns;
	r->seq++;
	r->msgs++;
	if (rec->len >= TAG_LEN)
		memcpy(&tag, payload, TAG_LEN);

	if ((pid_t)rec->pid == r->parent) {
		VERIFY(r, rec->len == TAG_LEN && tag == make_tag(END_WRITER, 0));
		return true;
	}
	w = writer_index(r, rec->pid);
	VERIFY(r, w >= 0);
	if (rec->len >= TAG_LEN) {
		VERIFY(r, tag >> TAG_WRITER_SHIFT == (__u64)w);
		k = tag & TAG_COUNTER_MASK;
	} else {
		/* an empty message: the low counter bits are in its flags */
		k = rec->flags >> FLAGS_COUNTER_SHIFT;
		k = r->next[w] + ((k - r->next[w]) & FLAGS_COUNTER_MASK);
	}
	check_msg(r, w, k, payload, rec->len);
	return false;
}

/* Returns true once the parent's closing message was read */
static bool check_payload(struct reader *r, const unsigned char *buf,
			  ssize_t n)
{
	__u64 tag;
	unsigned int w;

	r->msgs++;
	/* an empty message cannot be attributed; check_msg() allows for it */
	if (n == 0)
		return false;
	VERIFY(r, n >= (ssize_t)TAG_LEN);
	memcpy(&tag, buf, TAG_LEN);
	w = tag >> TAG_WRITER_SHIFT;
	if (w == END_WRITER) {
		VERIFY(r, n == TAG_LEN && tag == make_tag(END_WRITER, 0));
		return true;
	}
	VERIFY(r, w < WRITERS);
	check_msg(r, w, tag & TAG_COUNTER_MASK, buf, n);
	return false;
}

/* Reads one record or payload the way this reader's kind does */
static ssize_t reader_read(struct reader *r, int fd, union rec_buf *rb)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
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
			VERIFY(r, poll(&pfd, 1, POLL_MS) >= 0);
		}
		/*
		 * A buffer of exactly the size FIONREAD gave is enough: if
		 * the message is evicted meanwhile, a smaller gap comes.
		 */
		n = read(fd, rb->bytes, next_len);
		if (n != next_len && !(!r->lossless && n == (ssize_t)REC_HDR))
			fprintf(stderr, "#   read %zd of FIONREAD %d\n", n,
				next_len);
		VERIFY(r, n == next_len ||
			  (!r->lossless && n == (ssize_t)REC_HDR));
		VERIFY(r, rb->rec.hdr_len == REC_HDR &&
			  (size_t)n == REC_HDR + rb->rec.len);
		return n;
	default:
		return read(fd, rb->bytes, sizeof(*rb));
	}
}

static void run_reader(FIXTURE_DATA(stress) *self,
		       const FIXTURE_VARIANT(stress) *variant,
		       enum reader_kind kind, int ready)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	struct cbm_reader_info ri;
	struct cbm_info info;
	struct reader r = {
		.kind = kind,
		.parent = getppid(),
		.writers = self->writers,
		.sh = self->sh,
		.max = self->max,
	};
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
			VERIFY(&r, !r.lossless);
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

	/* nothing was lost silently: every message was read or counted */
	VERIFY(&r, read_info(fd, &info) == 0);
	VERIFY(&r, read_rinfo(fd, &ri) == 0);
	VERIFY(&r, ri.cursor == info.next_seq && ri.unread == 0 && ri.gap == 0);
	VERIFY(&r, r.msgs + ri.lost == info.next_seq);
	if (kind == RD_PAYLOAD)
		VERIFY(&r, ri.lost >= r.epipes);
	else
		VERIFY(&r, ri.lost == r.lost && r.seq == info.next_seq);
	if (r.lossless) {
		VERIFY(&r, ri.lost == 0);
		for (w = 0; w < WRITERS; w++)
			VERIFY(&r, r.count[w] == r.sh->sent[w]);
	}
	_exit(0);
}

FIXTURE_SETUP(stress)
{
	conv_name(self->name, "stress");
	self->wfd = create_named(self->name, O_WRONLY, 0600,
				 variant->conv_flags, variant->capacity);
	ASSERT_LE(0, self->wfd);
	self->max = max_payload(variant->capacity);
	ASSERT_LE(TAG_LEN + NEAR_MAX_SPREAD, self->max);
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
}

FIXTURE_TEARDOWN(stress)
{
	if (self->sh && self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
	close(self->wfd);
	unlink_name(self->name);
}

TEST_F_TIMEOUT(stress, writers_and_readers, STRESS_HARNESS_TIMEOUT)
{
	unsigned int secs = variant_secs();
	int go[2], ready[2], i, status;
	struct cbm_info info;
	__u64 total = 0;

	/* helpers die with this process, which ends itself if it hangs */
	alarm(secs + 2 * STRESS_SLACK);
	self->deadline_ms = mono_ms() + secs * 1000ULL;
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(ready));
	for (i = 0; i < WRITERS; i++) {
		self->writers[i] = fork_worker(secs + STRESS_SLACK);
		ASSERT_LE(0, self->writers[i]);
		if (self->writers[i] == 0) {
			close(go[1]);
			run_writer(self, i, go[0]);
		}
	}
	close(go[0]);
	for (i = 0; i < READERS; i++) {
		self->readers[i] = fork_worker(secs + STRESS_SLACK);
		ASSERT_LE(0, self->readers[i]);
		if (self->readers[i] == 0) {
			close(go[1]);
			run_reader(self, variant, i, ready[1]);
		}
	}
	/* readers are bound from sequence number 0 before anyone writes */
	for (i = 0; i < READERS; i++)
		ASSERT_EQ(0, sync_wait(ready[0]));
	close(go[1]);

	for (i = 0; i < WRITERS; i++) {
		status = wait_child(self->writers[i]);
		EXPECT_EQ(0, status) TH_LOG("writer %d", i);
		total += self->sh->sent[i];
	}
	/* the closing message tells readers that no more will come */
	ASSERT_EQ(TAG_LEN, write_tagged(self->wfd, TAG_LEN,
					make_tag(END_WRITER, 0)));
	for (i = 0; i < READERS; i++)
		EXPECT_EQ(0, wait_child(self->readers[i]))
			TH_LOG("reader %d", i);

	ASSERT_EQ(0, read_info(self->wfd, &info));
	EXPECT_EQ(total + 1, info.next_seq);
	EXPECT_LE(info.used, info.capacity);
	TH_LOG("%llu messages in %u s, %llu evicted", (unsigned long long)total,
	       secs, (unsigned long long)info.evicted);
}

TEST_HARNESS_MAIN
