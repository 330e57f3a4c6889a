// SPDX-License-Identifier: GPL-2.0
/*
 * cbm-bench - cbm against the IPC a user would otherwise pick, in one run
 *
 * Every measurement runs cbm and its peers (pipe, AF_UNIX SOCK_SEQPACKET,
 * POSIX message queues) side by side in the same boot, because only such
 * ratios mean anything under emulation (Documentation/performance.rst).
 * Every message carries its writer, its sequence number and a check word
 * at both ends; readers verify all of them and a run that delivered
 * anything wrong, lost or out of order reports an error instead of a
 * speed. Each figure is the median of --reps repetitions, with min and max.
 *
 * Sections: throughput 1 -> 1 (reader on the other CPU, and on the same
 * one), fan-out 1 -> 4, 4 writers -> 1, wake-up latency (ping-pong through
 * poll()), memcpy bandwidth and a bare system call, and the cost of
 * resizing a large mapped conversation.
 *
 * With --icount the guest runs under QEMU's -icount shift=0, where a
 * nanosecond of guest time is one guest instruction: figures are then
 * printed as instructions per message (or per call, per byte).
 *
 * With --tap (the quick run make check does) every case is a TAP test that
 * passes when its messages arrived intact; no figure is judged.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cbm.h>

#include "cbm_map.h"

#define CBM_DEV			"/dev/cbm"
#define BENCH_MAX_PROCS		8
#define BENCH_FANOUT		4
#define BENCH_WRITERS		4
#define BENCH_BATCH		64
#define BENCH_MAX_RESULTS	512
#define BENCH_MAX_REPS		15
#define BENCH_MIN_SIZE		64
#define BENCH_MAX_SIZE		65536
#define NSEC_PER_SEC		1000000000ULL
#define MIB			(1024ULL * 1024)

enum mech {
	MECH_CBM,
	MECH_CBM_MAP,
	MECH_PIPE,
	MECH_SEQPACKET,
	MECH_MQUEUE,
	NR_MECHS,
};

static const char *const mech_names[NR_MECHS] = {
	[MECH_CBM] = "cbm",
	[MECH_CBM_MAP] = "cbm-batch+mmap",
	[MECH_PIPE] = "pipe",
	[MECH_SEQPACKET] = "seqpacket",
	[MECH_MQUEUE] = "mqueue",
};

static bool mech_is_cbm(enum mech m)
{
	return m == MECH_CBM || m == MECH_CBM_MAP;
}

/* What every message starts with; its last 8 bytes repeat @check */
struct bench_msg {
	uint64_t seq;
	uint64_t check;
	uint32_t writer;
	uint32_t size;
	uint64_t sent_ns;
};

#define BENCH_TAIL	sizeof(uint64_t)

static struct {
	unsigned int reps;
	double secs;
	bool quick;
	bool tap;
	bool icount;
	unsigned long long buffer;
	const char *json;
	unsigned int sections;
	unsigned int mechs;
	unsigned int sizes;
	int ncpus;
} opt = {
	.reps = 3,
	.secs = 0.3,
	.buffer = MIB,
	.sections = ~0U,
	.mechs = ~0U,
	.sizes = ~0U,
};

enum section {
	SEC_THROUGHPUT,
	SEC_COST,
	SEC_FANOUT,
	SEC_WRITERS,
	SEC_LATENCY,
	SEC_LIMITS,
	SEC_RESIZE,
	NR_SECTIONS,
};

static const char *const section_names[NR_SECTIONS] = {
	[SEC_THROUGHPUT] = "throughput",
	[SEC_COST] = "cost",
	[SEC_FANOUT] = "fanout",
	[SEC_WRITERS] = "writers",
	[SEC_LATENCY] = "latency",
	[SEC_LIMITS] = "limits",
	[SEC_RESIZE] = "resize",
};

static const size_t sizes[] = { 64, 1024, 16384, 65536 };
#define NR_SIZES	(sizeof(sizes) / sizeof(sizes[0]))
static const char *const size_names[NR_SIZES] = { "64", "1024", "16384",
						  "65536" };

/* Placement of readers relative to writers */
enum place {
	PLACE_CROSS,
	PLACE_SAME,
};

static const char *const place_names[] = {
	[PLACE_CROSS] = "cross-CPU",
	[PLACE_SAME] = "same-CPU",
};

/* One figure: the median of the repetitions, and their extremes */
struct result {
	const char *section;
	const char *mech;
	const char *place;
	const char *metric;
	const char *unit;
	size_t size;
	double med, min, max;
	/* Context switches per message in the median run, for throughput */
	double switches;
	unsigned int reps;
	const char *error;
	bool na;
};

static struct result results[BENCH_MAX_RESULTS];
static unsigned int nr_results;
static unsigned int tap_count;
static unsigned int tap_failed;

/* Shared with the children of a run */
struct shared {
	uint64_t end_ns[BENCH_MAX_PROCS];
	uint64_t count[BENCH_MAX_PROCS];
	char error[256];
	uint64_t nr_lat;
	/* Followed by nr_lat latency samples of the ping-pong */
	uint64_t lat[];
};

static struct shared *shm;
static size_t shm_size;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Lines that are not TAP results are TAP comments in --tap mode */
static void out(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("%s%s\n", opt.tap && line[0] ? "# " : "", line);
	fflush(stdout);
}

/* A child's first error wins; the parent reports it */
static void child_fail(const char *fmt, ...)
{
	char msg[sizeof(shm->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!shm->error[0])
		snprintf(shm->error, sizeof(shm->error), "%s", msg);
	_exit(1);
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % opt.ncpus, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		child_fail("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

static uint64_t check_word(uint64_t seq, uint32_t writer, uint32_t size)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15ULL ^
		     ((uint64_t)writer << 40) ^ size;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

static void msg_fill(void *buf, size_t size, uint32_t writer, uint64_t seq)
{
	struct bench_msg *m = buf;

	m->seq = seq;
	m->writer = writer;
	m->size = size;
	m->check = check_word(seq, writer, size);
	m->sent_ns = 0;
	memcpy((char *)buf + size - BENCH_TAIL, &m->check, BENCH_TAIL);
}

/*
 * Check a received message: its size, writer, the next sequence number of
 * that writer and both copies of the check word. @next has one slot per
 * writer.
 */
static void msg_verify(const void *buf, size_t len, size_t size,
		       unsigned int nwriters, uint64_t *next)
{
	const struct bench_msg *m = buf;
	uint64_t tail;

	if (len != size)
		child_fail("message of %zu bytes, expected %zu", len, size);
	if (m->writer >= nwriters || m->size != size)
		child_fail("bad message header (writer %u, size %u)",
			   m->writer, m->size);
	if (m->seq != next[m->writer])
		child_fail("writer %u: message %llu, expected %llu", m->writer,
			   (unsigned long long)m->seq,
			   (unsigned long long)next[m->writer]);
	memcpy(&tail, (const char *)buf + size - BENCH_TAIL, BENCH_TAIL);
	if (m->check != check_word(m->seq, m->writer, size) ||
	    tail != m->check)
		child_fail("writer %u: message %llu corrupt", m->writer,
			   (unsigned long long)m->seq);
	next[m->writer]++;
}

/* ---- channels ---------------------------------------------------------- */

/*
 * A channel: one cbm conversation, one pipe, one socket pair or one
 * message queue, created by the parent with @opt.buffer bytes of room for
 * payloads (see Documentation/performance.rst for how each is sized).
 */
struct chan {
	enum mech mech;
	size_t size;
	int fds[2];
	int owner;
	char name[CBM_NAME_MAX];
};

/* An end of a channel, opened in the child that uses it */
struct end {
	struct chan *chan;
	int fd;
	bool map_open;
	struct cbm_map map;
	uint64_t cbm_seq;
	bool cbm_started;
	void *rbuf;
	size_t rlen;
};

static unsigned int chan_serial;

static int cbm_bind_fd(int fd, const char *name, unsigned int flags,
		       unsigned int conv_flags, unsigned long long capacity)
{
	struct cbm_bind b = {
		.size = sizeof(b),
		.flags = flags,
		.mode = 0600,
		.conv_flags = conv_flags,
		.capacity = capacity,
	};

	snprintf(b.name, sizeof(b.name), "%s", name);
	return ioctl(fd, CBM_IOC_BIND, &b);
}

static int cbm_unlink_name(const char *name)
{
	struct cbm_unlink u = { .size = sizeof(u) };
	int fd, ret;

	fd = open(CBM_DEV, O_RDONLY);
	if (fd < 0)
		return -1;
	snprintf(u.name, sizeof(u.name), "%s", name);
	ret = ioctl(fd, CBM_IOC_UNLINK, &u);
	close(fd);
	return ret;
}

static unsigned long long pow2_at_least(unsigned long long n)
{
	unsigned long long p = 4096;

	while (p < n)
		p <<= 1;
	return p;
}

static int write_file(const char *path, unsigned long long value)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -1;
	ret = fprintf(f, "%llu\n", value) < 0;
	return fclose(f) || ret ? -1 : 0;
}

static int chan_create(struct chan *c, enum mech mech, size_t size,
		       char *err, size_t errlen)
{
	unsigned long long msgs = opt.buffer / size;
	int bufsize = (int)opt.buffer;

	memset(c, 0, sizeof(*c));
	c->mech = mech;
	c->size = size;
	c->fds[0] = c->fds[1] = c->owner = -1;
	if (msgs < 2)
		msgs = 2;
	switch (mech) {
	case MECH_CBM:
	case MECH_CBM_MAP:
		/* Room for the payloads, and for their headers */
		snprintf(c->name, sizeof(c->name), "bench-%d-%u", getpid(),
			 chan_serial++);
		c->owner = open(CBM_DEV, O_WRONLY);
		if (c->owner < 0)
			goto fail;
		if (cbm_bind_fd(c->owner, c->name,
				CBM_BIND_CREATE | CBM_BIND_EXCL,
				CBM_CONV_LOSSLESS,
				pow2_at_least(opt.buffer)))
			goto fail;
		return 0;
	case MECH_PIPE:
		if (pipe(c->fds))
			goto fail;
		if (fcntl(c->fds[1], F_SETPIPE_SZ, bufsize) < 0)
			goto fail;
		return 0;
	case MECH_SEQPACKET:
		/*
		 * A socket pair queues max_dgram_qlen messages (10 by default)
		 * whatever its buffer: as many as fit the buffer here.
		 */
		write_file("/proc/sys/net/unix/max_dgram_qlen", msgs);
		if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c->fds))
			goto fail;
		if (setsockopt(c->fds[1], SOL_SOCKET, SO_SNDBUFFORCE, &bufsize,
			       sizeof(bufsize)) &&
		    setsockopt(c->fds[1], SOL_SOCKET, SO_SNDBUF, &bufsize,
			       sizeof(bufsize)))
			goto fail;
		return 0;
	case MECH_MQUEUE: {
		/*
		 * Limits that bind those without CAP_SYS_RESOURCE; raised
		 * when the caller may, as an administrator would.
		 */
		struct mq_attr attr = {
			.mq_maxmsg = msgs > 65536 ? 65536 : (long)msgs,
			.mq_msgsize = (long)size,
		};

		write_file("/proc/sys/fs/mqueue/msg_max", 65536);
		write_file("/proc/sys/fs/mqueue/msgsize_max", BENCH_MAX_SIZE);

		snprintf(c->name, sizeof(c->name), "/bench-%d-%u", getpid(),
			 chan_serial++);
		c->fds[0] = mq_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600,
				    &attr);
		if (c->fds[0] < 0)
			goto fail;
		return 0;
	}
	default:
		break;
	}
	errno = EINVAL;
