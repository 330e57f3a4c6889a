// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: who may attach to and unlink a conversation, and who a message says
 * its sender is, across uids and pid and user namespaces.
 *
 * Helper processes switch to UNPRIV_UID/UNPRIV_GID with no supplementary
 * groups; no /etc/passwd is needed.
 */
#include <sched.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* The uid a user namespace maps root's uid to in the mapped-namespace test */
#define NS_UID		5000

/*
 * Attaching checks the conversation's owner, group and mode against the
 * access the file was opened with, as mq_open() does: the owner class
 * decides for the owner, the group class for group members, other for the
 * rest.
 */
FIXTURE(perm) {
	char name[CBM_NAME_MAX];
	int ctl;	/* the creator's file, O_RDWR */
};

FIXTURE_VARIANT(perm) {
	__u32 mode;
	bool owner_unpriv;	/* owned by UNPRIV_UID:UNPRIV_GID */
	bool group_unpriv;	/* owned by root:UNPRIV_GID */
	bool can_read;
	bool can_write;
};

FIXTURE_VARIANT_ADD(perm, m0600_other) { .mode = 0600 };
FIXTURE_VARIANT_ADD(perm, m0604_other) { .mode = 0604, .can_read = true };
FIXTURE_VARIANT_ADD(perm, m0602_other) { .mode = 0602, .can_write = true };
FIXTURE_VARIANT_ADD(perm, m0606_other) {
	.mode = 0606, .can_read = true, .can_write = true,
};
FIXTURE_VARIANT_ADD(perm, m0666_other) {
	.mode = 0666, .can_read = true, .can_write = true,
};
FIXTURE_VARIANT_ADD(perm, m0640_other) { .mode = 0640 };
FIXTURE_VARIANT_ADD(perm, m0640_group) {
	.mode = 0640, .group_unpriv = true, .can_read = true,
};
FIXTURE_VARIANT_ADD(perm, m0620_group) {
	.mode = 0620, .group_unpriv = true, .can_write = true,
};
FIXTURE_VARIANT_ADD(perm, m0660_group) {
	.mode = 0660, .group_unpriv = true, .can_read = true, .can_write = true,
};
FIXTURE_VARIANT_ADD(perm, m0604_group) {
	.mode = 0604, .group_unpriv = true,
};
FIXTURE_VARIANT_ADD(perm, m0400_owner) {
	.mode = 0400, .owner_unpriv = true, .can_read = true,
};
FIXTURE_VARIANT_ADD(perm, m0200_owner) {
	.mode = 0200, .owner_unpriv = true, .can_write = true,
};
FIXTURE_VARIANT_ADD(perm, m0066_owner) {
	.mode = 0066, .owner_unpriv = true,
};

FIXTURE_SETUP(perm)
{
	struct cbm_info info;
	uid_t uid = variant->owner_unpriv ? UNPRIV_UID : 0;
	gid_t gid = variant->owner_unpriv || variant->group_unpriv ?
		    UNPRIV_GID : 0;

	conv_name(self->name, "perm");
	ASSERT_EQ(0, become(uid, gid));
	/* as for mq_open(), creating does not check the new mode */
	self->ctl = create_named(self->name, O_RDWR | O_NONBLOCK, variant->mode,
				 0, 0);
	ASSERT_EQ(0, become_root());
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, read_info(self->ctl, &info));
	ASSERT_EQ(uid, info.uid);
	ASSERT_EQ(gid, info.gid);
	ASSERT_EQ(variant->mode, info.mode);
	ASSERT_EQ(9, write_str(self->ctl, "from-root"));
	ASSERT_EQ(0, set_config(self->ctl, CBM_FD_RECORDS, CBM_ROLE_USER));
}

FIXTURE_TEARDOWN(perm)
{
	close(self->ctl);
	unlink_name(self->name);
}

