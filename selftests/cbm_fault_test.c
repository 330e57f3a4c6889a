// SPDX-License-Identifier: GPL-2.0
/*
 * cbm fault injection: each system call that allocates (open, creating
 * named and anonymous conversations, for root and for a uid charged for
 * the first time, epoll, resizing, a pinned send, a write that makes
 * auto-resize grow the ring) or copies to or from user memory (attach,
 * write, send, a batch, a restore, read) is run again and again, the n-th
 * fallible kernel call failing in run n, until a run sees no failure.
 * Every run must either succeed fully or fail with ENOMEM (allocations)
 * or EFAULT (user copies) and leave nothing behind: no name, no bound
 * file, no message, no conversation counted against max_conversations, no
 * byte charged to the memory caps; a resize that fails changes neither
 * the capacity nor the messages. A batch or a restore may also stop
 * short: the messages it stored are whole and charged, the rest (and a
 * restore's holes and next_seq after them) left no trace, and resubmitting
 * the rest completes it. Leaks are for kmemleak, which the harness scans
 * after the debug kernel's run.
 *
 * The kernel's per-task fail-nth (Documentation/fault-injection) picks the
 * call: it counts every call that failslab, fail_page_alloc or
 * fail_usercopy may fail, so the random knobs (probability, interval,
 * times, space) stay off and nothing else in the machine fails. Kernels
 * without fault injection (Debian's) skip the test.
 */
#include <glob.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/mount.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

#define DEBUGFS		"/sys/kernel/debug"
#define FAIL_NTH	"/proc/thread-self/fail-nth"

/* A call that allocates more often than this never finishes its sweep */
#define MAX_NTH		10000

/* max_conversations while counting how many conversations fit */
#define ROOM_PROBE	64

#define PAYLOAD		"fault-payload"
#define PAYLOAD_LEN	(sizeof(PAYLOAD) - 1)

/* OP_AUTOGROW: a payload that fills a MIN_CAPACITY ring by itself */
#define FILL_LEN	(MIN_CAPACITY - REC_HDR)

/* Most messages in an OP_BATCH batch or an OP_RESTORE call */
#define BATCH_MSGS	64

/* OP_RESTORE: the first message's timestamp, and the step to the next */
#define RESTORE_TS	1700000000000000000ULL
#define RESTORE_TS_STEP	1000

/* A buffer for CBM_IOC_READ_WINDOW over the conversations made here */
#define SNAP_SIZE	(128 * 1024)

/*
 * OP_AUTOGROW: auto-resize's period, so long that only a writer waiting
 * for room makes the ring grow, never the conversation's delayed work
 */
#define GROW_PERIOD_MS	3600000

/*
 * Settings the sweep needs: by default failslab and fail_page_alloc never
 * fail an allocation that may sleep, and fail_page_alloc spares order 0.
 * Each fail* directory's "verbose" is set to 0 as well, since its default
 * prints a stack trace that the console scan would count as an error.
 */
static const struct {
	const char *file;
	const char *value;
} knob_settings[] = {
	{ "failslab/ignore-gfp-wait", "N" },
	{ "fail_page_alloc/ignore-gfp-wait", "N" },
	{ "fail_page_alloc/ignore-gfp-highmem", "N" },
	{ "fail_page_alloc/min-order", "0" },
};

#define MAX_KNOBS	16
#define KNOB_LEN	32

struct knob {
	char path[128];
	char saved[KNOB_LEN];
};

enum op {
	OP_OPEN,		/* open("/dev/cbm") */
	OP_CREATE,		/* CBM_IOC_BIND creating a named one */
	OP_ANON,		/* CBM_IOC_BIND creating an anonymous one */
	OP_ATTACH,		/* CBM_IOC_BIND to an existing name */
	OP_WRITE_DEFAULT,	/* write() binding to `default' on the way */
	OP_SEND,		/* CBM_IOC_SEND */
	OP_READ,		/* a record-format read() */
	OP_EPOLL,		/* EPOLL_CTL_ADD, which polls the file */
	OP_RESIZE,		/* CBM_IOC_RESIZE */
	OP_AUTOGROW,		/* write() to a full lossless ring that may grow */
	OP_BATCH,		/* CBM_IOC_SEND_BATCH */
	OP_RESTORE,		/* CBM_IOC_RESTORE into a new conversation */
};

FIXTURE(fault) {
	const char *unsupported;	/* why nothing can be injected */
	struct knob knobs[MAX_KNOBS];
	int nknobs;
	int nth_fd;
	char name[CBM_NAME_MAX];
	int ctl;	/* OP_ATTACH, OP_EPOLL: the conversation's creator;
			 * OP_WRITE_DEFAULT: a file on `default' */
	int fd;		/* the file of the call under test */
	int epfd;
	__u64 seq;	/* OP_WRITE_DEFAULT: next_seq of `default' before */
	union rec_buf *rb;
	/* OP_RESIZE, OP_AUTOGROW: the conversation before the call */
	struct cbm_info info0;
	unsigned char *snap;	/* its messages, from CBM_IOC_READ_WINDOW */
	__u64 snap_len;
	unsigned char *now;	/* a buffer to compare them with */
	/* OP_BATCH, OP_RESTORE: the descriptors and their payloads */
	struct cbm_batch_msg *batch;
	struct cbm_restore_msg *rmsgs;
	unsigned char *batch_pay;
};