fail:
	snprintf(err, errlen, "%s channel of %zu-byte messages: %s",
		 mech_names[mech], size, strerror(errno));
	if (c->owner >= 0)
		close(c->owner);
	if (c->fds[0] >= 0)
		close(c->fds[0]);
	if (c->fds[1] >= 0)
		close(c->fds[1]);
	return -1;
}

static void chan_destroy(struct chan *c)
{
	switch (c->mech) {
	case MECH_CBM:
	case MECH_CBM_MAP:
		cbm_unlink_name(c->name);
		close(c->owner);
		break;
	case MECH_MQUEUE:
		mq_close(c->fds[0]);
		mq_unlink(c->name);
		break;
	default:
		close(c->fds[0]);
		close(c->fds[1]);
		break;
	}
}

static void end_open(struct end *e, struct chan *c, bool reader)
{
	memset(e, 0, sizeof(*e));
	e->chan = c;
	e->fd = -1;
	e->rlen = sizeof(struct cbm_record) + c->size;
	e->rbuf = malloc(e->rlen);
	if (!e->rbuf)
		child_fail("malloc: %s", strerror(ENOMEM));
	switch (c->mech) {
	case MECH_CBM:
	case MECH_CBM_MAP: {
		struct cbm_fd_config cfg = {
			.size = sizeof(cfg),
			.flags = CBM_FD_RECORDS,
			.role = CBM_ROLE_USER,
		};
		int err;

		e->fd = open(CBM_DEV, reader ? O_RDONLY : O_WRONLY);
		if (e->fd < 0 || cbm_bind_fd(e->fd, c->name, 0, 0, 0) ||
		    ioctl(e->fd, CBM_IOC_SET_CONFIG, &cfg))
			child_fail("%s: open %s: %s", mech_names[c->mech],
				   c->name, strerror(errno));
		if (reader && c->mech == MECH_CBM_MAP) {
			err = cbm_map_open(&e->map, e->fd, CBM_MAP_OLDEST);
			if (err)
				child_fail("cbm_map_open: %s", strerror(-err));
			e->map_open = true;
		}
		break;
	}
	case MECH_PIPE:
	case MECH_SEQPACKET:
		e->fd = c->fds[reader ? 0 : 1];
		break;
	case MECH_MQUEUE:
		e->fd = c->fds[0];
		break;
	default:
		break;
	}
}

/* Wait until @fd is readable: the "poll-blocked reader" */
static void wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			child_fail("poll: %s", strerror(errno));
}

static void send_one(struct end *e, const void *buf, size_t size)
{
	ssize_t n;

	switch (e->chan->mech) {
	case MECH_MQUEUE:
		if (mq_send(e->fd, buf, size, 0))
			child_fail("mq_send: %s", strerror(errno));
		return;
	case MECH_PIPE:
		/* A pipe is a byte stream: a large write may be split */
		while (size) {
			n = write(e->fd, buf, size);
			if (n <= 0)
				child_fail("write: %s", strerror(errno));
			buf = (const char *)buf + n;
			size -= n;
		}
		return;
	default:
		n = write(e->fd, buf, size);
		if (n != (ssize_t)size)
			child_fail("%s write: %zd: %s", mech_names[e->chan->mech],
				   n, strerror(errno));
		return;
	}
}

/*
 * Append @count messages from @bufs (@stride bytes apart) with
 * CBM_IOC_SEND_BATCH, again from where a short batch stopped.
 */
static void send_batch(struct end *e, const char *bufs, size_t stride,
		       unsigned int count)
{
	struct cbm_batch_msg descs[BENCH_BATCH];
	struct cbm_send_batch b = {
		.size = sizeof(b),
		.msg_size = sizeof(descs[0]),
	};
	unsigned int i, done = 0;
	int ret;

	for (i = 0; i < count; i++) {
		descs[i] = (struct cbm_batch_msg){
			.role = CBM_ROLE_USER,
			.len = e->chan->size,
			.data = (uintptr_t)(bufs + i * stride),
		};
	}
	while (done < count) {
		b.msgs = (uintptr_t)&descs[done];
		b.count = count - done;
		ret = ioctl(e->fd, CBM_IOC_SEND_BATCH, &b);
		if (ret <= 0)
			child_fail("CBM_IOC_SEND_BATCH: %s", strerror(errno));
		done += ret;
	}
}

/* Receive one message into e->rbuf; returns the payload */
static const void *recv_one(struct end *e, size_t *len)
{
	const struct cbm_record *rec = e->rbuf;
	struct cbm_map_rec r;
	ssize_t n;
	int ret;

	switch (e->chan->mech) {
	case MECH_CBM:
		n = read(e->fd, e->rbuf, e->rlen);
		if (n < (ssize_t)sizeof(*rec))
			child_fail("cbm read: %zd: %s", n, strerror(errno));
		if (rec->type != CBM_RECORD_MSG)
			child_fail("cbm read: %llu messages lost",
				   (unsigned long long)rec->lost);
		if ((size_t)n != sizeof(*rec) + rec->len)
			child_fail("cbm read: %zd bytes for a %u-byte message",
				   n, rec->len);
		if (e->cbm_started && rec->seq != e->cbm_seq)
			child_fail("cbm seq %llu, expected %llu",
				   (unsigned long long)rec->seq,
				   (unsigned long long)e->cbm_seq);
		e->cbm_seq = rec->seq + 1;
		e->cbm_started = true;
		*len = rec->len;
		return rec + 1;
	case MECH_CBM_MAP:
		for (;;) {
			ret = cbm_map_peek(&e->map, &r);
			if (ret > 0)
				break;
			if (ret < 0)
				child_fail("cbm_map_peek: %s", strerror(-ret));
			ret = cbm_map_wait(&e->map, -1);
			if (ret < 0)
				child_fail("cbm_map_wait: %s", strerror(-ret));
		}
		if (r.hdr.type != CBM_RECORD_MSG)
			child_fail("cbm map: %llu messages lost",
				   (unsigned long long)r.hdr.lost);
		*len = r.hdr.len;
		return r.payload;
	case MECH_MQUEUE:
		n = mq_receive(e->fd, e->rbuf, e->rlen, NULL);
		if (n < 0)
			child_fail("mq_receive: %s", strerror(errno));
		*len = n;
		return e->rbuf;
	case MECH_PIPE: {
		size_t got = 0;

		while (got < e->chan->size) {
			n = read(e->fd, (char *)e->rbuf + got,
				 e->chan->size - got);
			if (n <= 0)
				child_fail("pipe read: %zd: %s", n,
					   strerror(errno));
			got += n;
		}
		*len = got;
		return e->rbuf;
	}
	default:
		n = read(e->fd, e->rbuf, e->rlen);
		if (n < 0)
			child_fail("%s read: %s", mech_names[e->chan->mech],
				   strerror(errno));
		*len = n;
		return e->rbuf;
	}
}

