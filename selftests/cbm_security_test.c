// SPDX-License-Identifier: GPL-2.0
/*
 * cbm security: another user cannot reach a private conversation by any
 * route (attaching with any flags, unlinking, a file bound elsewhere, root
 * in a user namespace), access is checked once, when a file is bound, and
 * sizes at the limits of their types are refused instead of wrapping.
 *
 * cbm_perm_test checks the permission bits themselves; this file checks
 * that nothing goes around them.
 */
#include <limits.h>
#include <sched.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* Exit status of a helper that found the kernel lacks what it needs */
#define CHILD_SKIP	4

#define SECRET		"secret"
#define SECRET_LEN	(sizeof(SECRET) - 1)

/* What the intruder calls its own conversation, given the victim's name */
static void own_name(char own[CBM_NAME_MAX], const char *victim)
{
	snprintf(own, CBM_NAME_MAX, "%.*s-own", CBM_NAME_MAX - 5, victim);
}

/* A root conversation with mode 0600 holding one message */
FIXTURE(victim) {
	char name[CBM_NAME_MAX];
	char own[CBM_NAME_MAX];
	int fd;		/* root's file, O_RDWR | O_NONBLOCK */
	struct cbm_info before;
};

FIXTURE_SETUP(victim)
{
	conv_name(self->name, "victim");
	own_name(self->own, self->name);
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0, 0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(SECRET_LEN, write_str(self->fd, SECRET));
	ASSERT_EQ(0, read_info(self->fd, &self->before));
}

FIXTURE_TEARDOWN(victim)
{
	close(self->fd);
	unlink_name(self->name);
	unlink_name(self->own);
}

/* Whatever the intruder did, the victim is as it was */
static void expect_untouched(struct __test_metadata *_metadata,
			     FIXTURE_DATA(victim) *self)
{
	struct cbm_info info;
	char buf[64];
	int fd;

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(self->before.next_seq, info.next_seq);
	EXPECT_EQ(self->before.readers, info.readers);
	EXPECT_EQ(0, info.flags & CBM_CONV_UNLINKED);
	EXPECT_EQ(0600, info.mode);
	EXPECT_EQ(0, info.uid);
	/* the name still leads to it */
	fd = open_named(self->name, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	EXPECT_EQ(SECRET_LEN, read(fd, buf, sizeof(buf)));
	close(fd);
}

/*
 * Attaching fails whatever the flags: CBM_BIND_CREATE does not turn an
 * existing name into a new conversation, CBM_BIND_EXCL only says that the
 * name exists (as for mq_open()), and a refused bind leaves the file
 * unbound.
 */
static void attach_denied(const char *name)
{
	static const int oflags[] = { O_RDONLY, O_WRONLY, O_RDWR };
	char own[CBM_NAME_MAX];
	unsigned int i;
	int fd;

	own_name(own, name);
	for (i = 0; i < ARRAY_SIZE(oflags); i++) {
		fd = cbm_open(oflags[i] | O_NONBLOCK);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(cbm_bind(fd, name, 0, 0, 0, 0) == -1);
		CHILD_CHECK(errno == EACCES);
		CHILD_CHECK(cbm_bind(fd, name, CBM_BIND_CREATE, 0666, 0, 0) == -1);
		CHILD_CHECK(errno == EACCES);
		CHILD_CHECK(cbm_bind(fd, name, CBM_BIND_CREATE | CBM_BIND_EXCL,
				     0666, 0, 0) == -1);
		CHILD_CHECK(errno == EEXIST);
		CHILD_CHECK(cbm_bind(fd, own, CBM_BIND_CREATE, 0600, 0, 0) == 0);
		close(fd);
	}
	CHILD_CHECK(unlink_name(own) == 0);
}

TEST_F(victim, attach_denied)
{
	EXPECT_EQ(0, run_unpriv(attach_denied, self->name));
	expect_untouched(_metadata, self);
}

/* Neither a fresh file nor one bound to the intruder's own conversation */
static void unlink_denied(const char *name)
{
	char own[CBM_NAME_MAX];
	int fd;

	own_name(own, name);
	CHILD_CHECK(unlink_name(name) == -1);
	CHILD_CHECK(errno == EACCES);
	fd = create_named(own, O_RDWR, 0600, 0, 0);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(unlink_on(fd, name, 0) == -1);
	CHILD_CHECK(errno == EACCES);
	CHILD_CHECK(unlink_on(fd, own, 0) == 0);
}

TEST_F(victim, unlink_denied)
{
	EXPECT_EQ(0, run_unpriv(unlink_denied, self->name));
	expect_untouched(_metadata, self);
}

/*
 * Every call on a file bound to the intruder's conversation acts on that
 * conversation only, and the file cannot be rebound to the victim.
 */
static void bound_elsewhere(const char *name)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	char own[CBM_NAME_MAX];
	struct cbm_reader_info ri;
	struct cbm_info info;
	int fd, avail;

	own_name(own, name);
	CHILD_CHECK(rb != NULL);
	fd = create_named(own, O_RDWR | O_NONBLOCK, 0600, 0, 0);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(cbm_bind(fd, name, 0, 0, 0, 0) == -1);
	CHILD_CHECK(errno == EBUSY);
	CHILD_CHECK(write_str(fd, "mine") == 4);
	CHILD_CHECK(send_msg(fd, CBM_ROLE_SYSTEM, 0, "mine", 4, NULL) == 0);
	CHILD_CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHILD_CHECK(ioctl(fd, FIONREAD, &avail) == 0 && avail == 4);
	CHILD_CHECK(set_config(fd, CBM_FD_RECORDS, CBM_ROLE_USER) == 0);
	CHILD_CHECK(read_record(fd, rb) == REC_HDR + 4);
	CHILD_CHECK(rb->rec.uid == UNPRIV_UID && rb->rec.seq == 0);
	CHILD_CHECK(read_info(fd, &info) == 0);
	CHILD_CHECK(!strcmp(info.name, own) && info.next_seq == 2);
	CHILD_CHECK(info.uid == UNPRIV_UID);
	CHILD_CHECK(read_rinfo(fd, &ri) == 0 && ri.cursor == 1);
	CHILD_CHECK(unlink_on(fd, own, 0) == 0);
}