FIXTURE_VARIANT(fault) {
	enum op op;
	__u64 capacity;
	__u32 conv_flags;
	/* OP_SEND, OP_BATCH: of each message; OP_RESIZE: of the first */
	__u32 msg_flags;
	__u64 target;		/* OP_RESIZE: the new capacity */
	/*
	 * OP_RESIZE: messages of msg_len bytes; OP_BATCH, OP_RESTORE: in the
	 * call
	 */
	unsigned int msgs;
	size_t msg_len;
	/* OP_RESTORE: bit i pins message i */
	__u32 pins;
	/* OP_RESTORE: sequence numbers skipped before message hole_at */
	unsigned int hole_at;
	__u64 hole;
	__u64 next_seq;		/* OP_RESTORE: cbm_restore.next_seq */
	uid_t owner;		/* OP_ANON: fsuid of the call, the new owner */
	/*
	 * An errno that a failure may give besides ENOMEM and EFAULT: a
	 * failed automatic grow is no error, the writer finds the ring full
	 */
	int soft_errno;
};

FIXTURE_VARIANT_ADD(fault, open) { .op = OP_OPEN };
FIXTURE_VARIANT_ADD(fault, create_4k) {
	.op = OP_CREATE, .capacity = 4096,
};
FIXTURE_VARIANT_ADD(fault, create_lossless_64k) {
	.op = OP_CREATE, .capacity = 65536, .conv_flags = CBM_CONV_LOSSLESS,
};
FIXTURE_VARIANT_ADD(fault, anon_16k) { .op = OP_ANON, .capacity = 16384 };
/* the first bytes charged to a uid allocate its accounting entry */
FIXTURE_VARIANT_ADD(fault, anon_new_owner) {
	.op = OP_ANON, .capacity = 4096, .owner = UNPRIV_UID,
};
FIXTURE_VARIANT_ADD(fault, attach) { .op = OP_ATTACH };
FIXTURE_VARIANT_ADD(fault, write_default) { .op = OP_WRITE_DEFAULT };
FIXTURE_VARIANT_ADD(fault, send) { .op = OP_SEND };
FIXTURE_VARIANT_ADD(fault, send_pinned) {
	.op = OP_SEND, .msg_flags = CBM_MSG_PINNED,
};
FIXTURE_VARIANT_ADD(fault, send_batch) {
	.op = OP_BATCH, .capacity = 4096, .msgs = 3,
};
/* the kernel's copies of pinned messages, one per message */
FIXTURE_VARIANT_ADD(fault, send_batch_pinned) {
	.op = OP_BATCH, .capacity = 4096, .msgs = 3,
	.msg_flags = CBM_MSG_PINNED,
};
FIXTURE_VARIANT_ADD(fault, send_batch_64) {
	.op = OP_BATCH, .capacity = 16384, .msgs = BATCH_MSGS,
};
FIXTURE_VARIANT_ADD(fault, restore) {
	.op = OP_RESTORE, .capacity = 4096, .msgs = 3,
};
/* the pinned copy of the middle one may fail after one is restored */
FIXTURE_VARIANT_ADD(fault, restore_pinned) {
	.op = OP_RESTORE, .capacity = 4096, .msgs = 3, .pins = 1 << 1,
};
/* sequence numbers 0 (pinned), 5, 6 */
FIXTURE_VARIANT_ADD(fault, restore_hole) {
	.op = OP_RESTORE, .capacity = 4096, .msgs = 3, .pins = 1 << 0,
	.hole_at = 1, .hole = 4,
};
/* all pinned, so next_seq may leave a hole; set only if all are restored */
FIXTURE_VARIANT_ADD(fault, restore_next_seq) {
	.op = OP_RESTORE, .capacity = 4096, .msgs = 3, .pins = 0x7,
	.next_seq = 10,
};
FIXTURE_VARIANT_ADD(fault, read) { .op = OP_READ };
FIXTURE_VARIANT_ADD(fault, epoll_add) { .op = OP_EPOLL };
FIXTURE_VARIANT_ADD(fault, resize_grow) {
	.op = OP_RESIZE, .capacity = 4096, .target = 65536, .msgs = 3,
	.msg_len = 1000, .msg_flags = CBM_MSG_PINNED,
};
/* evicts 5 of the 6 messages */
FIXTURE_VARIANT_ADD(fault, resize_shrink) {
	.op = OP_RESIZE, .capacity = 16384, .target = 4096, .msgs = 6,
	.msg_len = 2000,
};
FIXTURE_VARIANT_ADD(fault, write_autogrow) {
	.op = OP_AUTOGROW, .capacity = 4096, .target = 8192,
	.conv_flags = CBM_CONV_LOSSLESS, .soft_errno = EAGAIN,
};