/* Done with what recv_one() returned: a mapped record must still be intact */
static void recv_done(struct end *e)
{
	int ret;

	if (e->chan->mech == MECH_CBM_MAP) {
		ret = cbm_map_release(&e->map);
		if (ret)
			child_fail("cbm map: record overwritten while read (%s)",
				   strerror(-ret));
	}
}

/* ---- runs -------------------------------------------------------------- */

/*
 * One run: @nwriters writers (each sending @n messages into every channel
 * of @chans) and @nreaders readers (reader i reads channel i % @nchans, and
 * must see @n messages from each writer). Returns the elapsed time in ns
 * from the start to the last reader's last message, or 0 after an error
 * (the reason in @err).
 */
struct run {
	struct chan *chans;
	unsigned int nchans;
	unsigned int nwriters;
	unsigned int nreaders;
	enum place place;
	uint64_t n;
};

/* Tell the parent this child is set up, then wait for the start */
static void ready_then_wait(int ready, int gate)
{
	char c;

	if (write(ready, "r", 1) != 1)
		child_fail("ready: %s", strerror(errno));
	close(ready);
	if (read(gate, &c, 1) < 0)
		child_fail("gate: %s", strerror(errno));
}

static void run_writer(const struct run *r, unsigned int w, int ready,
		       int gate)
{
	enum mech mech = r->chans[0].mech;
	size_t size = r->chans[0].size;
	struct end ends[BENCH_FANOUT];
	unsigned int i, batch;
	size_t stride = size;
	uint64_t seq;
	char *bufs;

	pin_cpu(0);
	for (i = 0; i < r->nchans; i++)
		end_open(&ends[i], &r->chans[i], false);
	bufs = malloc(stride * BENCH_BATCH);
	if (!bufs)
		child_fail("malloc: %s", strerror(ENOMEM));
	memset(bufs, 0x5a, stride * BENCH_BATCH);
	ready_then_wait(ready, gate);

	for (seq = 0; seq < r->n; seq += batch) {
		if (mech == MECH_CBM_MAP) {
			batch = r->n - seq < BENCH_BATCH ? r->n - seq :
							    BENCH_BATCH;
			for (i = 0; i < batch; i++)
				msg_fill(bufs + i * stride, size, w, seq + i);
			for (i = 0; i < r->nchans; i++)
				send_batch(&ends[i], bufs, stride, batch);
		} else {
			batch = 1;
			msg_fill(bufs, size, w, seq);
			for (i = 0; i < r->nchans; i++)
				send_one(&ends[i], bufs, size);
		}
	}
	shm->end_ns[BENCH_MAX_PROCS - 1 - w] = now_ns();
	_exit(0);
}

static void run_reader(const struct run *r, unsigned int rd, int ready,
		       int gate)
{
	uint64_t next[BENCH_WRITERS] = { 0 };
	uint64_t i, total = r->n * r->nwriters;
	struct end e;
	const void *p;
	size_t len;

	pin_cpu(r->place == PLACE_CROSS ? 1 : 0);
	end_open(&e, &r->chans[rd % r->nchans], true);
	ready_then_wait(ready, gate);
	for (i = 0; i < total; i++) {
		p = recv_one(&e, &len);
		msg_verify(p, len, e.chan->size, r->nwriters, next);
		recv_done(&e);
	}
	shm->end_ns[rd] = now_ns();
	shm->count[rd] = i;
	_exit(0);
}

/*
 * The children of the current run, for the time limit: the alarm handler
 * kills them itself, so that no wait can miss it.
 */
static pid_t run_pids[BENCH_MAX_PROCS];
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	unsigned int i;

	(void)sig;
	timed_out = 1;
	for (i = 0; i < BENCH_MAX_PROCS; i++)
		if (run_pids[i] > 0)
			kill(run_pids[i], SIGKILL);
}

/* Start the time limit of a run whose children are in run_pids[] */
static void limit_start(void)
{
	timed_out = 0;
	alarm(opt.icount ? 1200 : 300);
}

/* Context switches of the children of the last run */
static uint64_t last_switches;

/*
 * Wait for the children of run_pids[] (@n of them) and stop the time
 * limit; the first that fails (a reader that found a bad message stops,
 * and its writer would wait forever for room) stops all of them.
 */
static void reap(unsigned int n, bool *failed)
{
	unsigned int i, left = n;
	struct rusage ru;
	int status;
	pid_t pid;

	last_switches = 0;
	while (left) {
		pid = wait4(-1, &status, 0, &ru);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			*failed = true;
			break;
		}
		for (i = 0; i < n; i++)
			if (run_pids[i] == pid)
				run_pids[i] = 0;
		left--;
		last_switches += ru.ru_nvcsw + ru.ru_nivcsw;
		if (WIFEXITED(status) && !WEXITSTATUS(status))
			continue;
		*failed = true;
		for (i = 0; i < n; i++)
			if (run_pids[i] > 0)
				kill(run_pids[i], SIGKILL);
	}
	alarm(0);
	memset(run_pids, 0, sizeof(run_pids));
	if (timed_out) {
		*failed = true;
		snprintf(shm->error, sizeof(shm->error),
			 "timed out: a process was stuck");
	}
}

/*
 * Fork @n children running @fn (child @i gets @i), wait until each says it
 * is set up, start them all at once and wait for them. Returns the start
 * time, or 0 after an error (the reason in @err).
 */
static uint64_t run_children(unsigned int n,
			     void (*fn)(const void *ctx, unsigned int i,
					int ready, int gate),
			     const void *ctx, char *err, size_t errlen)
{
	unsigned int i, np = 0;
	bool failed = false;
	int gate[2], ready[2];
	uint64_t t0;
	char c;

	memset(shm, 0, shm_size);
	if (pipe(gate)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return 0;
	}
	if (pipe(ready)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(gate[0]);
		close(gate[1]);
		return 0;
	}
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			snprintf(shm->error, sizeof(shm->error), "fork: %s",
				 strerror(errno));
			failed = true;
			break;
		}
		if (!pid) {
			close(gate[1]);
			close(ready[0]);
			fn(ctx, i, ready[1], gate[0]);
			_exit(0);
		}
		run_pids[np++] = pid;
	}
	/* From here on, a child stuck even in its setup is killed */
	limit_start();
	close(ready[1]);
	close(gate[0]);
	/*
	 * Every child has opened its end when it says so: in a lossless
	 * conversation the readers hold every message from the start.
	 */
	for (i = 0; i < np && !failed; i++)
		if (read(ready[0], &c, 1) != 1)
			failed = true;
	close(ready[0]);
	if (failed)
		for (i = 0; i < np; i++)
			kill(run_pids[i], SIGKILL);
	t0 = now_ns();
	close(gate[1]);
	reap(np, &failed);
	if (failed || shm->error[0]) {
		snprintf(err, errlen, "%s",
			 shm->error[0] ? shm->error : "a child failed");
		return 0;
	}
	return t0;
}

static void run_child(const void *ctx, unsigned int i, int ready, int gate)
{
	const struct run *r = ctx;

	if (i < r->nreaders)
		run_reader(r, i, ready, gate);
	run_writer(r, i - r->nreaders, ready, gate);
}

static uint64_t run_once(const struct run *r, char *err, size_t errlen)
{
	uint64_t t0, end = 0;
	unsigned int i;

	t0 = run_children(r->nreaders + r->nwriters, run_child, r, err,
			  errlen);
	if (!t0)
		return 0;
	for (i = 0; i < r->nreaders; i++)
		if (shm->end_ns[i] > end)
			end = shm->end_ns[i];
	return end > t0 ? end - t0 : 1;
}

