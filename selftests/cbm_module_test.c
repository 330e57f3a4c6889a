// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: the module as a whole: the device node, module parameters and their
 * limits, and unloading while in use.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* Most conversations the ENOSPC test creates while looking for the limit */
#define MAX_CREATE	64

TEST(device_node)
{
	struct stat st;

	ASSERT_EQ(0, stat(CBM_DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	/* anyone may open it; conversations carry their own permissions */
	EXPECT_EQ(0666, st.st_mode & 07777);
}

TEST(default_matches_params)
{
	long long capacity, mode;
	struct cbm_info info;
	int fd;

	ASSERT_EQ(0, param_read("default_capacity", &capacity));
	ASSERT_EQ(0, param_read("default_mode", &mode));
	fd = cbm_open(O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_STREQ(CBM_DEFAULT_NAME, info.name);
	EXPECT_EQ(CBM_CONV_DEFAULT, info.flags);
	EXPECT_EQ(capacity, info.capacity);
	EXPECT_EQ(mode, info.mode);
	EXPECT_EQ(0, info.uid);
	EXPECT_EQ(0, info.gid);
	EXPECT_EQ(max_payload(capacity), info.max_msg_size);
	close(fd);
}

TEST(readonly_params)
{
	static const char * const ro[] = { "default_capacity", "default_mode" };
	char path[128];
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(ro); i++) {
		snprintf(path, sizeof(path), CBM_PARAM_DIR "%s", ro[i]);
		fd = open(path, O_WRONLY);
		EXPECT_EQ(-1, fd) TH_LOG("%s is writable", ro[i]);
		EXPECT_EQ(EACCES, errno);
		if (fd >= 0)
			close(fd);
	}
}

/*
 * delete_module() fails while a file is open. The refcount is checked
 * first: if the open file did not pin the module, calling delete_module()
 * would unload it under the rest of the test run.
 */
TEST(unload_refused_while_open)
{
	struct cbm_info info;
	long long refcnt;
	char buf[8];
	long ret;
	int fd;

	fd = cbm_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	ASSERT_EQ(0, read_num("/sys/module/cbm/refcnt", &refcnt));
	ASSERT_LT(0, refcnt) TH_LOG("an open /dev/cbm does not pin the module");

	ret = syscall(__NR_delete_module, "cbm", O_NONBLOCK);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EWOULDBLOCK, errno);

	/* still loaded and working */
	EXPECT_EQ(0, access("/sys/module/cbm", F_OK));
	ASSERT_EQ(6, write_str(fd, "alive\n"));
	ASSERT_LE(0, lseek(fd, -1, SEEK_END));
	ASSERT_EQ(6, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "alive\n", 6));
	close(fd);
}

/* Tests that change writable parameters; teardown restores them */
FIXTURE(param) {
	long long max_capacity, max_msg_size, max_conversations;
	long long max_total_bytes, max_user_bytes;
	char names[MAX_CREATE + 1][CBM_NAME_MAX];
	int created;
};

FIXTURE_SETUP(param)
{
	ASSERT_EQ(0, param_read("max_capacity", &self->max_capacity));
	ASSERT_EQ(0, param_read("max_msg_size", &self->max_msg_size));
	ASSERT_EQ(0, param_read("max_conversations",
				&self->max_conversations));
	ASSERT_EQ(0, param_read("max_total_bytes", &self->max_total_bytes));
	ASSERT_EQ(0, param_read("max_user_bytes", &self->max_user_bytes));
}

FIXTURE_TEARDOWN(param)
{
	int i;

	EXPECT_EQ(0, param_write("max_capacity", self->max_capacity));
	EXPECT_EQ(0, param_write("max_msg_size", self->max_msg_size));
	EXPECT_EQ(0, param_write("max_conversations",
				 self->max_conversations));
	EXPECT_EQ(0, param_write("max_total_bytes", self->max_total_bytes));
	EXPECT_EQ(0, param_write("max_user_bytes", self->max_user_bytes));
	for (i = 0; i < self->created; i++)
		unlink_name(self->names[i]);
}