/* Saves @path's value for teardown and sets it; a missing file is no error */
static int set_knob(FIXTURE_DATA(fault) *self, const char *path,
		    const char *value)
{
	struct knob *k = &self->knobs[self->nknobs];

	if (access(path, F_OK))
		return 0;
	if (self->nknobs == MAX_KNOBS)
		return -1;
	snprintf(k->path, sizeof(k->path), "%s", path);
	if (read_text(path, k->saved, KNOB_LEN))
		return -1;
	self->nknobs++;
	return write_file(path, value);
}

static int set_knobs(FIXTURE_DATA(fault) *self)
{
	char path[128];
	glob_t g;
	size_t i;
	int err = 0;

	if (glob(DEBUGFS "/fail*/verbose", 0, NULL, &g))
		return -1;
	for (i = 0; i < g.gl_pathc && !err; i++)
		err = set_knob(self, g.gl_pathv[i], "0");
	globfree(&g);
	for (i = 0; i < ARRAY_SIZE(knob_settings) && !err; i++) {
		snprintf(path, sizeof(path), DEBUGFS "/%s",
			 knob_settings[i].file);
		err = set_knob(self, path, knob_settings[i].value);
	}
	return err;
}

FIXTURE_SETUP(fault)
{
	self->nth_fd = -1;
	self->ctl = -1;
	self->fd = -1;
	self->epfd = -1;
	conv_name(self->name, "fault");
	self->rb = malloc(sizeof(*self->rb));
	ASSERT_NE(NULL, self->rb);
	self->snap = malloc(SNAP_SIZE);
	self->now = malloc(SNAP_SIZE);
	ASSERT_NE(NULL, self->snap);
	ASSERT_NE(NULL, self->now);
	self->batch = calloc(BATCH_MSGS, sizeof(*self->batch));
	self->rmsgs = calloc(BATCH_MSGS, sizeof(*self->rmsgs));
	self->batch_pay = malloc(BATCH_MSGS * PAYLOAD_LEN);
	ASSERT_NE(NULL, self->batch);
	ASSERT_NE(NULL, self->rmsgs);
	ASSERT_NE(NULL, self->batch_pay);

	if (access(FAIL_NTH, F_OK)) {
		self->unsupported = "kernel without CONFIG_FAULT_INJECTION";
		return;
	}
	/* the harness mounts debugfs; mount it when run by hand */
	if (access(DEBUGFS "/failslab", F_OK))
		mount("debugfs", DEBUGFS, "debugfs", 0, NULL);
	if (access(DEBUGFS "/failslab", F_OK) &&
	    access(DEBUGFS "/fail_page_alloc", F_OK)) {
		self->unsupported = "no failslab or fail_page_alloc in " DEBUGFS;
		return;
	}
	ASSERT_EQ(0, set_knobs(self));
	self->nth_fd = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->nth_fd);
	/*
	 * Faulting in this process's own pages would use up the n-th call
	 * outside the system call under test.
	 */
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));

	switch (variant->op) {
	case OP_ATTACH:
	case OP_EPOLL:
		self->ctl = create_named(self->name, O_RDWR | O_NONBLOCK, 0600,
					 0, 0);
		ASSERT_LE(0, self->ctl);
		break;
	case OP_WRITE_DEFAULT:
		self->ctl = cbm_open(O_RDONLY);
		ASSERT_LE(0, self->ctl);
		break;
	default:
		break;
	}
}

FIXTURE_TEARDOWN(fault)
{
	int i;

	/* an assertion may have stopped the sweep with another fsuid */
	setfsuid(0);
	for (i = self->nknobs - 1; i >= 0; i--)
		EXPECT_EQ(0, write_file(self->knobs[i].path,
					self->knobs[i].saved));
	if (self->nth_fd >= 0)
		close(self->nth_fd);
	if (self->ctl >= 0)
		close(self->ctl);
	unlink_name(self->name);
	munlockall();
	free(self->rb);
	free(self->snap);
	free(self->now);
	free(self->batch);
	free(self->rmsgs);
	free(self->batch_pay);
}

/* The next fallible call this thread makes fails, @nth calls from now */
static int fail_nth_arm(FIXTURE_DATA(fault) *self, int nth)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", nth);

	return pwrite(self->nth_fd, buf, len, 0) == len ? 0 : -1;
}

/*
 * Returns whether a failure was injected, and stops counting. The counter
 * reads 0 once it fired; reading it copies to user memory, which is itself
 * a fallible call, so a read that fails means it fired only then.
 */
static bool fail_nth_disarm(FIXTURE_DATA(fault) *self)
{
	char buf[16] = "";
	bool fired;

	fired = pread(self->nth_fd, buf, sizeof(buf) - 1, 0) > 0 &&
		strtol(buf, NULL, 10) == 0;
	/* fails with EFAULT instead if the count runs out in the write */
	pwrite(self->nth_fd, "0", 1, 0);
	return fired;
}

/*
 * Conversations that can still be created: max_conversations is lowered
 * to ROOM_PROBE and anonymous ones are made until ENOSPC.
 */