TEST_F(victim, bound_elsewhere)
{
	EXPECT_EQ(0, run_unpriv(bound_elsewhere, self->name));
	expect_untouched(_metadata, self);
}

/*
 * Root of a user namespace holds every capability there, and none over
 * the initial namespace's objects: still not the owner, still EACCES.
 */
static void namespace_root_denied(const char *name)
{
	char map[32];
	int fd, len;

	/* dropping root made /proc/self root's; uid_map must be ours */
	CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
	if (unshare(CLONE_NEWUSER)) {
		fprintf(stderr, "# unshare(CLONE_NEWUSER): %s\n",
			strerror(errno));
		_exit(CHILD_SKIP);
	}
	len = snprintf(map, sizeof(map), "0 %d 1\n", UNPRIV_UID);
	fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(write(fd, map, len) == len);
	close(fd);
	CHILD_CHECK(geteuid() == 0);

	fd = cbm_open(O_RDWR | O_NONBLOCK);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(cbm_bind(fd, name, 0, 0, 0, 0) == -1);
	CHILD_CHECK(errno == EACCES);
	CHILD_CHECK(unlink_on(fd, name, 0) == -1);
	CHILD_CHECK(errno == EACCES);
	/* the unbound file falls back to `default', root's and 0600 too */
	CHILD_CHECK(write_str(fd, "x") == -1);
	CHILD_CHECK(errno == EACCES);
}

TEST_F(victim, namespace_root_denied)
{
	int status;

	status = run_unpriv(namespace_root_denied, self->name);
	if (status == CHILD_SKIP)
		SKIP(return, "no unprivileged user namespaces");
	EXPECT_EQ(0, status);
	expect_untouched(_metadata, self);
}

