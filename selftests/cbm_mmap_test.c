// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: reading a conversation in place through mmap(), as the uapi
 * header's "Zero-copy reading" describes and userspace/lib/cbm_map.h
 * implements.
 *
 * Message n of a test is tagged n (payload_byte()), and its length, role,
 * flags and token count are derived from n, so a reader checks every byte
 * of every record it takes from the map without being told what was sent.
 * The racing tests run writers and resizers in helper processes while the
 * test process reads the map, and check that every message is read intact
 * exactly once or falls inside a gap the reader was told of.
 */
#include <sched.h>
#include <sys/statvfs.h>

#include "kselftest_harness.h"
#include "cbm_util.h"
#include "cbm_map.h"

#define TAG_LEN			sizeof(__u64)

/* How long an idle reader's cbm_map_wait() sleeps before it looks again */
#define POLL_MS			100

/* The short wait of the timeout test */
#define SHORT_WAIT_MS		100

/* The "hundreds of thousands" of map.many_records, per ring size */
#define MANY_RECORDS		300000

/* The acceptance test: this many records with a concurrent writer */
#define MILLION_RECORDS		1000000
#define MILLION_CAPACITY	(1 << 20)
#define MILLION_BATCH		64

/*
 * The debug kernel (KASAN, lockdep) under TCG appends ten times more
 * slowly; the long tests divide their counts by this there (CBM_KERNEL).
 */
#define DEBUG_SLOWDOWN		4

/* Small messages: a tag and up to 56 bytes more */
#define SMALL_MAX_LEN		64

/* Seconds the writer of the tiny-ring race hammers it */
#define HAMMER_SECS		3
/* The hammered reader stops for STALL_US every STALL_EVERY records */
#define STALL_EVERY		2048
#define STALL_US		2000
/* It checks one record in RECHECK_EVERY this many more times */
#define RECHECK_EVERY		16
#define RECHECKS		8

/* The resize race: seconds, ring sizes MIN_CAPACITY << 0..RACE_STEPS - 1 */
#define RACE_SECS		3
#define RACE_STEPS		5
#define RACE_MAX_LEN		300
#define RACE_BATCH		8
/* The resizer waits up to this long between two resizes */
#define RESIZE_PAUSE_US		2000

/* Helpers of the long tests may live this long, their test a bit longer */
#define WORKER_SECS		240
#define LONG_TIMEOUT		300

/* A larger struct's tail, for the size rules of CBM_IOC_MAP_INFO */
#define INFO_TAIL		16

static bool debug_kernel(void)
{
	const char *k = getenv("CBM_KERNEL");

	return k && !strcmp(k, "debug");
}

/* @count on the stock kernel, a fraction of it on the debug kernel */
static __u64 scaled(__u64 count)
{
	return debug_kernel() ? count / DEBUG_SLOWDOWN : count;
}

/* CBM_IOC_MAP_INFO into a junk-filled *mi; returns what ioctl() returned */
static int map_info(int fd, struct cbm_map_info *mi)
{
	memset(mi, JUNK, sizeof(*mi));
	mi->size = sizeof(*mi);
	return ioctl(fd, CBM_IOC_MAP_INFO, mi);
}

/* A read-only shared mapping of @len bytes of @fd, or MAP_FAILED */
static unsigned char *map_ro(int fd, size_t len)
{
	return mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
}

/* Maps all of @fd as CBM_IOC_MAP_INFO describes it now, in *mi */
static unsigned char *map_whole(int fd, struct cbm_map_info *mi)
{
	if (map_info(fd, mi))
		return MAP_FAILED;
	return map_ro(fd, mi->map_size);
}

/* The record at free-running position @pos of a whole mapping */
static const unsigned char *rec_at(const unsigned char *base,
				   const struct cbm_map_info *mi, __u64 pos)
{
	return base + mi->data_offset + (pos & (mi->capacity - 1));
}

/* Whether @len bytes at @p are all zero */
static bool all_zero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void expect_map_fails(struct __test_metadata *_metadata, int fd,
			     size_t len, int prot, int flags, off_t off,
			     int err)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	EXPECT_EQ(MAP_FAILED, p)
		TH_LOG("len %zu prot %#x flags %#x offset %lld", len, prot,
		       flags, (long long)off);
	if (p != MAP_FAILED) {
		munmap(p, len);
		return;
	}
	EXPECT_EQ(err, errno)
		TH_LOG("len %zu prot %#x flags %#x offset %lld", len, prot,
		       flags, (long long)off);
}

/* The layout CBM_IOC_MAP_INFO must give for a ring of @cap bytes */
static void expect_layout(struct __test_metadata *_metadata,
			  const struct cbm_map_info *mi, __u64 cap)
{
	__u64 page = sysconf(_SC_PAGESIZE);

	EXPECT_EQ(cap, mi->capacity);
	EXPECT_EQ(0, mi->header_offset);
	EXPECT_EQ(page, mi->header_size);
	EXPECT_EQ(page, mi->data_offset);
	EXPECT_EQ(2 * cap, mi->data_size);
	EXPECT_EQ(mi->data_offset + mi->data_size, mi->map_size);
	EXPECT_NE(0, mi->generation);
	EXPECT_LE(mi->tail, mi->head);
	EXPECT_LE(mi->head - mi->tail, cap);
	EXPECT_LE(mi->first_seq, mi->next_seq);
}

/*
 * What the messages of a test look like: message n carries tag n and is
 * len_of(n) bytes long, with a role, flags and a token count that are
 * functions of n as well.
 */
struct msg_spec {
	__u32 min_len;
	__u32 max_len;
};

static __u32 len_of(const struct msg_spec *sp, __u64 seq)
{
	return sp->min_len + mix64(seq) % (sp->max_len - sp->min_len + 1);
}

static __u32 role_of(__u64 seq)
{
	return seq % __CBM_ROLE_MAX;
}

static __u32 flags_of(__u64 seq)
{
	return (__u32)mix64(~seq) & CBM_MSG_APP_MASK;
}

static __u32 tokens_of(__u64 seq)
{
	return (__u32)seq * 3 + 1;
}

/* Appends the messages of a msg_spec with CBM_IOC_SEND_BATCH */
struct sender {
	int fd;
	struct msg_spec spec;
	unsigned int batch;		/* messages per call at most */
	struct cbm_batch_msg *msgs;
	unsigned char *buf;		/* their payloads */
};

static int sender_init(struct sender *s, int fd, const struct msg_spec *spec,
		       unsigned int batch)
{
	s->fd = fd;
	s->spec = *spec;
	s->batch = batch;
	s->msgs = calloc(batch, sizeof(*s->msgs));
	s->buf = malloc((size_t)batch * spec->max_len);
	return s->msgs && s->buf ? 0 : -1;
}

static void sender_free(struct sender *s)
{
	free(s->msgs);
	free(s->buf);
}

/*
 * Appends messages @from to @to - 1, resubmitting what a short batch left.
 * Returns 0, or -1 with errno set by the ioctl, or to EBADMSG if a message
 * did not get the sequence number it is tagged with.
 */
static int sender_send(struct sender *s, __u64 from, __u64 to)
{
	unsigned char *p;
	__u32 i, j, n, len;
	__u64 seq, first;
	int ret;

	while (from < to) {
		n = to - from < s->batch ? to - from : s->batch;
		p = s->buf;
		for (i = 0; i < n; i++) {
			seq = from + i;
			len = len_of(&s->spec, seq);
			for (j = 0; j < len; j++)
				p[j] = payload_byte(seq, j);
			s->msgs[i].flags = flags_of(seq);
			s->msgs[i].role = role_of(seq);
			s->msgs[i].len = len;
			s->msgs[i].tokens = tokens_of(seq);
			s->msgs[i].data = (uintptr_t)p;
			p += len;
		}
		first = ~from;
		ret = send_batch(s->fd, s->msgs, n, &first);
		if (ret < 0)
			return -1;
		if (ret == 0 || (__u32)ret > n || first != from) {
			errno = EBADMSG;
			return -1;
		}
		from += ret;
	}
	return 0;
}

/*
 * A map reader that checks every record against its msg_spec, with its
 * own count of what it read and lost next to cbm_map.h's.
 */
struct tally {
	struct cbm_map m;
	struct msg_spec spec;
	__u64 next;		/* sequence number expected next */
	__u64 seen;		/* messages read intact */
	__u64 lost;		/* messages reported in gaps */
	__u64 gaps;
	__u64 stale;		/* records overwritten while being checked */
	__u64 remaps;		/* generations the reader moved to */
	__u64 gen;
	const char *why;	/* what was wrong with the record below */
	struct cbm_record bad;
};

static int tally_open(struct tally *t, int fd, enum cbm_map_start start,
		      const struct msg_spec *spec)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->spec = *spec;
	ret = cbm_map_open(&t->m, fd, start);
	t->next = t->m.seq;
	t->gen = t->m.gen;
	return ret;
}

/* Returns NULL if @h and @payload are message t->next, or what is wrong */
static const char *rec_problem(const struct tally *t,
			       const struct cbm_record *h,
			       const unsigned char *payload)
{
	__u64 seq = t->next;

	if (h->type != CBM_RECORD_MSG)
		return "type";
	if (h->hdr_len != REC_HDR)
		return "hdr_len";
	if (h->seq != seq)
		return "seq";
	if (h->len != len_of(&t->spec, seq))
		return "len";
	if (h->lost)
		return "lost";
	if (h->role != role_of(seq))
		return "role";
	if (h->flags != flags_of(seq))
		return "flags";
	if (h->tokens != tokens_of(seq))
		return "tokens";
	if (!payload_ok(payload, h->len, seq))
		return "payload";
	return NULL;
}

/*
 * Takes the next record: with cbm_map_read() if @copy, else in place with
 * cbm_map_peek() and cbm_map_release(), checking the payload @rechecks
 * more times in between to give a writer time to overwrite it. A record
 * that release says was overwritten is dropped, as the protocol says; one
 * it says was intact must be right.
 *
 * Returns 1 if it took a record or a gap or dropped an overwritten record,
 * 0 if there is nothing new, or a negative errno: cbm_map.h's, or -EBADMSG
 * with t->why set.
 */