/* ---- statistics and results -------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The @q quantile (0..1) of @n sorted values, nearest rank */
static double quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)ceil(q * n);

	return v[i ? i - 1 : 0];
}

static struct result *result_add(const char *section, const char *mech,
				 const char *place, const char *metric,
				 const char *unit, size_t size)
{
	struct result *res;

	if (nr_results == BENCH_MAX_RESULTS) {
		fprintf(stderr, "cbm-bench: too many results\n");
		exit(1);
	}
	res = &results[nr_results++];
	*res = (struct result){
		.section = section, .mech = mech, .place = place,
		.metric = metric, .unit = unit, .size = size,
	};
	return res;
}

static void result_set(struct result *res, double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	res->reps = n;
	res->min = v[0];
	res->max = v[n - 1];
	res->med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 1234567 -> "1.23M" */
static const char *si(double v, char *buf, size_t len)
{
	static const char units[] = " kMGT";
	unsigned int u = 0;

	while (fabs(v) >= 1000 && u < sizeof(units) - 2) {
		v /= 1000;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.3g%c", v, units[u]);
	else
		snprintf(buf, len, "%.3g", v);
	return buf;
}

static void tap_result(const struct result *res, const char *what)
{
	char name[160], v[16];

	if (!opt.tap) {
		/* Progress, while the tables wait for the end */
		fprintf(stderr, "cbm-bench: %s %s%s%s %zu B: %s%s",
			res->section, res->mech, res->place ? " " : "",
			res->place ? res->place : "", res->size,
			res->reps ? si(res->med, v, sizeof(v)) : "",
			res->na ? "n/a" : res->error ? res->error : "");
		if (res->switches)
			fprintf(stderr, ", %.3f context switches/message",
				res->switches);
		fputc('\n', stderr);
		return;
	}
	snprintf(name, sizeof(name), "%s %s%s%s %zu B %s", res->section,
		 res->mech, res->place ? " " : "", res->place ? res->place : "",
		 res->size, what);
	tap_count++;
	if (res->na) {
		printf("ok %u %s # SKIP %s\n", tap_count, name, res->error);
	} else if (res->error) {
		tap_failed++;
		printf("# %s\nnot ok %u %s\n", res->error, tap_count, name);
	} else {
		printf("ok %u %s\n", tap_count, name);
	}
	fflush(stdout);
}

static void result_fail(struct result *res, const char *error)
{
	res->error = strdup(error);
	if (!res->error)
		res->error = "out of memory";
}

/* ---- throughput, fan-out, writers ------------------------------------- */

/*
 * Create fresh channels, run, destroy them: every run starts with empty
 * conversations, pipes and queues.
 */
static uint64_t run_fresh(struct run *r, enum mech mech, size_t size,
			  char *err, size_t errlen)
{
	struct chan chans[BENCH_FANOUT];
	unsigned int i;
	uint64_t ns;

	for (i = 0; i < r->nchans; i++) {
		if (chan_create(&chans[i], mech, size, err, errlen)) {
			while (i--)
				chan_destroy(&chans[i]);
			return 0;
		}
	}
	r->chans = chans;
	ns = run_once(r, err, errlen);
	for (i = 0; i < r->nchans; i++)
		chan_destroy(&chans[i]);
	r->chans = NULL;
	return ns;
}

/* Messages for one repetition of about opt.secs, from a short first run */
static uint64_t calibrate(struct run *r, enum mech mech, size_t size,
			  char *err, size_t errlen)
{
	uint64_t ns, n;

	r->n = opt.quick ? 32 : 256;
	if (opt.quick)
		return r->n;
	ns = run_fresh(r, mech, size, err, errlen);
	if (!ns)
		return 0;
	n = (uint64_t)(opt.secs * NSEC_PER_SEC / ns * r->n);
	return n < 256 ? 256 : n > 20000000 ? 20000000 : n;
}

/*
 * Unique messages per second: each written once by its writer (and, for
 * the peers of a fan-out, sent into each reader's channel).
 */
static void measure_rate(struct result *res, struct run *r, enum mech mech)
{
	double v[BENCH_MAX_REPS], sw[BENCH_MAX_REPS];
	unsigned int i, reps = opt.quick ? 1 : opt.reps;
	char err[256] = "";
	uint64_t n, ns;

	n = calibrate(r, mech, res->size, err, sizeof(err));
	for (i = 0; n && i < reps; i++) {
		r->n = n;
		ns = run_fresh(r, mech, res->size, err, sizeof(err));
		if (!ns)
			break;
		v[i] = (double)n * r->nwriters * NSEC_PER_SEC / ns;
		sw[i] = (double)last_switches / (n * r->nwriters);
	}
	if (!n || i < reps) {
		result_fail(res, err);
	} else {
		result_set(res, v, reps);
		qsort(sw, reps, sizeof(sw[0]), cmp_double);
		res->switches = sw[reps / 2];
	}
	tap_result(res, "messages arrive intact and in order");
}

static bool mech_wanted(enum mech m)
{
	return opt.mechs & (1U << m);
}

static bool size_wanted(unsigned int s)
{
	return opt.sizes & (1U << s);
}

/*
 * Every wanted size and mechanism of one section laid out as @tmpl: peers
 * get one channel per reader (a fan-out writes each message into all of
 * them), cbm one conversation for all.
 */
static void bench_rates(const char *section, const struct run *tmpl)
{
	struct run r = *tmpl;
	struct result *res;
	unsigned int s;
	enum mech m;

	for (s = 0; s < NR_SIZES; s++) {
		for (m = 0; m < NR_MECHS; m++) {
			if (!mech_wanted(m) || !size_wanted(s))
				continue;
			r.nchans = mech_is_cbm(m) ? 1 : r.nreaders;
			res = result_add(section, mech_names[m],
					 place_names[r.place], "rate",
					 "msgs/s", sizes[s]);
			/* Concurrent writes to a pipe interleave above PIPE_BUF */
			if (m == MECH_PIPE && r.nwriters > 1 &&
			    sizes[s] > PIPE_BUF) {
				res->error = "n/a: writes above PIPE_BUF are not atomic";
				res->na = true;
				tap_result(res, "not applicable");
				continue;
			}
			measure_rate(res, &r, m);
		}
	}
}

static void bench_throughput(enum place place)
{
	struct run r = { .nwriters = 1, .nreaders = 1, .place = place };

	bench_rates("throughput", &r);
}

static void bench_fanout(void)
{
	struct run r = { .nwriters = 1, .nreaders = BENCH_FANOUT,
			 .place = opt.ncpus > 1 ? PLACE_CROSS : PLACE_SAME };

	bench_rates("fanout", &r);
}

static void bench_writers(void)
{
	struct run r = { .nwriters = BENCH_WRITERS, .nreaders = 1,
			 .place = opt.ncpus > 1 ? PLACE_CROSS : PLACE_SAME };

	bench_rates("writers", &r);
}

/* ---- CPU cost without the scheduler -------------------------------------- */

#define BENCH_COST_BURST	32

/* Messages per burst: half of what the smallest channel holds */
static unsigned int cost_burst(size_t size)
{
	/* Per message: a cbm header, or a socket buffer's overhead */
	unsigned long long n = opt.buffer / (size + 1024) / 2;

	return n < 1 ? 1 : n > BENCH_COST_BURST ? BENCH_COST_BURST : n;
}

/*
 * One process writes a burst of messages, then reads them back, again and
 * again: the cost of the mechanism itself, with no other process to wake
 * or switch to (that is what the throughput rows add).
 */
struct cost {
	struct chan *chan;
	uint64_t n;
};

static void run_cost(const void *ctx, unsigned int unused, int ready,
		     int gate)
{
	const struct cost *cost = ctx;
	struct chan *c = cost->chan;
	uint64_t next[1] = { 0 }, seq = 0, t;
	unsigned int i, burst = cost_burst(c->size);
	struct end w, r;
	const void *p;
	size_t len;
	char *bufs;

	pin_cpu(0);
	end_open(&r, c, true);
	end_open(&w, c, false);
	bufs = malloc(c->size * burst);
	if (!bufs)
		child_fail("malloc: %s", strerror(ENOMEM));
	memset(bufs, 0x5a, c->size * burst);
	(void)unused;
	ready_then_wait(ready, gate);
	t = now_ns();
	while (seq < cost->n) {
		for (i = 0; i < burst; i++)
			msg_fill(bufs + i * c->size, c->size, 0, seq + i);
		if (c->mech == MECH_CBM_MAP) {
			send_batch(&w, bufs, c->size, burst);
		} else {
			for (i = 0; i < burst; i++)
				send_one(&w, bufs + i * c->size, c->size);
		}
		for (i = 0; i < burst; i++) {
			p = recv_one(&r, &len);
			msg_verify(p, len, c->size, 1, next);
			recv_done(&r);
		}
		/* What the map reader took is consumed: tell the kernel */
		if (c->mech == MECH_CBM_MAP &&
		    lseek(r.fd, (off_t)r.map.seq, SEEK_SET) < 0)
			child_fail("lseek: %s", strerror(errno));
		seq += burst;
	}
	shm->end_ns[0] = now_ns() - t;
	shm->count[0] = seq;
	_exit(0);
}

static uint64_t cost_once(enum mech mech, size_t size, uint64_t n,
			  uint64_t *done, char *err, size_t errlen)
{
	struct chan c;
	struct cost cost = { .chan = &c, .n = n };
	uint64_t t0;

	if (chan_create(&c, mech, size, err, errlen))
		return 0;
	t0 = run_children(1, run_cost, &cost, err, errlen);
	chan_destroy(&c);
	if (!t0)
		return 0;
	*done = shm->count[0];
	return shm->end_ns[0] ? shm->end_ns[0] : 1;
}

static void bench_cost(void)
{
	unsigned int s, i, reps = opt.quick ? 1 : opt.reps;
	double v[BENCH_MAX_REPS];
	struct result *res;
	uint64_t n, done, ns;
	char err[256];
	enum mech m;

	for (s = 0; s < NR_SIZES; s++) {
		for (m = 0; m < NR_MECHS; m++) {
			if (!mech_wanted(m) || !size_wanted(s))
				continue;
			res = result_add("cost", mech_names[m],
					 place_names[PLACE_SAME], "rate",
					 "msgs/s", sizes[s]);
			n = BENCH_COST_BURST * 8;
			err[0] = 0;
			ns = opt.quick ? 1 : cost_once(m, sizes[s], n, &done,
							err, sizeof(err));
			if (ns && !opt.quick)
				n = (uint64_t)(opt.secs * NSEC_PER_SEC / ns * done);
			if (n < BENCH_COST_BURST)
				n = BENCH_COST_BURST;
			for (i = 0; ns && i < reps; i++) {
				ns = cost_once(m, sizes[s], n, &done, err,
					       sizeof(err));
				if (ns)
					v[i] = (double)done * NSEC_PER_SEC / ns;
			}
			if (!ns)
				result_fail(res, err);
			else
				result_set(res, v, reps);
			tap_result(res, "messages written and read back intact");
		}
	}
}

/* ---- wake-up latency --------------------------------------------------- */

#define BENCH_LAT_MAX	65536
#define BENCH_LAT_WARMUP	64

/* Wait for a message as a poll()-blocked reader, then take it */
static const void *recv_polled(struct end *e, size_t *len)
{
	/* cbm_map_wait() inside recv_one() polls for the map reader */
	if (e->chan->mech != MECH_CBM_MAP)
		wait_readable(e->fd);
	return recv_one(e, len);
}

/*
 * The ponger answers every message on @chans[0] with the same message on
 * @chans[1]; the pinger (@ping) sends, waits for the answer and records
 * half the round trip.
 */
static void run_pingpong(struct chan *chans, bool ping, uint64_t n,
			 enum place place, int ready, int gate)
{
	uint64_t next[1] = { 0 }, i, t;
	struct end in, outp;
	size_t size = chans[0].size, len;
	const void *p;
	char *buf;

	pin_cpu(ping || place == PLACE_SAME ? 0 : 1);
	end_open(&in, &chans[ping ? 1 : 0], true);
	end_open(&outp, &chans[ping ? 0 : 1], false);
	buf = malloc(size);
	if (!buf)
		child_fail("malloc: %s", strerror(ENOMEM));
	memset(buf, 0x5a, size);
	ready_then_wait(ready, gate);
	for (i = 0; i < n + BENCH_LAT_WARMUP; i++) {
		if (ping) {
			msg_fill(buf, size, 0, i);
			t = now_ns();
			send_one(&outp, buf, size);
			p = recv_polled(&in, &len);
			msg_verify(p, len, size, 1, next);
			recv_done(&in);
			t = now_ns() - t;
			if (i >= BENCH_LAT_WARMUP)
				shm->lat[i - BENCH_LAT_WARMUP] = t / 2;
		} else {
			p = recv_polled(&in, &len);
			msg_verify(p, len, size, 1, next);
			memcpy(buf, p, size);
			recv_done(&in);
			send_one(&outp, buf, size);
		}
	}
	_exit(0);
}

struct pingpong {
	struct chan *chans;
	uint64_t n;
	enum place place;
};

static void pingpong_child(const void *ctx, unsigned int i, int ready,
			   int gate)
{
	const struct pingpong *pp = ctx;

	run_pingpong(pp->chans, i == 1, pp->n, pp->place, ready, gate);
}

static int latency_once(enum mech mech, enum place place, uint64_t n,
			double *pct, char *err, size_t errlen)
{
	static const double qs[] = { 0.50, 0.99, 0.999 };
	struct chan chans[2];
	struct pingpong pp = { .chans = chans, .n = n, .place = place };
	bool failed = false;
	unsigned int i;
	double *v;

	for (i = 0; i < 2; i++) {
		if (chan_create(&chans[i], mech, BENCH_MIN_SIZE, err, errlen)) {
			if (i)
				chan_destroy(&chans[0]);
			return -1;
		}
	}
	if (!run_children(2, pingpong_child, &pp, err, errlen)) {
		failed = true;
		goto out;
	}
	v = malloc(n * sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "malloc: %s", strerror(ENOMEM));
		failed = true;
		goto out;
	}
	for (i = 0; i < n; i++)
		v[i] = shm->lat[i];
	qsort(v, n, sizeof(*v), cmp_double);
	for (i = 0; i < 3; i++)
		pct[i] = quantile(v, n, qs[i]);
	free(v);
out:
	chan_destroy(&chans[0]);
	chan_destroy(&chans[1]);
	return failed ? -1 : 0;
}

static const char *const lat_metrics[] = { "p50", "p99", "p99.9" };

static void bench_latency(enum place place)
{
	double v[3][BENCH_MAX_REPS], pct[3];
	unsigned int i, k, reps = opt.quick ? 1 : opt.reps;
	uint64_t n = opt.quick ? 64 : opt.icount ? 2000 : 5000;
	struct result *res[3];
	char err[256];
	enum mech m;

	for (m = 0; m < NR_MECHS; m++) {
		if (!mech_wanted(m))
			continue;
		for (k = 0; k < 3; k++)
			res[k] = result_add("latency", mech_names[m],
					    place_names[place], lat_metrics[k],
					    "ns", BENCH_MIN_SIZE);
		for (i = 0; i < reps; i++) {
			if (latency_once(m, place, n, pct, err, sizeof(err)))
				break;
			for (k = 0; k < 3; k++)
				v[k][i] = pct[k];
		}
		for (k = 0; k < 3; k++) {
			if (i < reps)
				result_fail(res[k], err);
			else
				result_set(res[k], v[k], reps);
		}
		tap_result(res[0], "ping-pong messages arrive intact");
	}
}

/* ---- limits: memcpy and a bare system call ----------------------------- */

static void bench_limits(void)
{
	size_t len = opt.quick ? 4 * MIB : 64 * MIB, block = 65536, off;
	double bw[BENCH_MAX_REPS], sc[BENCH_MAX_REPS];
	unsigned int i, reps = opt.quick ? 1 : opt.reps;
	uint64_t t, bytes, calls, k;
	struct result *res;
	char *src, *dst;

	src = malloc(len);
	dst = malloc(len);
	if (!src || !dst) {
		fprintf(stderr, "cbm-bench: malloc: %s\n", strerror(ENOMEM));
		exit(1);
	}
	memset(src, 0x5a, len);
	memset(dst, 0xa5, len);
	for (i = 0; i < reps; i++) {
		bytes = 0;
		t = now_ns();
		do {
			for (off = 0; off < len; off += block)
				memcpy(dst + off, src + off, block);
			bytes += len;
			/* Keep the copies from being optimised away */
			__asm__ volatile("" : : "r"(dst) : "memory");
		} while (!opt.quick && now_ns() - t < opt.secs * NSEC_PER_SEC);
		bw[i] = (double)bytes * NSEC_PER_SEC / (now_ns() - t);
	}
	res = result_add("limits", "memcpy", NULL, "bandwidth", "B/s", block);
	if (memcmp(src, dst, len))
		result_fail(res, "memcpy copied wrong bytes");
	else
		result_set(res, bw, reps);
	tap_result(res, "64 KiB blocks copied");
	free(src);
	free(dst);

	calls = opt.quick ? 1000 : opt.icount ? 100000 : 300000;
	for (i = 0; i < reps; i++) {
		t = now_ns();
		for (k = 0; k < calls; k++)
			syscall(SYS_getppid);
		sc[i] = (double)(now_ns() - t) / calls;
	}
	res = result_add("limits", "getppid", NULL, "syscall", "ns", 0);
	result_set(res, sc, reps);
	tap_result(res, "bare system call loop");
}

/* ---- resize ------------------------------------------------------------- */

#define CBM_PARAM_MAX_CAPACITY	"/sys/module/cbm/parameters/max_capacity"

static int cbm_resize_to(int fd, unsigned long long capacity, uint64_t *ns,
			 uint64_t *evicted)
{
	struct cbm_resize rs = { .size = sizeof(rs), .capacity = capacity };
	uint64_t t = now_ns();

	if (ioctl(fd, CBM_IOC_RESIZE, &rs))
		return -errno;
	*ns = now_ns() - t;
	if (evicted)
		*evicted = rs.evicted;
	return rs.capacity == capacity ? 0 : -ERANGE;
}

/* The mapped reader takes the next message: it must be number @seq */
static int map_expect(struct cbm_map *m, uint64_t seq, size_t size,
		      uint64_t lost, char *err, size_t errlen)
{
	struct cbm_map_rec r;
	int ret;

	ret = cbm_map_peek(m, &r);
	if (ret > 0 && lost) {
		if (r.hdr.type != CBM_RECORD_GAP || r.hdr.lost != lost) {
			snprintf(err, errlen, "expected a gap of %llu",
				 (unsigned long long)lost);
			return -1;
		}
		ret = cbm_map_peek(m, &r);
	}
	if (ret <= 0 || r.hdr.type != CBM_RECORD_MSG || r.hdr.len != size) {
		snprintf(err, errlen, "mapped reader: no message %llu (%s)",
			 (unsigned long long)seq, ret < 0 ? strerror(-ret) :
			 "nothing there");
		return -1;
	}
	if (((const struct bench_msg *)r.payload)->seq != seq ||
	    check_word(seq, 0, size) !=
	    ((const struct bench_msg *)r.payload)->check ||
	    cbm_map_release(m)) {
		snprintf(err, errlen, "mapped reader: message %llu corrupt",
			 (unsigned long long)seq);
		return -1;
	}
	return 0;
}

/*
 * Fill a conversation of @cap bytes, map it, then time growing it to twice
 * that and shrinking it back, with the mapped reader checking after each
 * step that it still reads the next message; last, time a shrink to half
 * that evicts, and check that the reader is told exactly what it lost.
 */
static void bench_resize(void)
{
	unsigned long long cap = opt.quick ? MIB : 64 * MIB, old_max = 0;
	size_t size = opt.quick ? 4096 : 65536;
	double grow[BENCH_MAX_REPS], shrink[BENCH_MAX_REPS], evict_v[1];
	unsigned int i, reps = opt.quick ? 1 : opt.reps;
	struct result *rg, *rs, *re;
	uint64_t n, k, ns, evicted, seq = 0;
	char err[256] = "", name[CBM_NAME_MAX];
	struct cbm_map m = { .fd = -1 };
	int wfd = -1, rfd = -1, ret;
	FILE *f;
	char *buf;

	rg = result_add("resize", "cbm", NULL, "grow", "ns", size);
	rs = result_add("resize", "cbm", NULL, "shrink", "ns", size);
	re = result_add("resize", "cbm", NULL, "shrink-evict", "ns", size);
	buf = malloc(size);
	if (!buf) {
		snprintf(err, sizeof(err), "malloc: %s", strerror(ENOMEM));
		goto out;
	}
	f = fopen(CBM_PARAM_MAX_CAPACITY, "r");
	if (f) {
		if (fscanf(f, "%llu", &old_max) != 1)
			old_max = 0;
		fclose(f);
	}
	if (old_max < 2 * cap && write_file(CBM_PARAM_MAX_CAPACITY, 2 * cap)) {
		snprintf(err, sizeof(err), "raising max_capacity: %s",
			 strerror(errno));
		goto out;
	}
	snprintf(name, sizeof(name), "bench-%d-resize", getpid());
	wfd = open(CBM_DEV, O_WRONLY);
	rfd = open(CBM_DEV, O_RDONLY);
	if (wfd < 0 || rfd < 0 ||
	    cbm_bind_fd(wfd, name, CBM_BIND_CREATE | CBM_BIND_EXCL, 0, cap) ||
	    cbm_bind_fd(rfd, name, 0, 0, 0)) {
		snprintf(err, sizeof(err), "conversation: %s", strerror(errno));
		goto out;
	}
	n = cap / CBM_RECORD_SPACE(size);
	for (k = 0; k < n; k++) {
		msg_fill(buf, size, 0, k);
		if (write(wfd, buf, size) != (ssize_t)size) {
			snprintf(err, sizeof(err), "write: %s",
				 strerror(errno));
			goto out;
		}
	}
	ret = cbm_map_open(&m, rfd, CBM_MAP_OLDEST);
	if (ret) {
		snprintf(err, sizeof(err), "cbm_map_open: %s", strerror(-ret));
		goto out;
	}
	if (map_expect(&m, seq++, size, 0, err, sizeof(err)))
		goto out;
	for (i = 0; i < reps; i++) {
		ret = cbm_resize_to(wfd, 2 * cap, &ns, &evicted);
		if (ret || evicted) {
			snprintf(err, sizeof(err), "grow: %s, %llu evicted",
				 strerror(-ret), (unsigned long long)evicted);
			goto out;
		}
		grow[i] = ns;
		if (map_expect(&m, seq++, size, 0, err, sizeof(err)))
			goto out;
		ret = cbm_resize_to(wfd, cap, &ns, &evicted);
		if (ret || evicted) {
			snprintf(err, sizeof(err), "shrink: %s, %llu evicted",
				 strerror(-ret), (unsigned long long)evicted);
			goto out;
		}
		shrink[i] = ns;
		if (map_expect(&m, seq++, size, 0, err, sizeof(err)))
			goto out;
	}
	ret = cbm_resize_to(wfd, cap / 2, &ns, &evicted);
	if (ret || evicted < n / 2) {
		snprintf(err, sizeof(err), "shrink to half: %s, %llu evicted",
			 strerror(-ret), (unsigned long long)evicted);
		goto out;
	}
	evict_v[0] = ns;
	if (map_expect(&m, evicted, size, evicted - seq, err, sizeof(err)))
		goto out;
	result_set(rg, grow, reps);
	result_set(rs, shrink, reps);
	result_set(re, evict_v, 1);
out:
	if (err[0]) {
		result_fail(rg, err);
		result_fail(rs, err);
		result_fail(re, err);
	}
	tap_result(rg, "a mapped reader reads on across grow and shrink");
	if (m.base)
		cbm_map_close(&m);
	if (wfd >= 0) {
		cbm_unlink_name(name);
		close(wfd);
	}
	if (rfd >= 0)
		close(rfd);
	if (old_max && old_max < 2 * cap)
		write_file(CBM_PARAM_MAX_CAPACITY, old_max);
	free(buf);
}

/* ---- output ------------------------------------------------------------- */

static const struct result *find(const char *section, const char *mech,
				 const char *place, const char *metric,
				 size_t size)
{
	unsigned int i;

	for (i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];

		if (!strcmp(r->section, section) && !strcmp(r->mech, mech) &&
		    (!place || (r->place && !strcmp(r->place, place))) &&
		    !strcmp(r->metric, metric) && r->size == size)
			return r;
	}
	return NULL;
}