/*
 * Access is checked when a file is bound, as open() checks a file's mode:
 * a file root bound keeps working for a process that drops privileges,
 * while that process cannot bind a file of its own.
 */
TEST_F(victim, checked_at_bind)
{
	union rec_buf *rb = malloc(sizeof(*rb));
	pid_t pid;

	ASSERT_NE(NULL, rb);
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char buf[64];

		CHILD_CHECK(drop_privs(UNPRIV_UID, UNPRIV_GID) == 0);
		CHILD_CHECK(read(self->fd, buf, sizeof(buf)) == SECRET_LEN);
		CHILD_CHECK(write_str(self->fd, "inherited") == 9);
		CHILD_CHECK(open_named(self->name, O_RDONLY) == -1);
		CHILD_CHECK(errno == EACCES);
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	/* the file description, and so its settings, is shared */
	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
	ASSERT_EQ(REC_HDR + 9, read_record(self->fd, rb));
	EXPECT_EQ(UNPRIV_UID, rb->rec.uid);
	free(rb);
}

static void params_denied(const char *name)
{
	static const char *const params[] = {
		"max_capacity", "max_msg_size", "max_conversations",
	};
	long long val;
	unsigned int i;

	(void)name;
	for (i = 0; i < ARRAY_SIZE(params); i++) {
		CHILD_CHECK(param_read(params[i], &val) == 0);
		CHILD_CHECK(param_write(params[i], val) == -1);
		CHILD_CHECK(errno == EACCES);
	}
}

/* Only root may move the limits */
TEST(params_root_only)
{
	EXPECT_EQ(0, run_unpriv(params_denied, NULL));
}

/*
 * Sizes at the top of their types. The limits are raised to the largest
 * values the parameters take, so nothing but the arithmetic stands in the
 * way; teardown puts them back.
 */
FIXTURE(limits) {
	long long max_capacity, max_msg_size, max_total_bytes, max_user_bytes;
	char name[CBM_NAME_MAX];
	int fd;		/* a 4 KiB conversation, O_RDWR | O_NONBLOCK */
};

FIXTURE_SETUP(limits)
{
	ASSERT_EQ(0, param_read("max_capacity", &self->max_capacity));
	ASSERT_EQ(0, param_read("max_msg_size", &self->max_msg_size));
	ASSERT_EQ(0, param_read("max_total_bytes", &self->max_total_bytes));
	ASSERT_EQ(0, param_read("max_user_bytes", &self->max_user_bytes));
	conv_name(self->name, "limits");
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0,
				MIN_CAPACITY);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(limits)
{
	EXPECT_EQ(0, param_write("max_capacity", self->max_capacity));
	EXPECT_EQ(0, param_write("max_msg_size", self->max_msg_size));
	EXPECT_EQ(0, param_write("max_total_bytes", self->max_total_bytes));
	EXPECT_EQ(0, param_write("max_user_bytes", self->max_user_bytes));
	close(self->fd);
	unlink_name(self->name);
}

/*
 * With max_capacity at ULONG_MAX, no check stands before the rounding up
 * to a power of two: a capacity above 2^63 has none that fits 64 bits and
 * must be refused, not wrapped around to a tiny ring.
 */
TEST_F(limits, capacity_rounding_overflow)
{
	static const __u64 caps[] = {
		(1ULL << 63) + 1, ~0ULL - MIN_CAPACITY + 1, ~0ULL,
	};
	char buf[32];
	unsigned int i;
	int fd, ret;

	snprintf(buf, sizeof(buf), "%lu\n", ULONG_MAX);
	ASSERT_EQ(0, write_file(CBM_PARAM_DIR "max_capacity", buf));
	ASSERT_EQ(0, write_file(CBM_PARAM_DIR "max_total_bytes", buf));
	ASSERT_EQ(0, write_file(CBM_PARAM_DIR "max_user_bytes", buf));
	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		ret = cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, caps[i]);
		EXPECT_EQ(-1, ret) TH_LOG("capacity %#llx", caps[i]);
		EXPECT_EQ(E2BIG, errno) TH_LOG("capacity %#llx", caps[i]);
	}
	/* 2^63 itself is a power of two, only far too big to allocate */
	ret = cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, 1ULL << 63);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(0, cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, MIN_CAPACITY));
	close(fd);
}