static int tally_step(struct tally *t, bool copy, unsigned int rechecks)
{
	static union rec_buf buf;
	struct cbm_map_rec r;
	const char *why;
	unsigned int i;
	int ret;

	t->why = NULL;
	if (copy) {
		ret = cbm_map_read(&t->m, &r.hdr, buf.bytes, sizeof(buf));
		r.payload = buf.bytes;
	} else {
		ret = cbm_map_peek(&t->m, &r);
	}
	if (t->m.gen != t->gen) {
		t->gen = t->m.gen;
		t->remaps++;
	}
	if (ret <= 0)
		return ret;
	t->bad = r.hdr;
	if (r.hdr.type == CBM_RECORD_GAP) {
		if (r.hdr.seq != t->next || !r.hdr.lost || r.hdr.len) {
			t->why = "gap";
			return -EBADMSG;
		}
		t->next += r.hdr.lost;
		t->lost += r.hdr.lost;
		t->gaps++;
		return 1;
	}
	why = rec_problem(t, &r.hdr, r.payload);
	for (i = 0; i < rechecks && !why; i++)
		why = rec_problem(t, &r.hdr, r.payload);
	if (!copy && cbm_map_release(&t->m)) {
		t->stale++;
		return 1;
	}
	if (why) {
		t->why = why;
		return -EBADMSG;
	}
	t->seen++;
	t->next++;
	return 1;
}

/* Takes everything there is; returns 0 or the failing step's error */
static int tally_drain(struct tally *t, bool copy)
{
	int ret;

	while ((ret = tally_step(t, copy, 0)) > 0)
		;
	return ret;
}

/* Tells what went wrong with a step that returned @ret */
static void tally_explain(const struct tally *t, int ret)
{
	fprintf(stderr, "# map reader: %s (%d: %s) at seq %llu, %llu read, %llu lost\n",
		t->why ? t->why : "error", ret, strerror(-ret),
		(unsigned long long)t->next, (unsigned long long)t->seen,
		(unsigned long long)t->lost);
	if (t->why)
		fprintf(stderr, "#   record: type %u hdr_len %u seq %llu len %u lost %llu role %u flags %#x tokens %u\n",
			t->bad.type, t->bad.hdr_len,
			(unsigned long long)t->bad.seq, t->bad.len,
			(unsigned long long)t->bad.lost, t->bad.role,
			t->bad.flags, t->bad.tokens);
}

/* In a helper process: exits with 1 unless the step's @ret is >= 0 */
static void tally_child_ok(const struct tally *t, int ret)
{
	if (ret >= 0)
		return;
	tally_explain(t, ret);
	_exit(1);
}

/* The library's own counts agree with the tally's */
static void expect_tally(struct __test_metadata *_metadata,
			 const struct tally *t)
{
	EXPECT_EQ(t->next, t->m.seq);
	EXPECT_EQ(t->lost, t->m.lost);
}

/* Written by the helpers of the racing tests, read by the test process */
struct shared {
	__u64 sent;		/* messages the writer appended, once done */
	__u64 resizes;		/* resizes the resizer did, once stopped */
	int done;		/* the writer has finished: sent is final */
	int stop;		/* the resizer stops once set */
};

/*
 * In a helper: appends messages 0 to @count - 1 of @spec to @name, @batch
 * at a time, or fewer if @secs (non-zero) run out first; then publishes
 * how many.
 */
static void writer_main(const char *name, struct shared *sh,
			const struct msg_spec *spec, unsigned int batch,
			__u64 count, unsigned int secs)
{
	__u64 deadline = mono_ms() + secs * 1000ULL, seq, n;
	struct sender s;
	int fd;

	fd = open_named(name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sender_init(&s, fd, spec, batch) == 0);
	for (seq = 0; seq < count && (!secs || mono_ms() < deadline);
	     seq += n) {
		n = count - seq < batch ? count - seq : batch;
		CHILD_CHECK(sender_send(&s, seq, seq + n) == 0);
	}
	sh->sent = seq;
	__atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
	_exit(0);
}

/* In a helper: resizes @name to random sizes until told to stop */
static void resizer_main(const char *name, struct shared *sh)
{
	__u64 rng = getpid(), cap;
	int fd;

	fd = open_named(name, O_WRONLY);
	CHILD_CHECK(fd >= 0);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		cap = MIN_CAPACITY << rng_below(&rng, RACE_STEPS);
		CHILD_CHECK(resize_to(fd, cap, NULL) == 0);
		sh->resizes++;
		usleep(rng_below(&rng, RESIZE_PAUSE_US));
	}
	_exit(0);
}

/*
 * Reads the map until the writer is done and everything it sent was taken;
 * copies one record in two, rechecks some and stalls now and then if
 * @stall. Returns 0 or the failing step's error (-ESRCH if what it took
 * does not add up to what was sent).
 */
static int tally_follow(struct tally *t, const struct shared *sh, bool stall)
{
	__u64 rng = 1, taken = 0;
	bool done;
	int ret;

	for (;;) {
		/* a step that starts after the writer is done sees it all */
		done = __atomic_load_n(&sh->done, __ATOMIC_ACQUIRE);
		ret = tally_step(t, rng_below(&rng, 2),
				 rng_below(&rng, RECHECK_EVERY) ? 0 : RECHECKS);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			if (stall && !(++taken % STALL_EVERY))
				usleep(STALL_US);
			continue;
		}
		if (done)
			return t->next == sh->sent ? 0 : -ESRCH;
		ret = cbm_map_wait(&t->m, POLL_MS);
		if (ret < 0)
			return ret;
	}
}

/*
 * One 4 KiB conversation, for the rules of mmap() and CBM_IOC_MAP_INFO and
 * for what a mapping does over unlink, fork and namespaces.
 */
FIXTURE(single) {
	char name[CBM_NAME_MAX];
	int fd;		/* O_RDWR | O_NONBLOCK, the creator */
	size_t page;
	struct cbm_map_info mi;
	struct msg_spec spec;
	pid_t child;
};

FIXTURE_SETUP(single)
{
	self->fd = -1;
	conv_name(self->name, "single");
	self->page = sysconf(_SC_PAGESIZE);
	self->spec.min_len = TAG_LEN;
	self->spec.max_len = SMALL_MAX_LEN;
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				MIN_CAPACITY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, map_info(self->fd, &self->mi));
	ASSERT_EQ(MIN_CAPACITY, self->mi.capacity);
}

FIXTURE_TEARDOWN(single)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
}

/* Appends messages @from to @to - 1 of the fixture's spec */
static void single_send(struct __test_metadata *_metadata,
			FIXTURE_DATA(single) *self, __u64 from, __u64 to)
{
	struct sender s;

	ASSERT_EQ(0, sender_init(&s, self->fd, &self->spec, 16));
	ASSERT_EQ(0, sender_send(&s, from, to)) TH_LOG("%s", strerror(errno));
	sender_free(&s);
}

/*
 * Writable or executable mappings fail with EPERM, whatever the length,
 * shared or private, on a file opened for writing as well.
 */
TEST_F(single, write_or_exec_eperm)
{
	size_t lens[] = { self->page, self->mi.map_size };
	struct statvfs st;
	unsigned int i;
	int rfd;

	/* on a noexec /dev the VFS would refuse PROT_EXEC by itself */
	ASSERT_EQ(0, statvfs(CBM_DEV, &st));
	ASSERT_FALSE(st.f_flag & ST_NOEXEC);
	rfd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, rfd);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		expect_map_fails(_metadata, self->fd, lens[i],
				 PROT_READ | PROT_WRITE, MAP_SHARED, 0, EPERM);
		expect_map_fails(_metadata, self->fd, lens[i],
				 PROT_READ | PROT_WRITE, MAP_PRIVATE, 0, EPERM);
		expect_map_fails(_metadata, self->fd, lens[i], PROT_WRITE,
				 MAP_PRIVATE, 0, EPERM);
		expect_map_fails(_metadata, self->fd, lens[i],
				 PROT_READ | PROT_EXEC, MAP_SHARED, 0, EPERM);
		expect_map_fails(_metadata, self->fd, lens[i], PROT_EXEC,
				 MAP_PRIVATE, 0, EPERM);
		/* private writable maps pass the VFS on a read-only file */
		expect_map_fails(_metadata, rfd, lens[i],
				 PROT_READ | PROT_WRITE, MAP_PRIVATE, 0, EPERM);
		expect_map_fails(_metadata, rfd, lens[i],
				 PROT_READ | PROT_EXEC, MAP_SHARED, 0, EPERM);
	}
	close(rfd);
}

/*
 * The VFS refuses a file not opened for reading, and a shared writable
 * map of a file not opened for writing, with EACCES.
 */
TEST_F(single, vfs_eacces)
{
	size_t lens[] = { self->page, self->mi.map_size };
	unsigned char *p;
	unsigned int i;
	int wfd, rfd;

	wfd = open_named(self->name, O_WRONLY);
	ASSERT_LE(0, wfd);
	rfd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, rfd);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		expect_map_fails(_metadata, wfd, lens[i], PROT_READ,
				 MAP_SHARED, 0, EACCES);
		expect_map_fails(_metadata, wfd, lens[i], PROT_READ,
				 MAP_PRIVATE, 0, EACCES);
		expect_map_fails(_metadata, rfd, lens[i],
				 PROT_READ | PROT_WRITE, MAP_SHARED, 0, EACCES);
		/* the same file maps for reading */
		p = map_ro(rfd, lens[i]);
		ASSERT_NE(MAP_FAILED, p);
		EXPECT_EQ(sizeof(struct cbm_map_header),
			  ((const struct cbm_map_header *)p)->hdr_size);
		munmap(p, lens[i]);
	}
	close(wfd);
	close(rfd);
}