static bool valid(const struct result *r)
{
	return r && !r->error && r->reps;
}

/*
 * A rate as shown: messages per second, or with --icount guest
 * instructions per message (a guest nanosecond is one instruction).
 */
static double shown(double rate)
{
	return opt.icount ? NSEC_PER_SEC / rate : rate;
}

static void rate_cell(const struct result *r, char *cell, size_t len)
{
	char a[16], b[16], c[16];

	if (!valid(r)) {
		snprintf(cell, len, "%s", r && r->na ? "n/a" :
			 r && r->error ? "failed" : "-");
		return;
	}
	/* In instructions per message the fastest run is the smallest */
	snprintf(cell, len, "%s [%s .. %s]", si(shown(r->med), a, sizeof(a)),
		 si(shown(opt.icount ? r->max : r->min), b, sizeof(b)),
		 si(shown(opt.icount ? r->min : r->max), c, sizeof(c)));
}

static void ratio_cell(const struct result *num, const struct result *den,
		       char *cell, size_t len)
{
	if (valid(num) && valid(den))
		snprintf(cell, len, "%.2f", num->med / den->med);
	else
		snprintf(cell, len, "-");
}

static void print_rates(const char *section, const char *place,
			const char *title)
{
	const struct result *r, *cbm, *map;
	char cell[64], mb[16], q1[16], q2[16];
	unsigned int s;
	enum mech m;

	for (s = 0; s < NR_SIZES; s++)
		for (m = 0; m < NR_MECHS; m++)
			if (find(section, mech_names[m], place, "rate",
				 sizes[s]))
				goto found;
	return;
found:
	out("");
	out("%s, %s: %s, median [min .. max] of %u runs", title, place,
	    opt.icount ? "guest instructions per message" : "messages/s",
	    opt.quick ? 1 : opt.reps);
	out("  (cbm/x, map/x: how many times faster than x cbm write/read and "
	    "cbm batch+mmap are)");
	out("%7s  %-15s %-30s %9s %6s %6s", "size", "mechanism",
	    opt.icount ? "instructions/message" : "messages/s",
	    opt.icount ? "B/Kinstr" : "MB/s", "cbm/x", "map/x");
	for (s = 0; s < NR_SIZES; s++) {
		cbm = find(section, mech_names[MECH_CBM], place, "rate",
			   sizes[s]);
		map = find(section, mech_names[MECH_CBM_MAP], place, "rate",
			   sizes[s]);
		for (m = 0; m < NR_MECHS; m++) {
			r = find(section, mech_names[m], place, "rate",
				 sizes[s]);
			if (!r)
				continue;
			rate_cell(r, cell, sizeof(cell));
			/*
			 * Bytes per microsecond; with --icount, per thousand
			 * instructions (the rate is per 10^9 of them)
			 */
			if (valid(r))
				snprintf(mb, sizeof(mb), "%.1f",
					 r->med * sizes[s] / 1e6);
			else
				snprintf(mb, sizeof(mb), "-");
			ratio_cell(cbm, r, q1, sizeof(q1));
			ratio_cell(map, r, q2, sizeof(q2));
			out("%7zu  %-15s %-30s %9s %6s %6s", sizes[s],
			    mech_names[m], cell, mb, q1, q2);
			if (r->error && !r->na)
				out("         %s: %s", mech_names[m], r->error);
		}
	}
}