static void attach_as_unpriv(struct __test_metadata *_metadata,
			     FIXTURE_DATA(perm) *self,
			     const FIXTURE_VARIANT(perm) *variant, int oflags)
{
	bool want_read = (oflags & O_ACCMODE) != O_WRONLY;
	bool want_write = (oflags & O_ACCMODE) != O_RDONLY;
	bool allowed = (!want_read || variant->can_read) &&
		       (!want_write || variant->can_write);
	union rec_buf *rb = malloc(sizeof(*rb));
	pid_t pid;

	ASSERT_NE(NULL, rb);
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char buf[16];
		int fd, ret;

		CHILD_CHECK(drop_privs(UNPRIV_UID, UNPRIV_GID) == 0);
		fd = cbm_open(oflags | O_NONBLOCK);
		CHILD_CHECK(fd >= 0);
		ret = cbm_bind(fd, self->name, 0, 0, 0, 0);
		if (!allowed) {
			CHILD_CHECK(ret == -1);
			CHILD_CHECK(errno == EACCES);
			_exit(0);
		}
		CHILD_CHECK(ret == 0);
		if (want_read) {
			CHILD_CHECK(read(fd, buf, sizeof(buf)) == 9);
			CHILD_CHECK(!memcmp(buf, "from-root", 9));
		}
		if (want_write)
			CHILD_CHECK(write_str(fd, "from-child") == 10);
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));

	/* what the helper wrote follows root's message, stamped with its uid */
	ASSERT_EQ(REC_HDR + 9, read_record(self->ctl, rb));
	if (allowed && want_write) {
		ASSERT_EQ(REC_HDR + 10, read_record(self->ctl, rb));
		EXPECT_EQ(UNPRIV_UID, rb->rec.uid);
		EXPECT_EQ(0, memcmp(rb->bytes + REC_HDR, "from-child", 10));
	} else {
		EXPECT_EQ(-1, read_record(self->ctl, rb));
		EXPECT_EQ(EAGAIN, errno);
	}
	free(rb);
}

TEST_F(perm, attach_rdonly)
{
	attach_as_unpriv(_metadata, self, variant, O_RDONLY);
}

TEST_F(perm, attach_wronly)
{
	attach_as_unpriv(_metadata, self, variant, O_WRONLY);
}

TEST_F(perm, attach_rdwr)
{
	attach_as_unpriv(_metadata, self, variant, O_RDWR);
}

/* A conversation anyone may use, read in record format by root */
FIXTURE(cred) {
	char name[CBM_NAME_MAX];
	int fd;		/* root's file: O_RDWR | O_NONBLOCK, records */
	union rec_buf *rb;
};

FIXTURE_SETUP(cred)
{
	conv_name(self->name, "cred");
	self->rb = malloc(sizeof(*self->rb));
	ASSERT_NE(NULL, self->rb);
	self->fd = create_named(self->name, O_RDWR | O_NONBLOCK, 0666, 0, 0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, set_config(self->fd, CBM_FD_RECORDS, CBM_ROLE_USER));
}

FIXTURE_TEARDOWN(cred)
{
	close(self->fd);
	unlink_name(self->name);
	free(self->rb);
}

static void unlink_eacces(const char *name)
{
	CHILD_CHECK(unlink_name(name) == -1);
	CHILD_CHECK(errno == EACCES);
}

TEST_F(cred, unlink_by_non_owner_eacces)
{
	int fd;

	EXPECT_EQ(0, run_unpriv(unlink_eacces, self->name));
	fd = open_named(self->name, O_RDONLY);
	EXPECT_LE(0, fd);
	close(fd);
}

static void create_and_unlink(const char *name)
{
	struct cbm_info info;
	int fd;

	fd = create_named(name, O_RDWR, 0600, 0, 0);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(read_info(fd, &info) == 0);
	CHILD_CHECK(info.uid == UNPRIV_UID && info.gid == UNPRIV_GID);
	CHILD_CHECK(unlink_name(name) == 0);
}

TEST_F(cred, unlink_by_owner)
{
	char name[CBM_NAME_MAX];
	int ret;

	conv_name(name, "own");
	EXPECT_EQ(0, run_unpriv(create_and_unlink, name));
	ret = open_named(name, O_RDONLY);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
}

static void create_private(const char *name)
{
	int fd = create_named(name, O_RDWR, 0, 0, 0);

	CHILD_CHECK(fd >= 0);
}

/*
 * A conversation outlives its creator; root may attach despite its mode
 * (CAP_DAC_OVERRIDE, as for mq_open()) and unlink it (CAP_SYS_ADMIN).
 */
TEST_F(cred, root_overrides_owner)
{
	char name[CBM_NAME_MAX];
	struct cbm_info info;
	int fd;

	conv_name(name, "other");
	ASSERT_EQ(0, run_unpriv(create_private, name));
	fd = open_named(name, O_RDWR);
	EXPECT_LE(0, fd);
	if (fd >= 0) {
		ASSERT_EQ(0, read_info(fd, &info));
		EXPECT_EQ(UNPRIV_UID, info.uid);
		EXPECT_EQ(UNPRIV_GID, info.gid);
		EXPECT_EQ(0, info.mode);
		close(fd);
	}
	EXPECT_EQ(0, unlink_name(name));
}