static int conv_room(struct __test_metadata *_metadata)
{
	long long saved;
	int fds[ROOM_PROBE];
	int n, i;

	ASSERT_EQ(0, param_read("max_conversations", &saved));
	ASSERT_EQ(0, param_write("max_conversations", ROOM_PROBE));
	for (n = 0; n < ROOM_PROBE; n++) {
		fds[n] = cbm_open(O_RDWR);
		ASSERT_LE(0, fds[n]);
		if (cbm_bind(fds[n], "", CBM_BIND_ANON, 0600, 0,
			     MIN_CAPACITY)) {
			EXPECT_EQ(ENOSPC, errno);
			close(fds[n]);
			break;
		}
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	EXPECT_EQ(0, param_write("max_conversations", saved));
	return n;
}

/*
 * Bytes charged to @uid against the memory caps: the least max_user_bytes
 * under which @uid can still create a MIN_CAPACITY conversation, less that.
 */
static __u64 acct_held(struct __test_metadata *_metadata, uid_t uid)
{
	__u64 lo = MIN_CAPACITY, hi, mid;
	long long saved;
	int fd, ret, err;

	ASSERT_EQ(0, param_read("max_user_bytes", &saved));
	hi = saved;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		ASSERT_EQ(0, param_write("max_user_bytes", mid));
		fd = cbm_open(O_RDWR);
		ASSERT_LE(0, fd);
		setfsuid(uid);
		ret = cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, MIN_CAPACITY);
		err = errno;
		setfsuid(0);
		close(fd);
		if (ret) {
			ASSERT_EQ(ENOSPC, err);
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	EXPECT_EQ(0, param_write("max_user_bytes", saved));
	ASSERT_GT((__u64)saved, lo) TH_LOG("uid %d is at its cap", (int)uid);
	return lo - MIN_CAPACITY;
}

/* The stored messages as CBM_IOC_READ_WINDOW copies them; *@len: bytes */
static int copy_window(int fd, unsigned char *buf, __u64 *len)
{
	struct cbm_read_window rw;
	int ret = read_window(fd, buf, SNAP_SIZE, 0, &rw);

	*len = rw.needed;
	return ret;
}

/* The file works: what it writes at the end, it reads back */
static void check_round_trip(struct __test_metadata *_metadata, int fd)
{
	ASSERT_LE(0, lseek(fd, 0, SEEK_END));
	ASSERT_EQ(PAYLOAD_LEN, write_tagged(fd, PAYLOAD_LEN, PAYLOAD_LEN));
	ASSERT_EQ(PAYLOAD_LEN, read_tag(fd, PAYLOAD_LEN));
}

/*
 * OP_BATCH: message @i of the batch, PAYLOAD_LEN bytes tagged @i, each
 * with its own role, application flags and token count
 */
static void make_batch_msg(FIXTURE_DATA(fault) *self,
			   const FIXTURE_VARIANT(fault) *variant,
			   unsigned int i)
{
	static const __u32 roles[] = {
		CBM_ROLE_USER, CBM_ROLE_ASSISTANT, CBM_ROLE_TOOL,
	};
	struct cbm_batch_msg *m = &self->batch[i];
	unsigned char *p = self->batch_pay + i * PAYLOAD_LEN;
	size_t j;

	for (j = 0; j < PAYLOAD_LEN; j++)
		p[j] = payload_byte(i, j);
	m->flags = variant->msg_flags | (i + 1) << 16;
	m->role = roles[i % ARRAY_SIZE(roles)];
	m->len = PAYLOAD_LEN;
	m->tokens = i;
	m->data = (uintptr_t)p;
}

/* OP_RESTORE: the sequence number of message @i */
static __u64 restore_seq(const FIXTURE_VARIANT(fault) *variant,
			 unsigned int i)
{
	return i + (variant->hole && i >= variant->hole_at ? variant->hole : 0);
}

/* OP_RESTORE: message @i, the batch's message @i with its own history */
static void make_restore_msg(FIXTURE_DATA(fault) *self,
			     const FIXTURE_VARIANT(fault) *variant,
			     unsigned int i)
{
	const struct cbm_batch_msg *b = &self->batch[i];
	struct cbm_restore_msg *m = &self->rmsgs[i];

	make_batch_msg(self, variant, i);
	m->flags = b->flags | (variant->pins & 1U << i ? CBM_MSG_PINNED : 0);
	m->role = b->role;
	m->len = b->len;
	m->tokens = b->tokens;
	m->data = b->data;
	m->seq = restore_seq(variant, i);
	m->ts_ns = RESTORE_TS + i * RESTORE_TS_STEP;
}

/* CBM_IOC_RESTORE of OP_RESTORE's messages from @first on */
static int restore_from(FIXTURE_DATA(fault) *self,
			const FIXTURE_VARIANT(fault) *variant,
			unsigned int first)
{
	struct cbm_restore r = {
		.size = sizeof(r),
		.msgs = (uintptr_t)&self->rmsgs[first],
		.count = variant->msgs - first,
		.msg_size = sizeof(*self->rmsgs),
		.next_seq = variant->next_seq,
	};

	return ioctl(self->fd, CBM_IOC_RESTORE, &r);
}

static void op_prepare(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fault) *self,
		       const FIXTURE_VARIANT(fault) *variant)
{
	struct cbm_autoresize a = {
		.size = sizeof(a), .flags = CBM_AUTORESIZE_ON,
		.min_capacity = variant->capacity,
		.max_capacity = variant->target,
		.high_pct = 90, .low_pct = 10, .period_ms = GROW_PERIOD_MS,
	};
	struct cbm_info info;
	unsigned int i;

	switch (variant->op) {
	case OP_OPEN:
		break;
	case OP_RESIZE:
	case OP_AUTOGROW:
		self->fd = cbm_open(O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd);
		ASSERT_EQ(0, cbm_bind(self->fd, "", CBM_BIND_ANON, 0600,
				      variant->conv_flags, variant->capacity));
		if (variant->op == OP_AUTOGROW) {
			ASSERT_EQ(0, ioctl(self->fd, CBM_IOC_SET_AUTORESIZE,
					   &a));
			/* this file, a lossless reader, holds it all */
			ASSERT_EQ(FILL_LEN, write_tagged(self->fd, FILL_LEN, 1));
		}
		for (i = 0; i < variant->msgs; i++) {
			memset(self->rb->bytes, 'a' + i, variant->msg_len);
			ASSERT_EQ(0, send_msg(self->fd, CBM_ROLE_USER,
					      i ? 0 : variant->msg_flags,
					      self->rb->bytes,
					      variant->msg_len, NULL));
		}
		ASSERT_EQ(0, read_info(self->fd, &self->info0));
		ASSERT_EQ(0, copy_window(self->fd, self->snap,
					 &self->snap_len));
		break;
	case OP_WRITE_DEFAULT:
		ASSERT_EQ(0, read_info(self->ctl, &info));
		self->seq = info.next_seq;
		self->fd = cbm_open(O_WRONLY);
		ASSERT_LE(0, self->fd);
		break;
	case OP_BATCH:
	case OP_RESTORE:
		self->fd = cbm_open(O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd);
		ASSERT_EQ(0, cbm_bind(self->fd, "", CBM_BIND_ANON, 0600, 0,
				      variant->capacity));
		ASSERT_GE(variant->capacity,
			  variant->msgs * CBM_RECORD_SPACE(PAYLOAD_LEN));
		for (i = 0; i < variant->msgs; i++) {
			if (variant->op == OP_RESTORE)
				make_restore_msg(self, variant, i);
			else
				make_batch_msg(self, variant, i);
		}
		break;
	case OP_SEND:
	case OP_READ:
		self->fd = cbm_open(O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd);
		ASSERT_EQ(0, cbm_bind(self->fd, "", CBM_BIND_ANON, 0600, 0,
				      MIN_CAPACITY));
		if (variant->op == OP_SEND)
			break;
		ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS,
					CBM_ROLE_USER));
		ASSERT_EQ(PAYLOAD_LEN, write_str(self->fd, PAYLOAD));
		break;
	case OP_EPOLL:
		self->epfd = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, self->epfd);
		self->fd = open_named(self->name, O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd);
		break;
	default:
		self->fd = cbm_open(O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd);
		break;
	}
}