/*
 * mprotect() cannot add write or execute permission (EACCES), to the whole
 * mapping or a part, shared or private; taking away and giving back read
 * permission works.
 */
TEST_F(single, mprotect_eacces)
{
	struct {
		bool rdonly;
		int flags;
	} cases[] = {
		{ false, MAP_SHARED }, { false, MAP_PRIVATE },
		{ true, MAP_PRIVATE }, { true, MAP_SHARED },
	};
	size_t lens[] = { self->page, self->mi.map_size };
	const struct cbm_map_header *hdr;
	unsigned int i, j;
	unsigned char *p;
	int fd, rfd;

	rfd = open_named(self->name, O_RDONLY);
	ASSERT_LE(0, rfd);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		fd = cases[i].rdonly ? rfd : self->fd;
		for (j = 0; j < ARRAY_SIZE(lens); j++) {
			p = mmap(NULL, lens[j], PROT_READ, cases[i].flags, fd,
				 0);
			ASSERT_NE(MAP_FAILED, p) TH_LOG("case %u", i);
			EXPECT_EQ(-1, mprotect(p, lens[j],
					       PROT_READ | PROT_WRITE));
			EXPECT_EQ(EACCES, errno) TH_LOG("case %u", i);
			EXPECT_EQ(-1, mprotect(p, lens[j], PROT_WRITE));
			EXPECT_EQ(EACCES, errno) TH_LOG("case %u", i);
			EXPECT_EQ(-1, mprotect(p, lens[j],
					       PROT_READ | PROT_EXEC));
			EXPECT_EQ(EACCES, errno) TH_LOG("case %u", i);
			EXPECT_EQ(-1, mprotect(p + lens[j] - self->page,
					       self->page,
					       PROT_READ | PROT_WRITE));
			EXPECT_EQ(EACCES, errno) TH_LOG("case %u", i);
			EXPECT_EQ(0, mprotect(p, lens[j], PROT_NONE));
			EXPECT_EQ(0, mprotect(p, lens[j], PROT_READ));
			hdr = (const void *)p;
			EXPECT_EQ(sizeof(*hdr), hdr->hdr_size);
			EXPECT_EQ(MIN_CAPACITY, hdr->capacity);
			munmap(p, lens[j]);
		}
	}
	close(rfd);
}

/* Storing into the header page or either copy of the ring kills a child */
TEST_F(single, store_kills_child)
{
	const struct cbm_map_header *hdr;
	unsigned char *p;
	size_t offs[] = {
		0, self->mi.data_offset,
		self->mi.data_offset + self->mi.capacity,
	};
	unsigned int i;

	single_send(_metadata, self, 0, 3);
	p = map_ro(self->fd, self->mi.map_size);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		unsigned char before = p[offs[i]];

		self->child = fork_child();
		ASSERT_LE(0, self->child);
		if (self->child == 0) {
			*(volatile unsigned char *)(p + offs[i]) = ~before;
			_exit(0);
		}
		EXPECT_EQ(128 + SIGSEGV, wait_child(self->child))
			TH_LOG("offset %zu", offs[i]);
		self->child = 0;
		EXPECT_EQ(before, p[offs[i]]);
	}
	hdr = (const void *)p;
	EXPECT_EQ(sizeof(*hdr), hdr->hdr_size);
	munmap(p, self->mi.map_size);
}

/*
 * Not even a forced write (what ptrace and /proc/PID/mem do) gets through,
 * shared or private: no writable copy-on-write pages either.
 */
TEST_F(single, forced_write_fails)
{
	int flags[] = { MAP_SHARED, MAP_PRIVATE };
	size_t offs[] = { 0, self->mi.data_offset };
	unsigned int i, j;
	unsigned char *p, c = JUNK;
	ssize_t n;
	int mem;

	single_send(_metadata, self, 0, 3);
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, mem);
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		p = mmap(NULL, self->mi.map_size, PROT_READ, flags[i],
			 self->fd, 0);
		ASSERT_NE(MAP_FAILED, p);
		for (j = 0; j < ARRAY_SIZE(offs); j++) {
			n = pwrite(mem, &c, 1, (off_t)(uintptr_t)(p + offs[j]));
			EXPECT_EQ(-1, n) TH_LOG("flags %#x offset %zu",
						flags[i], offs[j]);
			EXPECT_EQ(EIO, errno);
			EXPECT_NE(c, p[offs[j]]);
		}
		munmap(p, self->mi.map_size);
	}
	close(mem);
}

/* VM_DONTEXPAND: growing a mapping with mremap() fails with EFAULT */
TEST_F(single, mremap_grow_fails)
{
	size_t lens[] = { self->page, self->mi.map_size };
	const struct cbm_map_header *hdr;
	unsigned int i;
	unsigned char *p;
	void *q;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		p = map_ro(self->fd, lens[i]);
		ASSERT_NE(MAP_FAILED, p);
		q = mremap(p, lens[i], lens[i] + self->page, MREMAP_MAYMOVE);
		EXPECT_EQ(MAP_FAILED, q);
		EXPECT_EQ(EFAULT, errno);
		q = mremap(p, lens[i], lens[i] + self->page, 0);
		EXPECT_EQ(MAP_FAILED, q);
		EXPECT_EQ(EFAULT, errno);
		hdr = (const void *)p;
		EXPECT_EQ(sizeof(*hdr), hdr->hdr_size);
		munmap(p, lens[i]);
	}
}

/*
 * The struct's size rules: shorter than the first version is EINVAL and
 * leaves it alone; a longer one is filled and its tail zeroed.
 */
TEST_F(single, map_info_size)
{
	__u32 short_sizes[] = { 0, sizeof(__u32),
				struct_end(struct cbm_map_info, next_seq) - 8 };
	union {
		struct cbm_map_info mi;
		unsigned char bytes[sizeof(struct cbm_map_info) + INFO_TAIL];
	} u, junk;
	unsigned char *tail = u.bytes + sizeof(u.mi);
	unsigned int i;
	int ret, fill;

	for (i = 0; i < ARRAY_SIZE(short_sizes); i++) {
		memset(&u, JUNK, sizeof(u));
		u.mi.size = short_sizes[i];
		junk = u;
		ret = ioctl(self->fd, CBM_IOC_MAP_INFO, &u);
		EXPECT_EQ(-1, ret) TH_LOG("size %u", short_sizes[i]);
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(0, memcmp(&u, &junk, sizeof(u)));
	}
	/* a longer struct, with a zero tail and a junk one */
	for (fill = 0; fill <= JUNK; fill += JUNK) {
		memset(&u, JUNK, sizeof(u));
		memset(tail, fill, INFO_TAIL);
		u.mi.size = sizeof(u);
		ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_MAP_INFO, &u))
			TH_LOG("tail %#x", fill);
		EXPECT_TRUE(all_zero(tail, INFO_TAIL));
		expect_layout(_metadata, &u.mi, MIN_CAPACITY);
		EXPECT_EQ(0, u.mi.flags);
		EXPECT_EQ(self->mi.generation, u.mi.generation);
		EXPECT_EQ(0, u.mi.head);
		EXPECT_EQ(0, u.mi.tail);
		EXPECT_EQ(0, u.mi.first_seq);
		EXPECT_EQ(0, u.mi.next_seq);
		EXPECT_EQ(0, u.mi.skipped);
	}
	/* The first version, without @skipped, is still accepted */
	memset(&u, JUNK, sizeof(u));
	u.mi.size = struct_end(struct cbm_map_info, next_seq);
	ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_MAP_INFO, &u));
	EXPECT_EQ(0, u.mi.next_seq);
	EXPECT_EQ(JUNK * 0x0101010101010101ULL, u.mi.skipped);
	ret = ioctl(self->fd, CBM_IOC_MAP_INFO, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
}

/* CBM_IOC_MAP_INFO needs a file opened for reading */
TEST_F(single, map_info_ebadf)
{
	struct cbm_map_info mi, junk;
	int wfd, ret;

	wfd = open_named(self->name, O_WRONLY);
	ASSERT_LE(0, wfd);
	ret = map_info(wfd, &mi);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBADF, errno);
	memset(&junk, JUNK, sizeof(junk));
	junk.size = sizeof(junk);
	EXPECT_EQ(0, memcmp(&mi, &junk, sizeof(mi)));
	close(wfd);
}

/*
 * mmap() needs a bound file: it cannot bind one to ``default`` itself,
 * and leaves it unbound. CBM_IOC_MAP_INFO binds like the other ioctls, so
 * cbm_map_open() works on a file that was never bound.
 */
TEST_F(single, unbound_file)
{
	struct cbm_info info;
	struct cbm_map m;
	int ufd, ret;

	ufd = cbm_open(O_RDONLY);
	ASSERT_LE(0, ufd);
	expect_map_fails(_metadata, ufd, self->page, PROT_READ, MAP_SHARED, 0,
			 EINVAL);
	expect_map_fails(_metadata, ufd, self->mi.map_size, PROT_READ,
			 MAP_SHARED, 0, EINVAL);
	ASSERT_EQ(0, cbm_bind(ufd, self->name, 0, 0, 0, 0));
	close(ufd);

	ufd = cbm_open(O_RDONLY);
	ASSERT_LE(0, ufd);
	ASSERT_EQ(0, cbm_map_open(&m, ufd, CBM_MAP_NEWEST));
	ret = cbm_bind(ufd, self->name, 0, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, read_info(ufd, &info));
	EXPECT_STREQ(CBM_DEFAULT_NAME, info.name);
	EXPECT_TRUE(info.flags & CBM_CONV_DEFAULT);
	EXPECT_EQ(info.capacity, m.capacity);
	EXPECT_EQ(info.next_seq, m.seq);
	cbm_map_close(&m);
	close(ufd);
}

/*
 * cbm_map_read() into a buffer too small for the payload consumes nothing
 * and says how much is needed.
 */