static void default_eacces(const char *name)
{
	struct pollfd pfd = { .events = POLLIN };
	char buf[16];
	ssize_t n;
	int fd;

	(void)name;
	fd = cbm_open(O_WRONLY);
	CHILD_CHECK(fd >= 0);
	n = write_str(fd, "intruder");
	CHILD_CHECK(n == -1 && errno == EACCES);
	close(fd);
	fd = cbm_open(O_RDONLY | O_NONBLOCK);
	CHILD_CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	CHILD_CHECK(n == -1 && errno == EACCES);
	close(fd);
	/* poll() has no errno: it reports the failed binding as EPOLLERR */
	pfd.fd = cbm_open(O_RDONLY);
	CHILD_CHECK(pfd.fd >= 0);
	CHILD_CHECK(poll(&pfd, 1, 0) == 1);
	CHILD_CHECK(pfd.revents == POLLERR);
}

/* The default conversation belongs to root with default_mode */
TEST_F(cred, default_denied_to_others)
{
	struct cbm_info before, after;
	long long mode;
	int fd;

	fd = cbm_open(O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &before));
	ASSERT_EQ(0, param_read("default_mode", &mode));
	EXPECT_EQ(mode, before.mode);
	EXPECT_EQ(0, before.uid);
	if (before.mode & 0066)
		SKIP(close(fd); return, "default_mode %#o lets others in",
		     before.mode);

	EXPECT_EQ(0, run_unpriv(default_eacces, NULL));
	ASSERT_EQ(0, read_info(fd, &after));
	EXPECT_EQ(before.next_seq, after.next_seq);
	close(fd);
}

/*
 * The kernel stamps the sender's tgid and effective uid. A reader in the
 * initial pid namespace gets the recorded number, even after the sender
 * exited.
 */
TEST_F_TIMEOUT(cred, sender_identity, 20)
{
	int ready[2], go[2];
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		/* ruid 2000, euid 1000: the effective one is stamped */
		CHILD_CHECK(setgroups(0, NULL) == 0);
		CHILD_CHECK(setresgid(UNPRIV_GID, UNPRIV_GID, UNPRIV_GID) == 0);
		CHILD_CHECK(setresuid(2 * UNPRIV_UID, UNPRIV_UID,
				      2 * UNPRIV_UID) == 0);
		fd = open_named(self->name, O_WRONLY);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(write_str(fd, "hi") == 2);
		CHILD_CHECK(sync_post(ready[1]) == 0);
		CHILD_CHECK(sync_wait(go[0]) == 0);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(ready[0]));
	ASSERT_EQ(REC_HDR + 2, read_record(self->fd, self->rb));
	EXPECT_EQ(pid, self->rb->rec.pid);
	EXPECT_EQ(UNPRIV_UID, self->rb->rec.uid);

	ASSERT_EQ(0, sync_post(go[1]));
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, lseek(self->fd, 0, SEEK_SET));
	ASSERT_EQ(REC_HDR + 2, read_record(self->fd, self->rb));
	EXPECT_EQ(pid, self->rb->rec.pid);
	EXPECT_EQ(UNPRIV_UID, self->rb->rec.uid);
}

/*
 * A reader in a new pid namespace sees its own pid in the namespace for
 * itself, and 0 for a sender outside it or one that has exited; outside,
 * the same record shows the global pid.
 */