/*
 * The call under test; nothing in it may fault in user pages. Returns 0
 * if it did all its work and -1 if it failed, or for a batch or a restore
 * cut short, the number of messages it stored.
 */
static int op_run(FIXTURE_DATA(fault) *self,
		  const FIXTURE_VARIANT(fault) *variant)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
	struct cbm_resize rs = {
		.size = sizeof(rs), .capacity = variant->target,
	};
	ssize_t n;

	switch (variant->op) {
	case OP_OPEN:
		self->fd = open(CBM_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		return self->fd < 0 ? -1 : 0;
	case OP_CREATE:
		return cbm_bind(self->fd, self->name,
				CBM_BIND_CREATE | CBM_BIND_EXCL, 0600,
				variant->conv_flags, variant->capacity);
	case OP_ANON:
		return cbm_bind(self->fd, "", CBM_BIND_ANON, 0600,
				variant->conv_flags, variant->capacity);
	case OP_ATTACH:
		return cbm_bind(self->fd, self->name, 0, 0, 0, 0);
	case OP_WRITE_DEFAULT:
		n = write(self->fd, PAYLOAD, PAYLOAD_LEN);
		return n == PAYLOAD_LEN ? 0 : -1;
	case OP_SEND:
		return send_msg(self->fd, CBM_ROLE_TOOL, variant->msg_flags,
				PAYLOAD, PAYLOAD_LEN, &self->seq);
	case OP_READ:
		n = read(self->fd, self->rb, sizeof(*self->rb));
		return n == REC_HDR + PAYLOAD_LEN ? 0 : -1;
	case OP_EPOLL:
		return epoll_ctl(self->epfd, EPOLL_CTL_ADD, self->fd, &ev);
	case OP_RESIZE:
		return ioctl(self->fd, CBM_IOC_RESIZE, &rs);
	case OP_AUTOGROW:
		n = write(self->fd, PAYLOAD, PAYLOAD_LEN);
		return n == PAYLOAD_LEN ? 0 : -1;
	case OP_BATCH:
		self->seq = ~0ULL;
		n = send_batch(self->fd, self->batch, variant->msgs,
			       &self->seq);
		return n == variant->msgs ? 0 : n;
	case OP_RESTORE:
		n = restore_from(self, variant, 0);
		return n == variant->msgs ? 0 : n;
	}
	return -1;
}