TEST_F(single, map_read_too_small)
{
	static union rec_buf buf;
	struct cbm_record hdr;
	struct tally t;
	__u32 len = len_of(&self->spec, 0);

	single_send(_metadata, self, 0, 2);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &self->spec));
	memset(&hdr, JUNK, sizeof(hdr));
	EXPECT_EQ(-EMSGSIZE, cbm_map_read(&t.m, &hdr, buf.bytes, len - 1));
	EXPECT_EQ(len, hdr.len);
	EXPECT_EQ(0, hdr.seq);
	EXPECT_EQ(0, t.m.seq);
	ASSERT_EQ(1, cbm_map_read(&t.m, &hdr, buf.bytes, len));
	EXPECT_EQ(0, hdr.seq);
	EXPECT_EQ(len, hdr.len);
	EXPECT_TRUE(payload_ok(buf.bytes, len, 0));
	/* the tally goes on after the message read by hand */
	t.next = 1;
	ASSERT_EQ(0, tally_drain(&t, false));
	EXPECT_EQ(2, t.next);
	EXPECT_EQ(1, t.seen);
	expect_tally(_metadata, &t);
	cbm_map_close(&t.m);
}

/*
 * A pinned message shows CBM_MSG_PINNED in the map; unpinning clears it in
 * place, the one change to a published record, and nothing else changes.
 */
TEST_F(single, unpin_clears_flag_in_place)
{
	struct cbm_record before, after;
	struct cbm_map_info mi;
	unsigned char *p;
	__u64 seq;

	ASSERT_EQ(0, send_msg(self->fd, CBM_ROLE_SYSTEM,
			      CBM_MSG_PINNED | 0x10000, "system", 6, &seq));
	ASSERT_EQ(0, seq);
	ASSERT_EQ(4, write_str(self->fd, "user"));
	p = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, p);
	memcpy(&before, rec_at(p, &mi, 0), sizeof(before));
	EXPECT_EQ(CBM_MSG_PINNED | 0x10000, before.flags);
	EXPECT_EQ(CBM_ROLE_SYSTEM, before.role);
	EXPECT_EQ(0, memcmp("system", rec_at(p, &mi, 0) + REC_HDR, 6));
	ASSERT_EQ(0, unpin(self->fd, 0, 0));
	memcpy(&after, rec_at(p, &mi, 0), sizeof(after));
	EXPECT_EQ(0x10000, after.flags);
	after.flags = before.flags;
	EXPECT_EQ(0, memcmp(&before, &after, sizeof(after)));
	EXPECT_EQ(0, memcmp("system", rec_at(p, &mi, 0) + REC_HDR, 6));
	munmap(p, mi.map_size);
}

/*
 * Unlinked while mapped: the header says so, poll() reports EPOLLHUP, and
 * the records left are read through the map, also once every file is
 * closed; then the mapping goes away with the conversation.
 */
TEST_F(single, unlink_while_mapped)
{
	const struct cbm_map_header *hdr;
	struct cbm_map_info mi;
	unsigned char *p, *copy;
	struct tally t;
	int rfd, i, ret;

	single_send(_metadata, self, 0, 6);
	rfd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, tally_open(&t, rfd, CBM_MAP_OLDEST, &self->spec));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(1, tally_step(&t, false, 0));
	p = map_whole(rfd, &mi);
	ASSERT_NE(MAP_FAILED, p);
	hdr = (const void *)p;
	EXPECT_EQ(0, hdr->flags);
	EXPECT_FALSE(cbm_map_unlinked(&t.m));

	ASSERT_EQ(0, unlink_name(self->name));
	EXPECT_EQ(CBM_MAP_UNLINKED, hdr->flags);
	EXPECT_TRUE(cbm_map_unlinked(&t.m));
	ASSERT_EQ(0, map_info(rfd, &mi));
	EXPECT_EQ(CBM_MAP_UNLINKED, mi.flags);
	EXPECT_TRUE(poll_events(rfd, POLLIN, 0) & POLLHUP);
	ASSERT_EQ(1, tally_step(&t, true, 0));
	ASSERT_EQ(1, tally_step(&t, false, 0));

	/* what the mapping shows now must survive the conversation */
	copy = malloc(mi.map_size);
	ASSERT_NE(NULL, copy);
	memcpy(copy, p, mi.map_size);
	close(rfd);
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(0, memcmp(copy, p, mi.map_size));
	ret = tally_drain(&t, false);
	if (ret)
		tally_explain(&t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(6, t.next);
	EXPECT_EQ(6, t.seen);
	expect_tally(_metadata, &t);
	cbm_map_close(&t.m);
	EXPECT_EQ(0, memcmp(copy, p, mi.map_size));
	munmap(p, mi.map_size);
	free(copy);
}

/* Closed first, unlinked next, read last: the mapping keeps its pages */
TEST_F(single, close_unlink_then_read)
{
	const struct cbm_map_header *hdr;
	struct cbm_map_info mi;
	unsigned char *p, *copy;
	struct tally t;
	int ret;

	single_send(_metadata, self, 0, 5);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &self->spec));
	p = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, p);
	copy = malloc(mi.map_size);
	ASSERT_NE(NULL, copy);
	memcpy(copy, p, mi.map_size);
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, unlink_name(self->name));
	hdr = (const void *)p;
	EXPECT_EQ(CBM_MAP_UNLINKED, hdr->flags);
	/* the flag is the only change */
	copy[offsetof(struct cbm_map_header, flags)] = CBM_MAP_UNLINKED;
	EXPECT_EQ(0, memcmp(copy, p, mi.map_size));
	ret = tally_drain(&t, true);
	if (ret)
		tally_explain(&t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(5, t.seen);
	cbm_map_close(&t.m);
	munmap(p, mi.map_size);
	free(copy);
}

/* Unmapping a part leaves the rest readable, through close and unlink */
TEST_F(single, partial_unmap)
{
	struct cbm_map_info mi;
	unsigned char *p, *copy;
	size_t rest;

	single_send(_metadata, self, 0, 40);
	p = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, p);
	copy = malloc(mi.map_size);
	ASSERT_NE(NULL, copy);
	memcpy(copy, p, mi.map_size);
	/* the header and the second copy of the ring go, the first stays */
	rest = mi.map_size - mi.data_offset - mi.capacity;
	ASSERT_EQ(0, munmap(p, mi.data_offset));
	ASSERT_EQ(0, munmap(p + mi.data_offset + mi.capacity, rest));
	EXPECT_EQ(0, memcmp(copy + mi.data_offset, p + mi.data_offset,
			    mi.capacity));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, unlink_name(self->name));
	EXPECT_EQ(0, memcmp(copy + mi.data_offset, p + mi.data_offset,
			    mi.capacity));
	munmap(p + mi.data_offset, mi.capacity);
	free(copy);
}

/*
 * A child inherits the mapping: it reads the records there were at the
 * fork, and the ones its parent appends afterwards.
 */
TEST_F(single, fork_inherits_mapping)
{
	int ready[2], go[2], ret, i;
	struct tally t;

	single_send(_metadata, self, 0, 10);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &self->spec));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(1, tally_step(&t, false, 0));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	self->child = fork_child();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		tally_child_ok(&t, tally_drain(&t, false));
		CHILD_CHECK(t.next == 10 && t.seen == 10 && !t.lost);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		CHILD_CHECK(sync_wait(go[0]) == 0);
		while (t.next < 20) {
			ret = tally_step(&t, true, 0);
			tally_child_ok(&t, ret);
			if (!ret)
				CHILD_CHECK(cbm_map_wait(&t.m, WAIT_MS) == 1);
		}
		CHILD_CHECK(t.seen == 20 && !t.lost);
		CHILD_CHECK(tally_step(&t, false, 0) == 0);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	single_send(_metadata, self, 10, 20);
	ASSERT_EQ(0, sync_post(go[1]));
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;
	/* the parent's reader went on by itself */
	ret = tally_drain(&t, false);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(20, t.next);
	EXPECT_EQ(20, t.seen);
	cbm_map_close(&t.m);
}

/*
 * Records in the map carry initial-namespace pids and uids, so a caller in
 * another user namespace gets EPERM from mmap(); read() still works.
 */
TEST_F(single, user_namespace_eperm)
{
	single_send(_metadata, self, 0, 2);
	self->child = fork_child();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		union rec_buf *rb = malloc(sizeof(*rb));
		int fd = open_named(self->name, O_RDONLY | O_NONBLOCK);

		CHILD_CHECK(rb && fd >= 0);
		CHILD_CHECK(set_config(fd, CBM_FD_RECORDS, CBM_ROLE_USER) == 0);
		CHILD_CHECK(unshare(CLONE_NEWUSER) == 0);
		CHILD_CHECK(map_ro(fd, self->page) == MAP_FAILED);
		CHILD_CHECK(errno == EPERM);
		CHILD_CHECK(map_ro(fd, self->mi.map_size) == MAP_FAILED);
		CHILD_CHECK(errno == EPERM);
		CHILD_CHECK(map_ro(self->fd, self->page) == MAP_FAILED);
		CHILD_CHECK(errno == EPERM);
		CHILD_CHECK(read_record(fd, rb) ==
			    (ssize_t)(REC_HDR + len_of(&self->spec, 0)));
		CHILD_CHECK(rb->rec.seq == 0);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;
}

