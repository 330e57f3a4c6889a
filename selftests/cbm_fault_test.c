// SPDX-License-Identifier: GPL-2.0
/*
 * cbm fault injection: each system call that allocates (open, creating
 * named and anonymous conversations, epoll) or copies to or from user
 * memory (attach, write, send, read) is run again and again, the n-th
 * fallible kernel call failing in run n, until a run sees no failure. Every
 * run must either succeed fully or fail with ENOMEM (allocations) or
 * EFAULT (user copies) and leave nothing behind: no name, no bound file, no
 * message, no conversation counted against max_conversations. Leaks are
 * for kmemleak, which the harness scans after the debug kernel's run.
 *
 * The kernel's per-task fail-nth (Documentation/fault-injection) picks the
 * call: it counts every call that failslab, fail_page_alloc or
 * fail_usercopy may fail, so the random knobs (probability, interval,
 * times, space) stay off and nothing else in the machine fails. Kernels
 * without fault injection (Debian's) skip the test.
 */
#include <glob.h>
#include <sys/epoll.h>
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
};

FIXTURE_VARIANT(fault) {
	enum op op;
	__u64 capacity;
	__u32 conv_flags;
};

FIXTURE_VARIANT_ADD(fault, open) { .op = OP_OPEN };
FIXTURE_VARIANT_ADD(fault, create_4k) {
	.op = OP_CREATE, .capacity = 4096,
};
FIXTURE_VARIANT_ADD(fault, create_lossless_64k) {
	.op = OP_CREATE, .capacity = 65536, .conv_flags = CBM_CONV_LOSSLESS,
};
FIXTURE_VARIANT_ADD(fault, anon_16k) { .op = OP_ANON, .capacity = 16384 };
FIXTURE_VARIANT_ADD(fault, attach) { .op = OP_ATTACH };
FIXTURE_VARIANT_ADD(fault, write_default) { .op = OP_WRITE_DEFAULT };
FIXTURE_VARIANT_ADD(fault, send) { .op = OP_SEND };
FIXTURE_VARIANT_ADD(fault, read) { .op = OP_READ };
FIXTURE_VARIANT_ADD(fault, epoll_add) { .op = OP_EPOLL };

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

/* The file works: what it writes at the end, it reads back */
static void check_round_trip(struct __test_metadata *_metadata, int fd)
{
	ASSERT_LE(0, lseek(fd, 0, SEEK_END));
	ASSERT_EQ(PAYLOAD_LEN, write_tagged(fd, PAYLOAD_LEN, PAYLOAD_LEN));
	ASSERT_EQ(PAYLOAD_LEN, read_tag(fd, PAYLOAD_LEN));
}

static void op_prepare(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fault) *self,
		       const FIXTURE_VARIANT(fault) *variant)
{
	struct cbm_info info;

	switch (variant->op) {
	case OP_OPEN:
		break;
	case OP_WRITE_DEFAULT:
		ASSERT_EQ(0, read_info(self->ctl, &info));
		self->seq = info.next_seq;
		self->fd = cbm_open(O_WRONLY);
		ASSERT_LE(0, self->fd);
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

/* The call under test; nothing in it may fault in user pages */
static int op_run(FIXTURE_DATA(fault) *self,
		  const FIXTURE_VARIANT(fault) *variant)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
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
		return send_msg(self->fd, CBM_ROLE_TOOL, 0, PAYLOAD,
				PAYLOAD_LEN, &self->seq);
	case OP_READ:
		n = read(self->fd, self->rb, sizeof(*self->rb));
		return n == REC_HDR + PAYLOAD_LEN ? 0 : -1;
	case OP_EPOLL:
		return epoll_ctl(self->epfd, EPOLL_CTL_ADD, self->fd, &ev);
	}
	return -1;
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
	}
}

/* The call failed: it left no trace, and the same call works now */
static void op_check_undone(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fault) *self,
			    const FIXTURE_VARIANT(fault) *variant)
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
		ASSERT_EQ(0, op_run(self, variant));
		op_check_done(_metadata, self, variant);
		break;
	case OP_WRITE_DEFAULT:
		ASSERT_EQ(0, read_info(self->ctl, &info));
		EXPECT_EQ(self->seq, info.next_seq);
		break;
	case OP_SEND:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(0, info.next_seq);
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
	bool injected;
	int nth, ret, err, room;

	if (self->unsupported)
		SKIP(return, "%s", self->unsupported);
	room = conv_room(_metadata);
	ASSERT_LT(0, room) TH_LOG("other conversations fill the probe");

	for (nth = 1; ; nth++) {
		ASSERT_GT(MAX_NTH, nth) TH_LOG("the call never stops failing");
		op_prepare(_metadata, self, variant);
		ASSERT_EQ(0, fail_nth_arm(self, nth));
		ret = op_run(self, variant);
		err = errno;
		injected = fail_nth_disarm(self);
		if (ret == 0) {
			op_check_done(_metadata, self, variant);
		} else {
			ASSERT_TRUE(err == ENOMEM || err == EFAULT)
				TH_LOG("call %d: errno %d (%s)", nth, err,
				       strerror(err));
			op_check_undone(_metadata, self, variant);
		}
		op_cleanup(self, variant);
		if (!injected) {
			ASSERT_EQ(0, ret) TH_LOG("failed with nothing injected");
			break;
		}
	}
	/* failed creations gave their count back */
	EXPECT_EQ(room, conv_room(_metadata));
	TH_LOG("%d fallible calls, each failed once", nth - 1);
}

TEST_HARNESS_MAIN