/* Creates the next test conversation; returns its file or -1 */
static int create_next(FIXTURE_DATA(param) *self, __u64 capacity)
{
	char tag[16];
	int fd;

	snprintf(tag, sizeof(tag), "p%d", self->created);
	conv_name(self->names[self->created], tag);
	fd = create_named(self->names[self->created], O_RDWR, 0600, 0,
			  capacity);
	if (fd >= 0)
		self->created++;
	return fd;
}

TEST_F(param, max_capacity)
{
	int fd, ret;

	ASSERT_EQ(0, param_write("max_capacity", 65536));
	fd = create_next(self, 65536);
	ASSERT_LE(0, fd);
	close(fd);
	ret = create_next(self, 65537);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	ret = cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, 131072);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);

	ASSERT_EQ(0, param_write("max_capacity", self->max_capacity));
	EXPECT_EQ(0, cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, 131072));
	close(fd);
}

/*
 * A ring that cannot be allocated fails with ENOMEM and leaves nothing
 * behind. The request is far beyond any machine's memory, so the
 * allocation fails outright instead of waking the OOM killer. With the
 * memory caps at their defaults (a fraction of RAM) the cap refuses it
 * first, with ENOSPC.
 */
TEST_F(param, unallocatable_ring_enomem)
{
	const __u64 huge = 1ULL << 40;
	int ret;

	ASSERT_EQ(0, param_write("max_capacity", huge));
	ret = create_next(self, huge);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);

	ASSERT_EQ(0, param_write("max_total_bytes", 2 * huge));
	ASSERT_EQ(0, param_write("max_user_bytes", 2 * huge));
	ret = create_next(self, huge);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOMEM, errno);
	ret = open_named(self->names[self->created], O_RDONLY);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
}

/* max_msg_size applies at once, to existing conversations too */
TEST_F(param, max_msg_size)
{
	unsigned char buf[101] = { 0 };
	struct cbm_info info;
	ssize_t n;
	int fd, ret;

	fd = create_next(self, 65536);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, param_write("max_msg_size", 100));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(100, info.max_msg_size);
	EXPECT_EQ(100, write(fd, buf, 100));
	n = write(fd, buf, 101);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EMSGSIZE, errno);
	ret = send_msg(fd, CBM_ROLE_USER, 0, buf, 101, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EMSGSIZE, errno);

	ASSERT_EQ(0, param_write("max_msg_size", self->max_msg_size));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(max_payload(65536), info.max_msg_size);
	EXPECT_EQ(101, write(fd, buf, 101));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(2, info.msgs);
	close(fd);
}

/*
 * With max_conversations lowered, creation stops with ENOSPC; existing
 * conversations stay, and unlinking one makes room for one more.
 */
TEST_F(param, max_conversations)
{
	int fd, ret, anon;

	ASSERT_EQ(0, param_write("max_conversations", MAX_CREATE));
	while (self->created < MAX_CREATE) {
		fd = create_next(self, MIN_CAPACITY);
		if (fd < 0)
			break;
		close(fd);
	}
	ASSERT_GT(MAX_CREATE, self->created) TH_LOG("no limit reached");
	EXPECT_EQ(ENOSPC, errno);
	ASSERT_LT(0, self->created)
		TH_LOG("other conversations already use up the limit");

	anon = cbm_open(O_RDWR);
	ASSERT_LE(0, anon);
	ret = cbm_bind(anon, "", CBM_BIND_ANON, 0600, 0, MIN_CAPACITY);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);

	/* the earlier ones are still there */
	fd = open_named(self->names[0], O_RDONLY);
	ASSERT_LE(0, fd);
	close(fd);

	self->created--;
	ASSERT_EQ(0, unlink_name(self->names[self->created]));
	fd = create_next(self, MIN_CAPACITY);
	ASSERT_LE(0, fd);
	close(fd);
	ret = create_next(self, MIN_CAPACITY);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);

	ASSERT_EQ(0, param_write("max_conversations",
				 self->max_conversations));
	EXPECT_EQ(0, cbm_bind(anon, "", CBM_BIND_ANON, 0600, 0, MIN_CAPACITY));
	close(anon);
}

TEST_HARNESS_MAIN