/* op_run() with the variant's fsuid, which makes it the owner */
static int op_run_owned(FIXTURE_DATA(fault) *self,
			const FIXTURE_VARIANT(fault) *variant)
{
	int ret, err;

	setfsuid(variant->owner);
	ret = op_run(self, variant);
	err = errno;
	setfsuid(0);
	errno = err;
	return ret;
}

/* The stored messages are those before the call, byte for byte */
static void check_messages(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fault) *self)
{
	__u64 len;

	ASSERT_EQ(0, copy_window(self->fd, self->now, &len));
	EXPECT_EQ(self->snap_len, len);
	EXPECT_EQ(0, memcmp(self->snap, self->now, self->snap_len));
}

/* OP_RESIZE, OP_AUTOGROW: the call changed nothing */
static void check_unchanged(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fault) *self)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(self->info0.capacity, info.capacity);
	EXPECT_EQ(self->info0.resizes, info.resizes);
	EXPECT_EQ(self->info0.next_seq, info.next_seq);
	EXPECT_EQ(self->info0.msgs, info.msgs);
	EXPECT_EQ(self->info0.evicted, info.evicted);
	EXPECT_EQ(self->info0.pinned_bytes, info.pinned_bytes);
	check_messages(_metadata, self);
}

/*
 * OP_RESIZE: the ring has the new capacity and the newest messages,
 * unchanged; growing kept them all, shrinking counted the others evicted
 */
static void check_resized(struct __test_metadata *_metadata,
			  FIXTURE_DATA(fault) *self,
			  const FIXTURE_VARIANT(fault) *variant)
{
	struct cbm_info info;
	__u64 len;

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(variant->target, info.capacity);
	EXPECT_EQ(self->info0.resizes + 1, info.resizes);
	EXPECT_EQ(self->info0.next_seq, info.next_seq);
	EXPECT_EQ(self->info0.pinned_bytes, info.pinned_bytes);
	EXPECT_EQ(self->info0.msgs - info.msgs,
		  info.evicted - self->info0.evicted);
	if (variant->target > variant->capacity) {
		EXPECT_EQ(self->info0.msgs, info.msgs);
	} else {
		EXPECT_GT(self->info0.msgs, info.msgs);
	}
	ASSERT_EQ(0, copy_window(self->fd, self->now, &len));
	ASSERT_GE(self->snap_len, len);
	EXPECT_EQ(0, memcmp(self->snap + self->snap_len - len, self->now,
			    len));
}

/*
 * OP_BATCH: the conversation holds the batch's first @k messages, whole
 * and in order, and the charge of their pinned copies; nothing else
 */
static void check_batch(struct __test_metadata *_metadata,
			FIXTURE_DATA(fault) *self,
			const FIXTURE_VARIANT(fault) *variant, unsigned int k)
{
	const struct cbm_batch_msg *m = self->batch;
	__u64 pinned = variant->msg_flags ? k : 0;
	const struct cbm_record *rec;
	struct cbm_info info;
	__u64 len, off = 0;
	unsigned int i;

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(k, info.next_seq);
	EXPECT_EQ(k, info.msgs);
	EXPECT_EQ(0, info.evicted);
	EXPECT_EQ(pinned, info.pinned);
	EXPECT_EQ(pinned * CBM_RECORD_SPACE(PAYLOAD_LEN), info.pinned_bytes);
	ASSERT_EQ(0, copy_window(self->fd, self->now, &len));
	ASSERT_EQ(k * CBM_RECORD_SPACE(PAYLOAD_LEN), len);
	for (i = 0; i < k; i++, off += CBM_RECORD_SPACE(PAYLOAD_LEN)) {
		rec = (const struct cbm_record *)(self->now + off);
		EXPECT_EQ(i, rec->seq);
		EXPECT_EQ(m[i].role, rec->role);
		EXPECT_EQ(m[i].flags, rec->flags);
		EXPECT_EQ(m[i].tokens, rec->tokens);
		ASSERT_EQ(PAYLOAD_LEN, rec->len);
		EXPECT_TRUE(payload_ok(self->now + off + REC_HDR, PAYLOAD_LEN,
				       i)) TH_LOG("message %u", i);
	}
}

/*
 * OP_RESTORE: the conversation holds the call's first @k messages, whole,
 * in order and with their history, and the charge of their pinned copies;
 * it numbers on after the last of them, past next_seq only if all were
 * restored: a hole before a message not restored was not made
 */