/* The same in another pid namespace */
TEST_F(single, pid_namespace_eperm)
{
	single_send(_metadata, self, 0, 2);
	self->child = fork_child();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		pid_t inner;

		CHILD_CHECK(unshare(CLONE_NEWPID) == 0);
		inner = fork();
		CHILD_CHECK(inner >= 0);
		if (inner == 0) {
			union rec_buf *rb = malloc(sizeof(*rb));
			int fd = open_named(self->name, O_RDONLY | O_NONBLOCK);

			CHILD_CHECK(rb && fd >= 0);
			CHILD_CHECK(getpid() == 1);
			CHILD_CHECK(set_config(fd, CBM_FD_RECORDS,
					       CBM_ROLE_USER) == 0);
			CHILD_CHECK(map_ro(fd, self->page) == MAP_FAILED);
			CHILD_CHECK(errno == EPERM);
			CHILD_CHECK(map_ro(fd, self->mi.map_size) ==
				    MAP_FAILED);
			CHILD_CHECK(errno == EPERM);
			CHILD_CHECK(read_record(fd, rb) ==
				    (ssize_t)(REC_HDR +
					      len_of(&self->spec, 0)));
			CHILD_CHECK(rb->rec.seq == 0);
			/* the sender is outside this namespace */
			CHILD_CHECK(rb->rec.pid == 0);
			_exit(0);
		}
		_exit(wait_child(inner));
	}
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;
}

/*
 * cbm_map_wait() times out when nothing comes, returns at once when
 * something is there, and sleeps until another process appends.
 */
TEST_F(single, wait_for_append)
{
	struct tally t;
	__u64 start;

	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_NEWEST, &self->spec));
	start = mono_ms();
	EXPECT_EQ(0, cbm_map_wait(&t.m, SHORT_WAIT_MS));
	EXPECT_LE(SHORT_WAIT_MS, mono_ms() - start);
	EXPECT_EQ(0, tally_step(&t, false, 0));

	single_send(_metadata, self, 0, 1);
	EXPECT_EQ(1, cbm_map_wait(&t.m, 0));
	ASSERT_EQ(1, tally_step(&t, false, 0));
	EXPECT_EQ(0, cbm_map_wait(&t.m, 0));

	self->child = fork_child();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		struct sender s;
		int fd = open_named(self->name, O_WRONLY);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(sender_init(&s, fd, &self->spec, 1) == 0);
		CHILD_CHECK(wait_sleeping(getppid()) == 0);
		CHILD_CHECK(sender_send(&s, 1, 2) == 0);
		_exit(0);
	}
	EXPECT_EQ(1, cbm_map_wait(&t.m, WAIT_MS));
	EXPECT_EQ(1, tally_step(&t, false, 0));
	EXPECT_EQ(2, t.next);
	EXPECT_EQ(2, t.seen);
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;
	cbm_map_close(&t.m);
}

/* cbm_map_wait() returns promptly when the conversation is unlinked */
TEST_F(single, wait_returns_on_unlink)
{
	struct tally t;
	__u64 start;

	single_send(_metadata, self, 0, 3);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_NEWEST, &self->spec));
	self->child = fork_child();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		CHILD_CHECK(wait_sleeping(getppid()) == 0);
		CHILD_CHECK(unlink_name(self->name) == 0);
		_exit(0);
	}
	start = mono_ms();
	EXPECT_EQ(1, cbm_map_wait(&t.m, 2 * WAIT_MS));
	EXPECT_GT(WAIT_MS, mono_ms() - start);
	EXPECT_TRUE(cbm_map_unlinked(&t.m));
	EXPECT_EQ(0, tally_step(&t, false, 0));
	/* and keeps returning: nothing more will come */
	EXPECT_EQ(1, cbm_map_wait(&t.m, WAIT_MS));
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;
	cbm_map_close(&t.m);
}

/*
 * The layout, the map's contents and the read protocol over ring sizes
 * from one page to 1 MiB, with messages of varied lengths.
 */
FIXTURE(map) {
	char name[CBM_NAME_MAX];
	int fd;		/* O_RDWR | O_NONBLOCK, the creator */
	size_t page;
	struct cbm_map_info mi;		/* right after creation */
	struct msg_spec spec;
};

FIXTURE_VARIANT(map) {
	__u64 capacity;
	__u32 max_len;	/* at most a quarter of the capacity */
};

FIXTURE_VARIANT_ADD(map, cap_4k) { .capacity = 4096, .max_len = 600 };
FIXTURE_VARIANT_ADD(map, cap_64k) { .capacity = 65536, .max_len = 6000 };
FIXTURE_VARIANT_ADD(map, cap_1m) { .capacity = 1 << 20, .max_len = 60000 };

FIXTURE_SETUP(map)
{
	self->fd = -1;
	conv_name(self->name, "map");
	self->page = sysconf(_SC_PAGESIZE);
	self->spec.min_len = TAG_LEN;
	self->spec.max_len = variant->max_len;
	ASSERT_LE(variant->max_len, max_payload(variant->capacity));
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				variant->capacity);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, map_info(self->fd, &self->mi));
}

FIXTURE_TEARDOWN(map)
{
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
}

/* Appends messages until head reaches @until; returns the next seq */
static __u64 map_fill(struct __test_metadata *_metadata,
		      FIXTURE_DATA(map) *self, __u64 seq, __u64 *head,
		      __u64 until)
{
	struct sender s;

	ASSERT_EQ(0, sender_init(&s, self->fd, &self->spec, 1));
	for (; *head < until; seq++) {
		ASSERT_EQ(0, sender_send(&s, seq, seq + 1))
			TH_LOG("seq %llu: %s", seq, strerror(errno));
		*head += CBM_RECORD_SPACE(len_of(&self->spec, seq));
	}
	sender_free(&s);
	return seq;
}

/*
 * CBM_IOC_MAP_INFO: the layout, and positions and sequence numbers that
 * follow every append and eviction, in step with CBM_IOC_INFO.
 */
TEST_F(map, info_layout)
{
	__u64 cap = variant->capacity, head = 0, tail = 0, first = 0, seq;
	__u64 gen = self->mi.generation;
	struct cbm_map_info mi;
	struct cbm_info info;
	struct sender s;

	expect_layout(_metadata, &self->mi, cap);
	EXPECT_EQ(0, self->mi.flags);
	EXPECT_EQ(0, self->mi.head);
	EXPECT_EQ(0, self->mi.tail);
	EXPECT_EQ(0, self->mi.first_seq);
	EXPECT_EQ(0, self->mi.next_seq);

	ASSERT_EQ(0, sender_init(&s, self->fd, &self->spec, 1));
	/* past two and a half rings: the tail moves on twice */
	for (seq = 0; head < 5 * cap / 2; seq++) {
		ASSERT_EQ(0, sender_send(&s, seq, seq + 1));
		head += CBM_RECORD_SPACE(len_of(&self->spec, seq));
		/* room is made by evicting the oldest messages, whole */
		while (head - tail > cap)
			tail += CBM_RECORD_SPACE(len_of(&self->spec, first++));
		ASSERT_EQ(0, map_info(self->fd, &mi));
		ASSERT_EQ(0, read_info(self->fd, &info));
		expect_layout(_metadata, &mi, cap);
		EXPECT_EQ(0, mi.flags);
		EXPECT_EQ(gen, mi.generation);
		EXPECT_EQ(head, mi.head) TH_LOG("seq %llu", seq);
		EXPECT_EQ(tail, mi.tail) TH_LOG("seq %llu", seq);
		EXPECT_EQ(first, mi.first_seq);
		EXPECT_EQ(info.first_seq, mi.first_seq);
		EXPECT_EQ(seq + 1, mi.next_seq);
		EXPECT_EQ(info.next_seq, mi.next_seq);
		EXPECT_EQ(info.used, mi.head - mi.tail);
	}
	EXPECT_LT(0, first);
	sender_free(&s);
}

/* mmap() at an offset other than 0 or of any other length: EINVAL */
TEST_F(map, bad_offset_or_length)
{
	size_t page = self->page, size = self->mi.map_size;
	size_t lens[] = {
		size - page, size + page, 2 * page, 2 * size,
		page + self->mi.capacity,
	};
	unsigned int i;

	expect_map_fails(_metadata, self->fd, page, PROT_READ, MAP_SHARED,
			 page, EINVAL);
	expect_map_fails(_metadata, self->fd, size, PROT_READ, MAP_SHARED,
			 page, EINVAL);
	expect_map_fails(_metadata, self->fd, size - page, PROT_READ,
			 MAP_SHARED, page, EINVAL);
	for (i = 0; i < ARRAY_SIZE(lens); i++)
		expect_map_fails(_metadata, self->fd, lens[i], PROT_READ,
				 MAP_SHARED, 0, EINVAL);
}

/*
 * The header page alone: its fields match CBM_IOC_MAP_INFO and follow
 * appends; the rest of the page is zero.
 */
TEST_F(map, header_only)
{
	const struct cbm_map_header *hdr;
	struct cbm_map_info mi;
	unsigned char *p;
	__u64 head = 0, seq;

	p = map_ro(self->fd, self->page);
	ASSERT_NE(MAP_FAILED, p);
	hdr = (const void *)p;
	EXPECT_EQ(sizeof(*hdr), hdr->hdr_size);
	EXPECT_EQ(0, hdr->flags);
	EXPECT_EQ(self->mi.generation, hdr->generation);
	EXPECT_EQ(variant->capacity, hdr->capacity);
	EXPECT_EQ(0, hdr->head);
	EXPECT_EQ(0, hdr->tail);
	EXPECT_TRUE(all_zero(p + sizeof(*hdr), self->page - sizeof(*hdr)));

	seq = map_fill(_metadata, self, 0, &head, 3 * variant->capacity / 2);
	ASSERT_EQ(0, map_info(self->fd, &mi));
	EXPECT_EQ(mi.generation, hdr->generation);
	EXPECT_EQ(mi.capacity, hdr->capacity);
	EXPECT_EQ(head, __atomic_load_n(&hdr->head, __ATOMIC_ACQUIRE));
	EXPECT_EQ(mi.head, hdr->head);
	EXPECT_EQ(mi.tail, hdr->tail);
	EXPECT_LT(0, hdr->tail);
	EXPECT_EQ(seq, mi.next_seq);
	EXPECT_TRUE(all_zero(p + sizeof(*hdr), self->page - sizeof(*hdr)));
	munmap(p, self->page);
}

/*
 * Nothing of the kernel's leaks through the map: a new ring is all zero,
 * and so is the padding after each payload.
 */