/*
 * A length is checked before the buffer it describes is touched. The
 * buffer is static: write() first checks that the whole range lies in
 * user space, which a range from near the top of the stack would not.
 */
TEST_F(limits, length_overflow)
{
	static const __u32 lens[] = {
		MIN_CAPACITY - REC_HDR + 1, 1U << 31, UINT32_MAX,
	};
	static char buf[16];
	struct cbm_info info;
	unsigned int i;
	ssize_t n;
	int ret;

	ASSERT_EQ(0, param_write("max_msg_size", UINT32_MAX));
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(MIN_CAPACITY - REC_HDR, info.max_msg_size);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		ret = send_msg(self->fd, CBM_ROLE_USER, 0, buf, lens[i], NULL);
		EXPECT_EQ(-1, ret) TH_LOG("len %#x", lens[i]);
		EXPECT_EQ(EMSGSIZE, errno) TH_LOG("len %#x", lens[i]);
		n = write(self->fd, buf, lens[i]);
		EXPECT_EQ(-1, n) TH_LOG("len %#x", lens[i]);
		EXPECT_EQ(EMSGSIZE, errno) TH_LOG("len %#x", lens[i]);
	}
	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_EQ(0, info.next_seq);
}

/* Seek offsets at the ends of loff_t neither wrap nor crash */
TEST_F(limits, seek_extremes)
{
	static const struct {
		off_t offset;
		int whence;
		off_t result;	/* -1: EINVAL */
	} cases[] = {
		{ LLONG_MAX, SEEK_SET, -1 },
		{ LLONG_MIN, SEEK_SET, -1 },
		{ LLONG_MAX, SEEK_CUR, -1 },	/* overflows */
		{ LLONG_MIN, SEEK_CUR, 0 },	/* clamped to the oldest */
		{ LLONG_MAX, SEEK_END, -1 },	/* overflows */
		{ LLONG_MIN, SEEK_END, 0 },
	};
	unsigned int i;
	char buf[16];
	off_t ret;

	for (i = 0; i < 5; i++)
		ASSERT_EQ(1, write_str(self->fd, "x"));
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(2, lseek(self->fd, 2, SEEK_SET));
		ret = lseek(self->fd, cases[i].offset, cases[i].whence);
		EXPECT_EQ(cases[i].result, ret) TH_LOG("case %u", i);
		if (cases[i].result == -1) {
			EXPECT_EQ(EINVAL, errno) TH_LOG("case %u", i);
			EXPECT_EQ(2, lseek(self->fd, 0, SEEK_CUR));
		}
	}
	EXPECT_EQ(1, read(self->fd, buf, sizeof(buf)));
}

/* Every u32 field at its maximum is refused, not truncated into range */
TEST_F(limits, u32_max_fields)
{
	struct cbm_fd_config cfg;
	int fd, ret;

	ret = send_msg(self->fd, UINT32_MAX, 0, "x", 1, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = send_msg(self->fd, CBM_ROLE_USER, UINT32_MAX, "x", 1, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = set_config(self->fd, 0, UINT32_MAX);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = set_config(self->fd, UINT32_MAX, CBM_ROLE_USER);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = unlink_on(self->fd, self->name, UINT32_MAX);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	ret = cbm_bind(fd, self->name, UINT32_MAX, 0600, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = cbm_bind(fd, self->name, CBM_BIND_CREATE, UINT32_MAX, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	ret = cbm_bind(fd, self->name, CBM_BIND_CREATE, 0600, UINT32_MAX, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	close(fd);

	ASSERT_EQ(0, get_config(self->fd, &cfg));
	EXPECT_EQ(0, cfg.flags);
	EXPECT_EQ(CBM_ROLE_USER, cfg.role);
}

TEST_HARNESS_MAIN