TEST_F_TIMEOUT(cred, pid_namespace, 20)
{
	int info[2], ready[2], go[2];
	pid_t outer, inner = 0;

	ASSERT_EQ(7, write_str(self->fd, "outside"));
	ASSERT_EQ(0, pipe(info));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	outer = fork_child();
	ASSERT_LE(0, outer);
	if (outer == 0) {
		CHILD_CHECK(unshare(CLONE_NEWPID) == 0);
		inner = fork();
		CHILD_CHECK(inner >= 0);
		if (inner == 0) {
			union rec_buf *rb = malloc(sizeof(*rb));
			int fd = open_named(self->name, O_RDWR | O_NONBLOCK);
			pid_t gone;

			CHILD_CHECK(rb && fd >= 0);
			CHILD_CHECK(getpid() == 1);
			gone = fork();
			CHILD_CHECK(gone >= 0);
			if (gone == 0)
				_exit(write_str(fd, "gone") == 4 ? 0 : 1);
			CHILD_CHECK(wait_child(gone) == 0);
			CHILD_CHECK(set_config(fd, CBM_FD_RECORDS,
					       CBM_ROLE_USER) == 0);
			CHILD_CHECK(write_str(fd, "inside") == 6);
			CHILD_CHECK(read_record(fd, rb) == REC_HDR + 7);
			CHILD_CHECK(rb->rec.pid == 0);
			CHILD_CHECK(read_record(fd, rb) == REC_HDR + 4);
			CHILD_CHECK(rb->rec.pid == 0);
			CHILD_CHECK(read_record(fd, rb) == REC_HDR + 6);
			CHILD_CHECK(rb->rec.pid == 1);
			CHILD_CHECK(sync_post(ready[1]) == 0);
			CHILD_CHECK(sync_wait(go[0]) == 0);
			_exit(0);
		}
		CHILD_CHECK(write(info[1], &inner, sizeof(inner)) ==
			    (ssize_t)sizeof(inner));
		_exit(wait_child(inner));
	}
	/* if the helper dies early, read() sees end of file instead of hanging */
	close(info[1]);
	ASSERT_EQ(sizeof(inner), read(info[0], &inner, sizeof(inner)));
	ASSERT_EQ(0, sync_wait(ready[0]));

	ASSERT_EQ(REC_HDR + 7, read_record(self->fd, self->rb));
	EXPECT_EQ(getpid(), self->rb->rec.pid);
	ASSERT_EQ(REC_HDR + 4, read_record(self->fd, self->rb));
	EXPECT_NE(0, self->rb->rec.pid);
	ASSERT_EQ(REC_HDR + 6, read_record(self->fd, self->rb));
	EXPECT_EQ(inner, self->rb->rec.pid);
	ASSERT_EQ(0, sync_post(go[1]));
	EXPECT_EQ(0, wait_child(outer));
}

/*
 * uids are shown in the reader's user namespace: the overflow uid where
 * there is no mapping. A writer that enters a namespace is still stamped
 * with its real uid.
 */
TEST_F(cred, user_namespace_unmapped)
{
	long long overflowuid, overflowgid;
	pid_t pid;

	ASSERT_EQ(0, read_num("/proc/sys/kernel/overflowuid", &overflowuid));
	ASSERT_EQ(0, read_num("/proc/sys/kernel/overflowgid", &overflowgid));
	ASSERT_EQ(4, write_str(self->fd, "root"));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		union rec_buf *rb = malloc(sizeof(*rb));
		int fd = open_named(self->name, O_RDWR | O_NONBLOCK);
		struct cbm_info info;

		CHILD_CHECK(rb && fd >= 0);
		CHILD_CHECK(set_config(fd, CBM_FD_RECORDS, CBM_ROLE_USER) == 0);
		CHILD_CHECK(unshare(CLONE_NEWUSER) == 0);
		CHILD_CHECK(geteuid() == (uid_t)overflowuid);
		CHILD_CHECK(read_record(fd, rb) == REC_HDR + 4);
		CHILD_CHECK(rb->rec.uid == overflowuid);
		CHILD_CHECK(read_info(fd, &info) == 0);
		CHILD_CHECK(info.uid == overflowuid);
		CHILD_CHECK(info.gid == overflowgid);
		CHILD_CHECK(write_str(fd, "ns") == 2);
		CHILD_CHECK(read_record(fd, rb) == REC_HDR + 2);
		CHILD_CHECK(rb->rec.uid == overflowuid);
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(1, lseek(self->fd, 1, SEEK_SET));
	ASSERT_EQ(REC_HDR + 2, read_record(self->fd, self->rb));
	EXPECT_EQ(0, self->rb->rec.uid);
}

TEST_F(cred, user_namespace_mapped)
{
	pid_t pid;

	ASSERT_EQ(4, write_str(self->fd, "root"));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		union rec_buf *rb = malloc(sizeof(*rb));
		int fd = open_named(self->name, O_RDWR | O_NONBLOCK);
		struct cbm_info info;
		char map[32];
		int mfd, len;

		CHILD_CHECK(rb && fd >= 0);
		CHILD_CHECK(set_config(fd, CBM_FD_RECORDS, CBM_ROLE_USER) == 0);
		CHILD_CHECK(unshare(CLONE_NEWUSER) == 0);
		/* NS_UID inside is root outside */
		mfd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
		CHILD_CHECK(mfd >= 0);
		len = snprintf(map, sizeof(map), "%d 0 1\n", NS_UID);
		CHILD_CHECK(write(mfd, map, len) == len);
		close(mfd);
		CHILD_CHECK(geteuid() == NS_UID);
		CHILD_CHECK(read_record(fd, rb) == REC_HDR + 4);
		CHILD_CHECK(rb->rec.uid == NS_UID);
		CHILD_CHECK(read_info(fd, &info) == 0);
		CHILD_CHECK(info.uid == NS_UID);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
}

TEST_HARNESS_MAIN