static void check_restored(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fault) *self,
			   const FIXTURE_VARIANT(fault) *variant,
			   unsigned int k)
{
	const struct cbm_restore_msg *m = self->rmsgs;
	__u64 pinned = __builtin_popcount(variant->pins & ((1U << k) - 1));
	const struct cbm_record *rec;
	__u64 next = k ? m[k - 1].seq + 1 : 0;
	struct cbm_info info;
	__u64 len, off = 0;
	unsigned int i;

	if (k == variant->msgs && variant->next_seq)
		next = variant->next_seq;
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(next, info.next_seq);
	EXPECT_EQ(k, info.msgs);
	EXPECT_EQ(0, info.evicted);
	EXPECT_EQ(pinned, info.pinned);
	EXPECT_EQ(pinned * CBM_RECORD_SPACE(PAYLOAD_LEN), info.pinned_bytes);
	ASSERT_EQ(0, copy_window(self->fd, self->now, &len));
	ASSERT_EQ(k * CBM_RECORD_SPACE(PAYLOAD_LEN), len);
	for (i = 0; i < k; i++, off += CBM_RECORD_SPACE(PAYLOAD_LEN)) {
		rec = (const struct cbm_record *)(self->now + off);
		EXPECT_EQ(m[i].seq, rec->seq);
		EXPECT_EQ(m[i].ts_ns, rec->ts_ns);
		EXPECT_EQ(m[i].role, rec->role);
		EXPECT_EQ(m[i].flags, rec->flags);
		EXPECT_EQ(m[i].tokens, rec->tokens);
		ASSERT_EQ(PAYLOAD_LEN, rec->len);
		EXPECT_TRUE(payload_ok(self->now + off + REC_HDR, PAYLOAD_LEN,
				       i)) TH_LOG("message %u", i);
	}
}

/* The call succeeded: it did all it should */
static void op_check_done(struct __test_metadata *_metadata,
			  FIXTURE_DATA(fault) *self,
			  const FIXTURE_VARIANT(fault) *variant)
{
	struct epoll_event ev;
	struct cbm_info info;

	switch (variant->op) {
	case OP_OPEN:
		ASSERT_EQ(0, cbm_bind(self->fd, "", CBM_BIND_ANON, 0600, 0,
				      MIN_CAPACITY));
		check_round_trip(_metadata, self->fd);
		break;
	case OP_CREATE:
	case OP_ANON:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(variant->capacity, info.capacity);
		EXPECT_EQ(variant->conv_flags, info.flags & CBM_CONV_LOSSLESS);
		EXPECT_STREQ(variant->op == OP_CREATE ? self->name : "",
			     info.name);
		EXPECT_EQ(variant->owner, info.uid);
		check_round_trip(_metadata, self->fd);
		break;
	case OP_ATTACH:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_STREQ(self->name, info.name);
		check_round_trip(_metadata, self->fd);
		break;
	case OP_WRITE_DEFAULT:
		ASSERT_EQ(0, read_info(self->ctl, &info));
		EXPECT_EQ(self->seq + 1, info.next_seq);
		break;
	case OP_SEND:
		EXPECT_EQ(0, self->seq);
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(1, info.next_seq);
		EXPECT_EQ(variant->msg_flags ? 1 : 0, info.pinned);
		EXPECT_EQ(variant->msg_flags ? CBM_RECORD_SPACE(PAYLOAD_LEN) : 0,
			  info.pinned_bytes);
		break;
	case OP_READ:
		EXPECT_EQ(0, self->rb->rec.seq);
		EXPECT_EQ(PAYLOAD_LEN, self->rb->rec.len);
		EXPECT_EQ(0, memcmp(self->rb->bytes + REC_HDR, PAYLOAD,
				    PAYLOAD_LEN));
		break;
	case OP_EPOLL:
		ASSERT_EQ(1, epoll_wait(self->epfd, &ev, 1, 0));
		EXPECT_EQ(EPOLLOUT, ev.events & EPOLLOUT);
		EXPECT_EQ(0, epoll_ctl(self->epfd, EPOLL_CTL_DEL, self->fd,
				       NULL));
		break;
	case OP_RESIZE:
		check_resized(_metadata, self, variant);
		check_round_trip(_metadata, self->fd);
		break;
	case OP_AUTOGROW:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(variant->target, info.capacity);
		EXPECT_EQ(1, info.resizes);
		EXPECT_EQ(2, info.next_seq);
		EXPECT_EQ(1, read_tag(self->fd, FILL_LEN));
		ASSERT_EQ(PAYLOAD_LEN, read(self->fd, self->rb,
					    sizeof(*self->rb)));
		EXPECT_EQ(0, memcmp(self->rb->bytes, PAYLOAD, PAYLOAD_LEN));
		break;
	case OP_BATCH:
		EXPECT_EQ(0, self->seq);
		check_batch(_metadata, self, variant, variant->msgs);
		break;
	case OP_RESTORE:
		check_restored(_metadata, self, variant, variant->msgs);
		break;
	}
}

/*
 * OP_BATCH or OP_RESTORE stopped after @k messages: they are stored, the
 * rest left no trace, and resubmitting the rest completes the call
 */
static void op_check_partial(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fault) *self,
			     const FIXTURE_VARIANT(fault) *variant,
			     unsigned int k)
{
	__u64 seq = ~0ULL;

	ASSERT_GT(variant->msgs, k);
	if (variant->op == OP_RESTORE) {
		check_restored(_metadata, self, variant, k);
		ASSERT_EQ(variant->msgs - k, restore_from(self, variant, k));
		check_restored(_metadata, self, variant, variant->msgs);
		return;
	}
	ASSERT_EQ(OP_BATCH, variant->op);
	EXPECT_EQ(0, self->seq);
	check_batch(_metadata, self, variant, k);
	ASSERT_EQ(variant->msgs - k, send_batch(self->fd, &self->batch[k],
						variant->msgs - k, &seq));
	EXPECT_EQ(k, seq);
	check_batch(_metadata, self, variant, variant->msgs);
}