static void print_latency(const char *place)
{
	const struct result *r, *cbm99;
	char c[3][48], a[16], b[16], d[16], q[16];
	unsigned int k;
	enum mech m;

	cbm99 = find("latency", mech_names[MECH_CBM], place, "p99",
		     BENCH_MIN_SIZE);
	if (!find("latency", mech_names[NR_MECHS - 1], place, "p50",
		  BENCH_MIN_SIZE) && !cbm99)
		return;
	out("");
	out("wake-up latency, %s: %zu B ping-pong through poll(), half the "
	    "round trip in %s,", place, (size_t)BENCH_MIN_SIZE,
	    opt.icount ? "guest instructions" : "ns");
	out("  median [min .. max] of %u runs; x/cbm: x's p99 over cbm's",
	    opt.quick ? 1 : opt.reps);
	out("  %-15s %-24s %-24s %-24s %6s", "mechanism", "p50", "p99",
	    "p99.9", "x/cbm");
	for (m = 0; m < NR_MECHS; m++) {
		for (k = 0; k < 3; k++) {
			r = find("latency", mech_names[m], place,
				 lat_metrics[k], BENCH_MIN_SIZE);
			if (!r)
				break;
			if (valid(r))
				snprintf(c[k], sizeof(c[k]), "%s [%s .. %s]",
					 si(r->med, a, sizeof(a)),
					 si(r->min, b, sizeof(b)),
					 si(r->max, d, sizeof(d)));
			else
				snprintf(c[k], sizeof(c[k]), "failed");
		}
		if (k < 3)
			continue;
		r = find("latency", mech_names[m], place, "p99",
			 BENCH_MIN_SIZE);
		ratio_cell(r, cbm99, q, sizeof(q));
		out("  %-15s %-24s %-24s %-24s %6s", mech_names[m], c[0], c[1],
		    c[2], q);
		if (r->error)
			out("         %s: %s", mech_names[m], r->error);
	}
}