TEST_F(map, no_stale_bytes)
{
	__u64 cap = variant->capacity, head = 0, pos, seq, n;
	struct cbm_map_info mi;
	const unsigned char *rec;
	unsigned char *p;
	__u32 len;

	p = map_ro(self->fd, self->mi.map_size);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_TRUE(all_zero(p + self->mi.data_offset, self->mi.data_size));
	munmap(p, self->mi.map_size);

	n = map_fill(_metadata, self, 0, &head, cap / 2);
	p = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, p);
	for (seq = 0, pos = 0; seq < n; seq++) {
		len = len_of(&self->spec, seq);
		rec = rec_at(p, &mi, pos);
		EXPECT_TRUE(payload_ok(rec + REC_HDR, len, seq));
		EXPECT_TRUE(all_zero(rec + REC_HDR + len,
				     CBM_RECORD_SPACE(len) - REC_HDR - len))
			TH_LOG("seq %llu len %u", seq, len);
		pos += CBM_RECORD_SPACE(len);
	}
	EXPECT_EQ(head, pos);
	EXPECT_TRUE(all_zero(rec_at(p, &mi, head), cap - head));
	munmap(p, mi.map_size);
}

/* The ring's pages are mapped twice in a row: byte i is byte cap + i */
TEST_F(map, double_mapped)
{
	__u64 cap = variant->capacity, head = 0;
	const unsigned char *data;
	struct cbm_map_info mi;
	unsigned char *p;

	map_fill(_metadata, self, 0, &head, 2 * cap + cap / 3);
	p = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, p);
	data = p + mi.data_offset;
	EXPECT_FALSE(all_zero(data, cap));
	EXPECT_EQ(0, memcmp(data, data + cap, cap));
	/* and stays so as the kernel writes */
	map_fill(_metadata, self, mi.next_seq, &head, head + cap / 2);
	EXPECT_EQ(0, memcmp(data, data + cap, cap));
	munmap(p, mi.map_size);
}

/*
 * Appends one message of @len bytes, tag its seq, with write(), so that
 * it starts @before bytes before the end of the ring: filler messages
 * first. Returns the message's position.
 */
static __u64 append_crossing(struct __test_metadata *_metadata,
			     FIXTURE_DATA(map) *self, __u64 cap, __u64 *head,
			     __u64 *seq, __u64 before, __u32 len)
{
	__u64 target = (*head / cap + 1) * cap - before, gap, pos;
	__u32 fill, max = (self->spec.max_len & ~7U) - 8;

	/* the last filler needs a header and a tag at least */
	if (target - *head < REC_HDR + TAG_LEN)
		target += cap;
	while (*head < target) {
		/* a multiple of CBM_RECORD_ALIGN, never less than a filler */
		gap = target - *head;
		if (gap - REC_HDR <= max)
			fill = gap - REC_HDR;
		else if (gap - 2 * REC_HDR - TAG_LEN < max)
			fill = gap - 2 * REC_HDR - TAG_LEN;
		else
			fill = max;
		ASSERT_EQ(fill, write_tagged(self->fd, fill, *seq));
		(*seq)++;
		*head += CBM_RECORD_SPACE(fill);
	}
	ASSERT_EQ(target, *head);
	ASSERT_EQ(len, write_tagged(self->fd, len, *seq));
	pos = *head;
	(*seq)++;
	*head += CBM_RECORD_SPACE(len);
	return pos;
}

/*
 * A record that crosses the end of the ring, its header or its payload, is
 * contiguous in the map and is what read() returns for it, byte for byte.
 */
TEST_F(map, crossing_record_matches_read)
{
	__u64 cap = variant->capacity, head = 0, seq = 0, pos;
	__u64 befores[] = { 16, REC_HDR + 8, 8, REC_HDR };
	static union rec_buf rb;
	struct cbm_map_info mi;
	const unsigned char *rec;
	unsigned char *p;
	unsigned int i;
	__u32 len = 200;
	int rfd;

	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rfd);
	for (i = 0; i < ARRAY_SIZE(befores); i++) {
		pos = append_crossing(_metadata, self, cap, &head, &seq,
				      befores[i], len);
		ASSERT_EQ(cap - befores[i], pos & (cap - 1));
		p = map_whole(self->fd, &mi);
		ASSERT_NE(MAP_FAILED, p);
		EXPECT_EQ(head, mi.head);
		EXPECT_EQ(seq, mi.next_seq);
		ASSERT_EQ(seq - 1, lseek(rfd, seq - 1, SEEK_SET));
		ASSERT_EQ(REC_HDR + len, read_record(rfd, &rb));
		rec = rec_at(p, &mi, pos);
		EXPECT_EQ(0, memcmp(rec, rb.bytes, REC_HDR + len))
			TH_LOG("%llu bytes before the end", befores[i]);
		EXPECT_EQ(seq - 1, rb.rec.seq);
		EXPECT_TRUE(payload_ok(rec + REC_HDR, len, seq - 1));
		munmap(p, mi.map_size);
	}
	close(rfd);
}

/*
 * Every field of every record taken from the map is what a record-format
 * read() returns for the same message, and what was sent: as the ring
 * wraps three times, in rounds of half a ring the map reader keeps up with.
 */
TEST_F(map, fields_match_read)
{
	__u64 cap = variant->capacity, total = 0, seq = 0, from, bytes;
	__u64 before_ns, after_ns, space;
	static union rec_buf rb;
	struct cbm_map_rec r;
	const char *why;
	struct sender s;
	struct tally t;
	int rfd;

	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_RECORDS);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &self->spec));
	ASSERT_EQ(0, sender_init(&s, self->fd, &self->spec, 16));
	while (total < 3 * cap) {
		from = seq;
		for (bytes = 0;; seq++) {
			space = CBM_RECORD_SPACE(len_of(&self->spec, seq));
			if (bytes + space > cap / 2)
				break;
			bytes += space;
		}
		ASSERT_LT(from, seq);
		before_ns = now_ns();
		ASSERT_EQ(0, sender_send(&s, from, seq));
		after_ns = now_ns();
		for (; from < seq; from++) {
			ASSERT_EQ(1, cbm_map_peek(&t.m, &r)) TH_LOG("seq %llu", from);
			ASSERT_EQ(REC_HDR + r.hdr.len, read_record(rfd, &rb));
			EXPECT_EQ(0, memcmp(&r.hdr, &rb.rec, REC_HDR))
				TH_LOG("seq %llu", from);
			EXPECT_EQ(0, memcmp(r.payload, rb.bytes + REC_HDR,
					    r.hdr.len));
			why = rec_problem(&t, &r.hdr, r.payload);
			EXPECT_EQ(NULL, why) TH_LOG("seq %llu: %s", from, why);
			EXPECT_EQ(getpid(), r.hdr.pid);
			EXPECT_EQ(0, r.hdr.uid);
			EXPECT_LE(before_ns, r.hdr.ts_ns);
			EXPECT_GE(after_ns, r.hdr.ts_ns);
			ASSERT_EQ(0, cbm_map_release(&t.m));
			t.next++;
		}
		EXPECT_EQ(0, cbm_map_peek(&t.m, &r));
		total += bytes;
	}
	EXPECT_EQ(seq, t.m.seq);
	EXPECT_EQ(0, t.m.lost);
	sender_free(&s);
	cbm_map_close(&t.m);
	close(rfd);
}

/* A reader placed at CBM_MAP_NEWEST sees only what comes after */
TEST_F(map, newest_sees_only_later)
{
	__u64 head = 0, n, first;
	struct cbm_map_info mi;
	struct tally t, old;
	struct sender s;
	int ret;

	n = map_fill(_metadata, self, 0, &head, 3 * variant->capacity / 2);
	ASSERT_EQ(0, map_info(self->fd, &mi));
	first = mi.first_seq;
	ASSERT_LT(0, first);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_NEWEST, &self->spec));
	ASSERT_EQ(0, tally_open(&old, self->fd, CBM_MAP_OLDEST, &self->spec));
	EXPECT_EQ(n, t.next);
	EXPECT_EQ(mi.head, t.m.pos);
	EXPECT_EQ(first, old.next);
	EXPECT_EQ(mi.tail, old.m.pos);
	EXPECT_EQ(0, tally_step(&t, false, 0));
	/* the other one reads all there is, before the ring moves on */
	ret = tally_drain(&old, true);
	if (ret)
		tally_explain(&old, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(n - first, old.seen);

	ASSERT_EQ(0, sender_init(&s, self->fd, &self->spec, 8));
	ASSERT_EQ(0, sender_send(&s, n, n + 5));
	ret = tally_drain(&t, false);
	if (ret)
		tally_explain(&t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(5, t.seen);
	EXPECT_EQ(n + 5, t.next);
	EXPECT_EQ(0, t.lost);
	ASSERT_EQ(0, tally_drain(&old, false));
	EXPECT_EQ(n + 5 - first, old.seen);
	EXPECT_EQ(0, old.lost);
	sender_free(&s);
	cbm_map_close(&t.m);
	cbm_map_close(&old.m);
}

/*
 * Hundreds of thousands of small records, appended in batches that the map
 * reader takes right after each: every one is read, in order and intact.
 */
TEST_F_TIMEOUT(map, many_records, LONG_TIMEOUT)
{
	struct msg_spec small = { TAG_LEN, SMALL_MAX_LEN };
	__u64 count = scaled(MANY_RECORDS), seq, n, start = mono_ms();
	unsigned int batch;
	struct sender s;
	struct tally t;
	int ret = 0;

	/* a batch takes at most half the ring */
	batch = variant->capacity / 2 / CBM_RECORD_SPACE(SMALL_MAX_LEN);
	if (batch > CBM_BATCH_MAX)
		batch = CBM_BATCH_MAX;
	ASSERT_EQ(0, sender_init(&s, self->fd, &small, batch));
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &small));
	for (seq = 0; seq < count && !ret; seq += n) {
		n = count - seq < batch ? count - seq : batch;
		ASSERT_EQ(0, sender_send(&s, seq, seq + n));
		ret = tally_drain(&t, (seq / batch) & 1);
	}
	if (ret)
		tally_explain(&t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(count, t.next);
	EXPECT_EQ(count, t.seen);
	EXPECT_EQ(0, t.lost);
	expect_tally(_metadata, &t);
	TH_LOG("%llu records in batches of %u in %llu ms",
	       (unsigned long long)count, batch,
	       (unsigned long long)(mono_ms() - start));
	sender_free(&s);
	cbm_map_close(&t.m);
}