/*
 * The call failed with @err: it left no trace, and the same call works now.
 * Only the copy of a result to user memory may fail after the work is
 * done, with EFAULT.
 */
static void op_check_undone(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fault) *self,
			    const FIXTURE_VARIANT(fault) *variant, int err)
{
	struct cbm_reader_info ri;
	struct cbm_info info;
	int ret;

	switch (variant->op) {
	case OP_OPEN:
		break;
	case OP_CREATE:
		ret = open_named(self->name, O_RDONLY);
		ASSERT_EQ(-1, ret);
		ASSERT_EQ(ENOENT, errno);
		/* the file is still unbound, as in these */
		__attribute__((fallthrough));
	case OP_ANON:
	case OP_ATTACH:
		ASSERT_EQ(0, op_run_owned(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	case OP_WRITE_DEFAULT:
		ASSERT_EQ(0, read_info(self->ctl, &info));
		EXPECT_EQ(self->seq, info.next_seq);
		break;
	case OP_SEND:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(0, info.next_seq);
		EXPECT_EQ(0, info.pinned);
		EXPECT_EQ(0, info.pinned_bytes);
		break;
	case OP_READ:
		ASSERT_EQ(0, read_rinfo(self->fd, &ri));
		EXPECT_EQ(0, ri.cursor);
		EXPECT_EQ(1, ri.unread);
		ASSERT_EQ(0, op_run(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	case OP_EPOLL:
		ASSERT_EQ(0, op_run(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	case OP_RESIZE:
		ASSERT_EQ(0, read_info(self->fd, &info));
		if (info.capacity == variant->target) {
			EXPECT_EQ(EFAULT, err);
			check_resized(_metadata, self, variant);
			break;
		}
		check_unchanged(_metadata, self);
		ASSERT_EQ(0, op_run(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	case OP_AUTOGROW:
		ASSERT_EQ(0, read_info(self->fd, &info));
		/* the ring grew, then copying the payload failed */
		if (info.capacity == variant->target) {
			EXPECT_EQ(EFAULT, err);
			EXPECT_EQ(self->info0.next_seq, info.next_seq);
			check_messages(_metadata, self);
		} else {
			check_unchanged(_metadata, self);
		}
		break;
	case OP_BATCH:
		check_batch(_metadata, self, variant, 0);
		ASSERT_EQ(0, op_run(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	case OP_RESTORE:
		check_restored(_metadata, self, variant, 0);
		ASSERT_EQ(0, op_run(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	}
}

static void op_cleanup(FIXTURE_DATA(fault) *self,
		       const FIXTURE_VARIANT(fault) *variant)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->epfd >= 0)
		close(self->epfd);
	self->fd = -1;
	self->epfd = -1;
	if (variant->op == OP_CREATE)
		unlink_name(self->name);
}

TEST_F(fault, fail_each_call)
{
	int nth, ret, err, room, partial = 0;
	bool injected;
	__u64 held;

	if (self->unsupported)
		SKIP(return, "%s", self->unsupported);
	room = conv_room(_metadata);
	ASSERT_LT(0, room) TH_LOG("other conversations fill the probe");
	held = acct_held(_metadata, variant->owner);

	for (nth = 1; ; nth++) {
		ASSERT_GT(MAX_NTH, nth) TH_LOG("the call never stops failing");
		op_prepare(_metadata, self, variant);
		/* before arming: changing credentials allocates */
		setfsuid(variant->owner);
		ASSERT_EQ(0, fail_nth_arm(self, nth));
		ret = op_run(self, variant);
		err = errno;
		injected = fail_nth_disarm(self);
		setfsuid(0);
		if (ret == 0) {
			op_check_done(_metadata, self, variant);
		} else if (ret > 0) {
			ASSERT_TRUE(injected) TH_LOG("a call cut short");
			op_check_partial(_metadata, self, variant, ret);
			partial++;
		} else {
			ASSERT_TRUE(err == ENOMEM || err == EFAULT ||
				    (variant->soft_errno &&
				     err == variant->soft_errno))
				TH_LOG("call %d: errno %d (%s)", nth, err,
				       strerror(err));
			op_check_undone(_metadata, self, variant, err);
		}
		op_cleanup(self, variant);
		if (!injected) {
			ASSERT_EQ(0, ret) TH_LOG("failed with nothing injected");
			break;
		}
	}
	/* failed creations gave their count back */
	EXPECT_EQ(room, conv_room(_metadata));
	/* and every byte they charged to the memory caps */
	EXPECT_EQ(held, acct_held(_metadata, variant->owner));
	TH_LOG("%d fallible calls, each failed once", nth - 1);
	/* copying each payload can fail: past the first, the call stops */
	if ((variant->op == OP_BATCH || variant->op == OP_RESTORE) &&
	    variant->msgs > 1) {
		EXPECT_LT(0, partial);
		TH_LOG("%d calls cut short", partial);
	}
}

TEST_HARNESS_MAIN