static void print_limits(void)
{
	const struct result *mc = find("limits", "memcpy", NULL, "bandwidth",
				       65536);
	const struct result *sc = find("limits", "getppid", NULL, "syscall",
				       0);
	const struct result *r;
	static const char *const steps[] = { "grow", "shrink",
					     "shrink-evict" };
	static const char *const what[] = {
		"grow to twice the size, every message kept",
		"shrink back, every message kept",
		"shrink to half, evicting the oldest half",
	};
	char a[16], b[16], c[16];
	unsigned int k;

	out("");
	out("limits in the same run (median [min .. max]):");
	if (valid(mc)) {
		if (opt.icount)
			out("  memcpy, 64 KiB blocks over %s: %.3g bytes "
			    "per guest instruction", opt.quick ? "4 MiB" :
			    "64 MiB", mc->med / 1e9);
		else
			out("  memcpy, 64 KiB blocks over %s: %sB/s [%s .. %s]",
			    opt.quick ? "4 MiB" : "64 MiB", si(mc->med, a, sizeof(a)), si(mc->min, b, sizeof(b)),
			    si(mc->max, c, sizeof(c)));
	}
	if (valid(sc))
		out("  getppid() system call: %s %s [%s .. %s]",
		    si(sc->med, a, sizeof(a)),
		    opt.icount ? "instructions" : "ns",
		    si(sc->min, b, sizeof(b)), si(sc->max, c, sizeof(c)));
	for (k = 0; k < 3; k++) {
		r = find("resize", "cbm", NULL, steps[k],
			 opt.quick ? 4096 : 65536);
		if (!r)
			break;
		if (!k)
			out("  resize of a full %s MiB conversation of %zu B "
			    "messages, a reader mapped:", opt.quick ? "1" : "64",
			    r->size);
		if (!valid(r)) {
			out("    %s: failed: %s", steps[k],
			    r->error ? r->error : "");
			continue;
		}
		out("    %-42s %s %s [%s .. %s]%s", what[k],
		    si(r->med, a, sizeof(a)),
		    opt.icount ? "instructions" : "ns",
		    si(r->min, b, sizeof(b)), si(r->max, c, sizeof(c)),
		    "");
		if (valid(mc))
			out("    %-42s = %.1f x the memcpy of the data", "",
			    r->med / ((opt.quick ? MIB : 64 * MIB) /
				      mc->med * NSEC_PER_SEC));
	}
}

/* The goals, each with the figures it is judged on */
static void goal(const char *what, const struct result *a,
		 const struct result *b, double factor, bool at_most)
{
	double q;

	if (!valid(a) || !valid(b)) {
		out("  %-58s not measured", what);
		return;
	}
	q = a->med / b->med;
	out("  %-58s %s (%.2f)", what,
	    (at_most ? q <= factor : q >= factor) ? "met" : "NOT met", q);
}