/*
 * A lossless conversation: the mapping holds nobody back; the file's read
 * cursor does, unless the file is CBM_FD_LOSSY, and cbm_map_wait() moves
 * it along as a consumer position.
 */
FIXTURE(lossless) {
	char name[CBM_NAME_MAX];
	int wfd;	/* O_WRONLY | O_NONBLOCK: not a reader */
	struct msg_spec spec;
	pid_t child;
};

FIXTURE_SETUP(lossless)
{
	self->wfd = -1;
	conv_name(self->name, "lossless");
	self->spec.min_len = TAG_LEN;
	self->spec.max_len = 100;
	self->wfd = create_named(self->name, O_WRONLY | O_NONBLOCK, 0600,
				 CBM_CONV_LOSSLESS, MIN_CAPACITY);
	ASSERT_LE(0, self->wfd);
}

FIXTURE_TEARDOWN(lossless)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (self->wfd >= 0)
		close(self->wfd);
	unlink_name(self->name);
}

/*
 * Appends messages from *seq on until the conversation is full; returns
 * how many went in.
 */
static __u64 fill_lossless(struct __test_metadata *_metadata,
			   FIXTURE_DATA(lossless) *self, __u64 *seq)
{
	struct sender s;
	__u64 from = *seq;

	ASSERT_EQ(0, sender_init(&s, self->wfd, &self->spec, 1));
	while (!sender_send(&s, *seq, *seq + 1))
		(*seq)++;
	EXPECT_EQ(EAGAIN, errno);
	sender_free(&s);
	return *seq - from;
}

/* A mapped reader whose file is CBM_FD_LOSSY holds back no writer */
TEST_F(lossless, lossy_file_holds_nobody)
{
	__u64 count = 3 * MIN_CAPACITY / CBM_RECORD_SPACE(TAG_LEN);
	struct cbm_reader_info ri;
	struct sender s;
	struct tally t;
	int rfd, ret;

	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, CBM_FD_LOSSY);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, read_rinfo(rfd, &ri));
	EXPECT_FALSE(ri.flags & CBM_READER_LOSSLESS);
	ASSERT_EQ(0, tally_open(&t, rfd, CBM_MAP_OLDEST, &self->spec));
	EXPECT_EQ(0, cbm_map_wait(&t.m, 0));
	/* three rings' worth: the oldest must go */
	ASSERT_EQ(0, sender_init(&s, self->wfd, &self->spec, 4));
	ASSERT_EQ(0, sender_send(&s, 0, count)) TH_LOG("%s", strerror(errno));
	ret = tally_drain(&t, false);
	if (ret)
		tally_explain(&t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(count, t.next);
	EXPECT_EQ(count, t.seen + t.lost);
	EXPECT_LT(0, t.lost);
	EXPECT_EQ(1, t.gaps);
	expect_tally(_metadata, &t);
	sender_free(&s);
	cbm_map_close(&t.m);
	close(rfd);
}

/*
 * Without CBM_FD_LOSSY the mapping file is a lossless reader: reading the
 * map frees nothing until cbm_map_wait() moves the file's cursor.
 */
TEST_F(lossless, cursor_is_consumer_position)
{
	struct cbm_reader_info ri;
	__u64 seq = 0, k, k2;
	struct tally t;
	int rfd;

	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, tally_open(&t, rfd, CBM_MAP_OLDEST, &self->spec));
	k = fill_lossless(_metadata, self, &seq);
	ASSERT_LT(0, k);
	ASSERT_EQ(0, tally_drain(&t, false));
	EXPECT_EQ(k, t.seen);
	/* read through the map, yet still held by the cursor */
	EXPECT_EQ(0, fill_lossless(_metadata, self, &seq));
	ASSERT_EQ(0, read_rinfo(rfd, &ri));
	EXPECT_EQ(0, ri.cursor);
	EXPECT_EQ(k, ri.unread);

	EXPECT_EQ(0, cbm_map_wait(&t.m, 0));
	ASSERT_EQ(0, read_rinfo(rfd, &ri));
	EXPECT_EQ(k, ri.cursor);
	EXPECT_EQ(0, ri.unread);
	k2 = fill_lossless(_metadata, self, &seq);
	EXPECT_LT(0, k2);
	ASSERT_EQ(0, tally_drain(&t, true));
	EXPECT_EQ(k + k2, t.seen);
	EXPECT_EQ(0, t.lost);
	cbm_map_close(&t.m);
	close(rfd);
}

/*
 * A blocking writer of many rings' worth goes exactly as fast as the map
 * reader consumes: it sleeps while the reader stops, and nothing is lost.
 */
TEST_F_TIMEOUT(lossless, writer_follows_map_reader, 60)
{
	__u64 count = 20 * MIN_CAPACITY / CBM_RECORD_SPACE(TAG_LEN);
	struct cbm_info before, after;
	struct shared *sh;
	bool paused = false;
	struct tally t;
	int rfd, ret;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	rfd = open_reader(self->name, O_RDONLY | O_NONBLOCK, 0);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, tally_open(&t, rfd, CBM_MAP_OLDEST, &self->spec));
	self->child = fork_worker(WORKER_SECS);
	ASSERT_LE(0, self->child);
	if (self->child == 0)
		writer_main(self->name, sh, &self->spec, 4, count, 0);

	while (t.next < count) {
		ret = tally_step(&t, t.next & 1, 0);
		if (ret < 0)
			tally_explain(&t, ret);
		ASSERT_LE(0, ret);
		if (ret)
			continue;
		if (!paused && t.next > count / 2) {
			/* the writer sleeps and stays put while we do not move */
			paused = true;
			ASSERT_EQ(0, wait_sleeping(self->child));
			ASSERT_EQ(0, read_info(rfd, &before));
			sleep_ms(SHORT_WAIT_MS);
			ASSERT_EQ(0, read_info(rfd, &after));
			EXPECT_EQ(before.next_seq, after.next_seq);
			EXPECT_GT(count, after.next_seq);
		}
		ASSERT_EQ(1, cbm_map_wait(&t.m, WAIT_MS));
	}
	EXPECT_TRUE(paused);
	EXPECT_EQ(count, t.seen);
	EXPECT_EQ(0, t.lost);
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;
	EXPECT_EQ(count, sh->sent);
	cbm_map_close(&t.m);
	close(rfd);
	munmap(sh, sizeof(*sh));
}

/*
 * Resizing a mapped conversation, and processes racing a mapped reader:
 * writers, a resizer. Each test creates its conversation.
 */
FIXTURE(race) {
	char name[CBM_NAME_MAX];
	int fd;		/* O_RDWR | O_NONBLOCK, the creator */
	struct shared *sh;
	pid_t writer, resizer;
};

FIXTURE_SETUP(race)
{
	self->fd = -1;
	conv_name(self->name, "race");
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
}

FIXTURE_TEARDOWN(race)
{
	if (self->writer > 0) {
		kill(self->writer, SIGKILL);
		waitpid(self->writer, NULL, 0);
	}
	if (self->resizer > 0) {
		kill(self->resizer, SIGKILL);
		waitpid(self->resizer, NULL, 0);
	}
	if (self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
	if (self->fd >= 0)
		close(self->fd);
	unlink_name(self->name);
}

static void race_create(struct __test_metadata *_metadata,
			FIXTURE_DATA(race) *self, __u64 capacity)
{
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				capacity);
	ASSERT_LE(0, self->fd);
}

/* The checks every racing test ends with */
static void expect_follow(struct __test_metadata *_metadata,
			  FIXTURE_DATA(race) *self, struct tally *t, int ret)
{
	struct cbm_info info;

	if (ret)
		tally_explain(t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(self->sh->sent, t->next);
	EXPECT_EQ(self->sh->sent, t->seen + t->lost);
	EXPECT_LT(0, t->seen);
	expect_tally(_metadata, t);
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(self->sh->sent, info.next_seq);
}

/*
 * Growing a mapped ring: the old mapping stays readable and frozen, its
 * header page shows the new generation and capacity, poll() reports
 * EPOLLPRI, and cbm_map_peek() moves to the new ring by itself, losing
 * nothing.
 */
TEST_F(race, grow_while_mapped)
{
	struct msg_spec fixed = { 100, 100 };
	const struct cbm_map_header *hdr;
	struct cbm_map_info mi, mi2;
	struct cbm_resize rs;
	unsigned char *old, *copy;
	struct sender s;
	struct tally t;
	int ret, i;

	race_create(_metadata, self, MIN_CAPACITY);
	ASSERT_EQ(0, sender_init(&s, self->fd, &fixed, 8));
	ASSERT_EQ(0, sender_send(&s, 0, 20));
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &fixed));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(1, tally_step(&t, false, 0));
	old = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, old);
	hdr = (const void *)old;
	copy = malloc(mi.map_size);
	ASSERT_NE(NULL, copy);
	memcpy(copy, old, mi.map_size);
	EXPECT_EQ(0, poll_events(self->fd, POLLPRI, 0));

	ASSERT_EQ(0, resize_to(self->fd, 4 * MIN_CAPACITY, &rs));
	EXPECT_EQ(4 * MIN_CAPACITY, rs.capacity);
	EXPECT_EQ(0, rs.evicted);
	EXPECT_EQ(POLLPRI, poll_events(self->fd, POLLPRI, 0));
	EXPECT_NE(mi.generation, hdr->generation);
	EXPECT_EQ(4 * MIN_CAPACITY, hdr->capacity);
	EXPECT_EQ(mi.head, hdr->head);
	EXPECT_EQ(mi.tail, hdr->tail);
	ASSERT_EQ(0, map_info(self->fd, &mi2));
	expect_layout(_metadata, &mi2, 4 * MIN_CAPACITY);
	EXPECT_EQ(hdr->generation, mi2.generation);
	EXPECT_EQ(mi.head, mi2.head);
	EXPECT_EQ(mi.tail, mi2.tail);
	EXPECT_EQ(mi.first_seq, mi2.first_seq);
	EXPECT_EQ(mi.next_seq, mi2.next_seq);
	/* the old size no longer maps; the header page alone still does */
	expect_map_fails(_metadata, self->fd, mi.map_size, PROT_READ,
			 MAP_SHARED, 0, EINVAL);

	/* room for 100 records now: nothing is evicted */
	ASSERT_EQ(0, sender_send(&s, 20, 100));
	ret = tally_drain(&t, false);
	if (ret)
		tally_explain(&t, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(100, t.next);
	EXPECT_EQ(100, t.seen);
	EXPECT_EQ(0, t.lost);
	EXPECT_EQ(1, t.remaps);
	EXPECT_EQ(mi2.generation, t.m.gen);
	EXPECT_EQ(4 * MIN_CAPACITY, t.m.capacity);

	/* every byte of the old ring is as it was at the resize */
	EXPECT_EQ(0, memcmp(copy + mi.data_offset, old + mi.data_offset,
			    mi.data_size));
	munmap(old, mi.map_size);
	free(copy);
	sender_free(&s);
	cbm_map_close(&t.m);
}

/*
 * Shrinking a mapped ring evicts the oldest messages: a map reader that
 * had read none of them gets a gap of exactly the evicted count, one that
 * had read some the rest of it; both go on with the same sequence
 * numbers. The old mapping is frozen.
 */
TEST_F(race, shrink_while_mapped)
{
	struct msg_spec fixed = { 100, 100 };
	__u64 cap = 4 * MIN_CAPACITY, space = CBM_RECORD_SPACE(100);
	__u64 fit = cap / space, fit_small = MIN_CAPACITY / space, evicted;
	const struct cbm_map_header *hdr;
	struct tally a, b;
	struct cbm_map_info mi;
	struct cbm_resize rs;
	unsigned char *old, *copy;
	struct sender s;
	int i, ret;

	race_create(_metadata, self, cap);
	ASSERT_EQ(0, sender_init(&s, self->fd, &fixed, 8));
	ASSERT_EQ(0, sender_send(&s, 0, fit));
	ASSERT_EQ(0, tally_open(&a, self->fd, CBM_MAP_OLDEST, &fixed));
	ASSERT_EQ(0, tally_open(&b, self->fd, CBM_MAP_OLDEST, &fixed));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(1, tally_step(&b, false, 0));
	old = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, old);
	hdr = (const void *)old;
	copy = malloc(mi.map_size);
	ASSERT_NE(NULL, copy);
	memcpy(copy, old, mi.map_size);

	ASSERT_EQ(0, resize_to(self->fd, MIN_CAPACITY, &rs));
	evicted = fit - fit_small;
	EXPECT_EQ(evicted, rs.evicted);
	EXPECT_EQ(POLLPRI, poll_events(self->fd, POLLPRI, 0));
	EXPECT_NE(mi.generation, hdr->generation);
	EXPECT_EQ(MIN_CAPACITY, hdr->capacity);
	EXPECT_EQ(mi.head, hdr->head);
	EXPECT_EQ(mi.head - fit_small * space, hdr->tail);

	ret = tally_drain(&a, false);
	if (ret)
		tally_explain(&a, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(1, a.gaps);
	EXPECT_EQ(evicted, a.lost);
	EXPECT_EQ(fit_small, a.seen);
	EXPECT_EQ(fit, a.next);
	ret = tally_drain(&b, true);
	if (ret)
		tally_explain(&b, ret);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(1, b.gaps);
	EXPECT_EQ(evicted - 10, b.lost);
	EXPECT_EQ(10 + fit_small, b.seen);
	EXPECT_EQ(fit, b.next);
	expect_tally(_metadata, &a);
	expect_tally(_metadata, &b);

	/* the smaller ring goes on, and the old one stays as it was */
	ASSERT_EQ(0, sender_send(&s, fit, fit + fit_small));
	ASSERT_EQ(0, tally_drain(&a, true));
	EXPECT_EQ(fit + fit_small, a.next);
	EXPECT_EQ(2 * fit_small, a.seen);
	EXPECT_EQ(evicted, a.lost);
	EXPECT_EQ(0, memcmp(copy + mi.data_offset, old + mi.data_offset,
			    mi.data_size));
	munmap(old, mi.map_size);
	free(copy);
	sender_free(&s);
	cbm_map_close(&a.m);
	cbm_map_close(&b.m);
}

/*
 * A writer hammers a one-page ring while the map reader, stalling now and
 * then, is lapped over and over: whatever release says was intact is the
 * right message, byte for byte, and gaps account for everything else.
 */
TEST_F_TIMEOUT(race, tiny_ring_hammered, 60)
{
	struct msg_spec spec = { TAG_LEN, RACE_MAX_LEN };
	struct tally t;
	int ret;

	race_create(_metadata, self, MIN_CAPACITY);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &spec));
	self->writer = fork_worker(HAMMER_SECS + WORKER_SECS);
	ASSERT_LE(0, self->writer);
	if (self->writer == 0)
		writer_main(self->name, self->sh, &spec, RACE_BATCH, UINT64_MAX,
			    HAMMER_SECS);
	ret = tally_follow(&t, self->sh, true);
	EXPECT_EQ(0, wait_child(self->writer));
	self->writer = 0;
	expect_follow(_metadata, self, &t, ret);
	EXPECT_LT(0, t.gaps);
	TH_LOG("%llu messages: %llu read, %llu lost in %llu gaps, %llu overwritten while read",
	       (unsigned long long)self->sh->sent,
	       (unsigned long long)t.seen, (unsigned long long)t.lost,
	       (unsigned long long)t.gaps, (unsigned long long)t.stale);
	cbm_map_close(&t.m);
}

/*
 * Another process resizes the ring up and down all the while a writer
 * appends and the map reader reads: the reader follows every generation
 * by itself, never takes a torn record and misses nothing untold. A
 * mapping of the first generation stays readable throughout.
 */
TEST_F_TIMEOUT(race, resize_races_reader, 60)
{
	struct msg_spec spec = { TAG_LEN, RACE_MAX_LEN };
	struct cbm_map_info mi;
	unsigned char *old;
	unsigned long sum = 0;
	struct tally t;
	size_t i;
	int ret;

	race_create(_metadata, self, MIN_CAPACITY);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &spec));
	old = map_whole(self->fd, &mi);
	ASSERT_NE(MAP_FAILED, old);
	self->resizer = fork_worker(WORKER_SECS);
	ASSERT_LE(0, self->resizer);
	if (self->resizer == 0)
		resizer_main(self->name, self->sh);
	self->writer = fork_worker(RACE_SECS + WORKER_SECS);
	ASSERT_LE(0, self->writer);
	if (self->writer == 0)
		writer_main(self->name, self->sh, &spec, RACE_BATCH, UINT64_MAX,
			    RACE_SECS);
	ret = tally_follow(&t, self->sh, false);
	__atomic_store_n(&self->sh->stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(0, wait_child(self->writer));
	self->writer = 0;
	EXPECT_EQ(0, wait_child(self->resizer));
	self->resizer = 0;
	expect_follow(_metadata, self, &t, ret);
	EXPECT_LT(0, self->sh->resizes);
	EXPECT_LT(0, t.remaps);
	for (i = 0; i < mi.map_size; i++)
		sum += old[i];
	EXPECT_NE(mi.generation,
		  ((const struct cbm_map_header *)old)->generation);
	TH_LOG("%llu messages: %llu read, %llu lost in %llu gaps; %llu resizes, %llu remaps (old ring sums to %lu)",
	       (unsigned long long)self->sh->sent,
	       (unsigned long long)t.seen, (unsigned long long)t.lost,
	       (unsigned long long)t.gaps,
	       (unsigned long long)self->sh->resizes,
	       (unsigned long long)t.remaps, sum);
	munmap(old, mi.map_size);
	cbm_map_close(&t.m);
}

/*
 * The acceptance test: a million records read through the map while
 * another process appends them in batches; every message is read intact
 * exactly once or inside a reported gap.
 */
TEST_F_TIMEOUT(race, million_records, LONG_TIMEOUT)
{
	struct msg_spec small = { TAG_LEN, SMALL_MAX_LEN };
	__u64 count = scaled(MILLION_RECORDS), start;
	struct tally t;
	int ret;

	race_create(_metadata, self, MILLION_CAPACITY);
	ASSERT_EQ(0, tally_open(&t, self->fd, CBM_MAP_OLDEST, &small));
	start = mono_ms();
	self->writer = fork_worker(WORKER_SECS);
	ASSERT_LE(0, self->writer);
	if (self->writer == 0)
		writer_main(self->name, self->sh, &small, MILLION_BATCH, count,
			    0);
	ret = tally_follow(&t, self->sh, false);
	EXPECT_EQ(0, wait_child(self->writer));
	self->writer = 0;
	expect_follow(_metadata, self, &t, ret);
	EXPECT_EQ(count, self->sh->sent);
	TH_LOG("%llu records through the map in %llu ms: %llu read, %llu lost in %llu gaps, %llu overwritten while read",
	       (unsigned long long)count,
	       (unsigned long long)(mono_ms() - start),
	       (unsigned long long)t.seen, (unsigned long long)t.lost,
	       (unsigned long long)t.gaps, (unsigned long long)t.stale);
	cbm_map_close(&t.m);
}

TEST_HARNESS_MAIN