static void print_goals(void)
{
	const char *x = opt.ncpus > 1 ? place_names[PLACE_CROSS] :
					place_names[PLACE_SAME];
	const struct result *cbm, *map, *pipe_r, *mq;

	out("");
	out("goals (%s, 64 B; ratios of medians):", x);
	cbm = find("throughput", "cbm", x, "rate", 64);
	map = find("throughput", "cbm-batch+mmap", x, "rate", 64);
	pipe_r = find("throughput", "pipe", x, "rate", 64);
	mq = find("throughput", "mqueue", x, "rate", 64);
	if (opt.icount) {
		goal("cbm write/read: fewer instructions/message than mqueue",
		     cbm, mq, 1.0, false);
		goal("cbm batch+mmap: at most 1/5 of mqueue's instructions",
		     map, mq, 5.0, false);
		goal("the same without wake-ups (cost): cbm < mqueue",
		     find("cost", "cbm", x, "rate", 64),
		     find("cost", "mqueue", x, "rate", 64), 1.0, false);
		goal("the same without wake-ups (cost): batch+mmap <= 1/5",
		     find("cost", "cbm-batch+mmap", x, "rate", 64),
		     find("cost", "mqueue", x, "rate", 64), 5.0, false);
	} else {
		goal("cbm write/read >= 1.5 x mqueue messages/s", cbm, mq, 1.5,
		     false);
		goal("cbm write/read within 1.5 x of a pipe", cbm, pipe_r,
		     1 / 1.5, false);
		goal("cbm batch+mmap >= 5 x mqueue", map, mq, 5.0, false);
	}
	goal("fan-out 1->4: cbm write/read >= 4 x mqueue",
	     find("fanout", "cbm", NULL, "rate", 64),
	     find("fanout", "mqueue", NULL, "rate", 64), 4.0, false);
	goal("fan-out 1->4: cbm batch+mmap >= 4 x mqueue",
	     find("fanout", "cbm-batch+mmap", NULL, "rate", 64),
	     find("fanout", "mqueue", NULL, "rate", 64), 4.0, false);
	goal("wake-up p99: cbm no worse than a pipe",
	     find("latency", "cbm", x, "p99", 64),
	     find("latency", "pipe", x, "p99", 64), 1.0, true);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static int write_json(const char *path)
{
	FILE *f = fopen(path, "w");
	unsigned int i;
	char host[256] = "";

	if (!f)
		return -1;
	gethostname(host, sizeof(host) - 1);
	fprintf(f, "{\"mode\": \"%s\", \"cpus\": %d, \"reps\": %u, "
		"\"secs_per_rep\": %g, \"buffer\": %llu, \"quick\": %s, "
		"\"time_unit\": \"%s\", \"results\": [",
		opt.icount ? "icount" : "tcg", opt.ncpus, opt.reps, opt.secs,
		opt.buffer, opt.quick ? "true" : "false",
		opt.icount ? "guest instruction" : "ns");
	for (i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];

		fprintf(f, "%s\n {\"section\": ", i ? "," : "");
		json_str(f, r->section);
		fprintf(f, ", \"mechanism\": ");
		json_str(f, r->mech);
		fprintf(f, ", \"placement\": ");
		if (r->place)
			json_str(f, r->place);
		else
			fprintf(f, "null");
		fprintf(f, ", \"metric\": ");
		json_str(f, r->metric);
		fprintf(f, ", \"unit\": ");
		json_str(f, r->unit);
		fprintf(f, ", \"size\": %zu, \"reps\": %u", r->size, r->reps);
		if (valid(r))
			fprintf(f, ", \"median\": %.6g, \"min\": %.6g, "
				"\"max\": %.6g", r->med, r->min, r->max);
		if (valid(r) && !strcmp(r->metric, "rate"))
			fprintf(f, ", \"switches_per_msg\": %.4g", r->switches);
		if (r->error) {
			fprintf(f, ", \"error\": ");
			json_str(f, r->error);
		}
		fprintf(f, "}");
	}
	fprintf(f, "\n]}\n");
	return fclose(f);
}

/* ---- main --------------------------------------------------------------- */

static unsigned int parse_list(const char *arg, const char *const *names,
			       unsigned int n, const char *what)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	unsigned int mask = 0, i;

	if (!copy)
		exit(1);
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == n) {
			fprintf(stderr, "cbm-bench: unknown %s '%s'\n", what,
				tok);
			exit(2);
		}
		mask |= 1U << i;
	}
	free(copy);
	return mask;
}

static void usage(FILE *f, int status)
{
	fprintf(f,
"usage: cbm-bench [--quick] [--tap] [--icount] [--reps N] [--secs S]\n"
"                 [--buffer BYTES] [--json FILE] [--sections LIST]\n"
"                 [--mechs LIST] [--sizes LIST]\n"
"  --quick     tiny runs, once each: checks that everything works\n"
"  --tap       print TAP: one test per case, passing if its messages\n"
"              arrived intact (no figure is judged)\n"
"  --icount    the guest runs under QEMU -icount shift=0: report guest\n"
"              instructions instead of time\n"
"  --reps N    repetitions per figure (default 3, at most %d)\n"
"  --secs S    seconds per repetition (default 0.3)\n"
"  --buffer B  bytes of buffering per channel (default 1 MiB)\n"
"  --json FILE write every figure as JSON\n"
"  --sections  throughput,cost,fanout,writers,latency,limits,resize\n"
"  --mechs     cbm,cbm-batch+mmap,pipe,seqpacket,mqueue\n"
"  --sizes     64,1024,16384,65536 (throughput, cost, fanout,\n"
"              writers)\n",
		BENCH_MAX_REPS);
	exit(status);
}

static bool section(enum section s)
{
	return opt.sections & (1U << s);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "tap", no_argument, NULL, 't' },
		{ "icount", no_argument, NULL, 'i' },
		{ "reps", required_argument, NULL, 'r' },
		{ "secs", required_argument, NULL, 's' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "json", required_argument, NULL, 'j' },
		{ "sections", required_argument, NULL, 'S' },
		{ "mechs", required_argument, NULL, 'M' },
		{ "sizes", required_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	unsigned int i;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			opt.quick = true;
			break;
		case 't':
			opt.tap = true;
			break;
		case 'i':
			opt.icount = true;
			break;
		case 'r':
			opt.reps = strtoul(optarg, &end, 10);
			if (*end || !opt.reps || opt.reps > BENCH_MAX_REPS)
				usage(stderr, 2);
			break;
		case 's':
			opt.secs = strtod(optarg, &end);
			if (*end || !(opt.secs > 0 && opt.secs <= 60))
				usage(stderr, 2);
			break;
		case 'b':
			opt.buffer = strtoull(optarg, &end, 0);
			if (*end || opt.buffer < 2 * BENCH_MAX_SIZE ||
			    opt.buffer > 64 * MIB)
				usage(stderr, 2);
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'S':
			opt.sections = parse_list(optarg, section_names,
						  NR_SECTIONS, "section");
			break;
		case 'M':
			opt.mechs = parse_list(optarg, mech_names, NR_MECHS,
					       "mechanism");
			break;
		case 'Z':
			opt.sizes = parse_list(optarg, size_names, NR_SIZES,
					       "size");
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);

	opt.ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (opt.ncpus < 1)
		opt.ncpus = 1;
	/* A queue of 1 MiB of messages is more than the default 800 KiB */
	if (setrlimit(RLIMIT_MSGQUEUE, &unlimited))
		fprintf(stderr, "cbm-bench: RLIMIT_MSGQUEUE stays: %s (mqueue "
			"cases may fail with EMFILE)\n", strerror(errno));
	shm_size = sizeof(*shm) + BENCH_LAT_MAX * sizeof(shm->lat[0]);
	shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("cbm-bench: mmap");
		return 1;
	}
	/* No SA_RESTART: the alarm must interrupt wait() in reap() */
	sigaction(SIGALRM, &(struct sigaction){ .sa_handler = on_alarm },
		  NULL);
	if (opt.tap)
		printf("TAP version 13\n");
	out("cbm-bench: %d CPU(s), %s%s, %u rep(s) of %gs, %llu KiB per "
	    "channel", opt.ncpus, opt.icount ? "icount (time = instructions)" :
	    "timed", opt.quick ? ", quick" : "", opt.quick ? 1 : opt.reps,
	    opt.secs, opt.buffer / 1024);

	if (section(SEC_THROUGHPUT)) {
		if (opt.ncpus > 1)
			bench_throughput(PLACE_CROSS);
		bench_throughput(PLACE_SAME);
	}
	if (section(SEC_COST))
		bench_cost();
	if (section(SEC_FANOUT))
		bench_fanout();
	if (section(SEC_WRITERS))
		bench_writers();
	if (section(SEC_LATENCY)) {
		if (opt.ncpus > 1)
			bench_latency(PLACE_CROSS);
		bench_latency(PLACE_SAME);
	}
	if (section(SEC_LIMITS))
		bench_limits();
	if (section(SEC_RESIZE))
		bench_resize();

	out("");
	out("== cbm-bench results (%s, %d CPU(s)) ==",
	    opt.icount ? "icount: guest instructions" : "timed", opt.ncpus);
	print_rates("throughput", place_names[PLACE_CROSS],
		    "throughput 1 -> 1");
	print_rates("throughput", place_names[PLACE_SAME],
		    "throughput 1 -> 1");
	print_rates("cost", place_names[PLACE_SAME],
		    "cost: one process writes a burst (32 messages, fewer from "
		    "16 KiB) then reads it, no wake-ups");
	print_rates("fanout", place_names[opt.ncpus > 1 ? PLACE_CROSS :
					   PLACE_SAME],
		    "fan-out 1 -> 4 (unique messages, each read by all 4)");
	print_rates("writers", place_names[opt.ncpus > 1 ? PLACE_CROSS :
					    PLACE_SAME],
		    "4 writers -> 1 reader");
	print_latency(place_names[PLACE_CROSS]);
	print_latency(place_names[PLACE_SAME]);
	if (section(SEC_LIMITS) || section(SEC_RESIZE))
		print_limits();
	print_goals();

	if (opt.json && write_json(opt.json)) {
		fprintf(stderr, "cbm-bench: %s: %s\n", opt.json,
			strerror(errno));
		return 1;
	}
	if (opt.tap) {
		printf("1..%u\n", tap_count);
		return tap_failed ? 1 : 0;
	}
	/* A case that failed is a failed benchmark; an unmet goal is not */
	for (i = 0; i < nr_results; i++)
		if (results[i].error && !results[i].na)
			return 1;
	return 0;
}
