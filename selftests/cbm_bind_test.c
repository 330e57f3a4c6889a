// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: binding files to conversations, names, anonymous and default
 * conversations, unlink, and the size-first ABI of every ioctl.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* Bytes appended to an ioctl struct to play a newer userspace */
#define ABI_TAIL	64

static int bind_raw(int fd, const char name[CBM_NAME_MAX], __u32 flags)
{
	struct cbm_bind b;

	memset(&b, 0, sizeof(b));
	b.size = sizeof(b);
	b.flags = flags;
	b.mode = 0600;
	memcpy(b.name, name, CBM_NAME_MAX);
	return ioctl(fd, CBM_IOC_BIND, &b);
}

static int unlink_raw(int fd, const char name[CBM_NAME_MAX])
{
	struct cbm_unlink u;

	memset(&u, 0, sizeof(u));
	u.size = sizeof(u);
	memcpy(u.name, name, CBM_NAME_MAX);
	return ioctl(fd, CBM_IOC_UNLINK, &u);
}

/*
 * Every ioctl argument starts with its size. Input structs follow the
 * extensible-struct rules; output structs (GET_CONFIG, INFO, READER_INFO)
 * are filled up to the caller's size with the unknown tail zeroed.
 */
enum arg_kind { ARG_IN, ARG_OUT };

FIXTURE(abi) {
	char name[CBM_NAME_MAX];
	int ctl;	/* keeps the conversation's creator open */
	int fd;		/* the file the ioctl under test is issued on */
	unsigned char *pages;	/* a readable page followed by PROT_NONE */
	long page_size;
	union {
		__u64 align;
		unsigned char bytes[256 + ABI_TAIL];
	} arg;
};

/*
 * @min_size: the struct's first published size, the least accepted
 * @ret: what a valid call returns (SEND_BATCH: the messages appended)
 */
FIXTURE_VARIANT(abi) {
	unsigned long cmd;
	__u32 size;
	__u32 min_size;
	enum arg_kind kind;
	int ret;
};

FIXTURE_VARIANT_ADD(abi, bind) {
	.cmd = CBM_IOC_BIND, .size = sizeof(struct cbm_bind), .kind = ARG_IN,
	.min_size = sizeof(struct cbm_bind),
};

FIXTURE_VARIANT_ADD(abi, unlink) {
	.cmd = CBM_IOC_UNLINK, .size = sizeof(struct cbm_unlink), .kind = ARG_IN,
	.min_size = sizeof(struct cbm_unlink),
};

FIXTURE_VARIANT_ADD(abi, send) {
	.cmd = CBM_IOC_SEND, .size = sizeof(struct cbm_send), .kind = ARG_IN,
	.min_size = struct_end(struct cbm_send, seq),
};

FIXTURE_VARIANT_ADD(abi, set_config) {
	.cmd = CBM_IOC_SET_CONFIG, .size = sizeof(struct cbm_fd_config),
	.kind = ARG_IN,
	.min_size = sizeof(struct cbm_fd_config),
};

FIXTURE_VARIANT_ADD(abi, get_config) {
	.cmd = CBM_IOC_GET_CONFIG, .size = sizeof(struct cbm_fd_config),
	.kind = ARG_OUT,
	.min_size = sizeof(struct cbm_fd_config),
};

FIXTURE_VARIANT_ADD(abi, info) {
	.cmd = CBM_IOC_INFO, .size = sizeof(struct cbm_info), .kind = ARG_OUT,
	.min_size = struct_end(struct cbm_info, name),
};

FIXTURE_VARIANT_ADD(abi, reader_info) {
	.cmd = CBM_IOC_READER_INFO, .size = sizeof(struct cbm_reader_info),
	.kind = ARG_OUT,
	.min_size = sizeof(struct cbm_reader_info),
};

FIXTURE_VARIANT_ADD(abi, set_window) {
	.cmd = CBM_IOC_SET_WINDOW, .size = sizeof(struct cbm_window),
	.min_size = sizeof(struct cbm_window), .kind = ARG_IN,
};

FIXTURE_VARIANT_ADD(abi, get_window) {
	.cmd = CBM_IOC_GET_WINDOW, .size = sizeof(struct cbm_window),
	.min_size = sizeof(struct cbm_window), .kind = ARG_OUT,
};

FIXTURE_VARIANT_ADD(abi, read_window) {
	.cmd = CBM_IOC_READ_WINDOW, .size = sizeof(struct cbm_read_window),
	.min_size = sizeof(struct cbm_read_window), .kind = ARG_IN,
};

FIXTURE_VARIANT_ADD(abi, seek) {
	.cmd = CBM_IOC_SEEK, .size = sizeof(struct cbm_seek),
	.min_size = sizeof(struct cbm_seek), .kind = ARG_IN,
};

FIXTURE_VARIANT_ADD(abi, resize) {
	.cmd = CBM_IOC_RESIZE, .size = sizeof(struct cbm_resize),
	.min_size = sizeof(struct cbm_resize), .kind = ARG_IN,
};

FIXTURE_VARIANT_ADD(abi, set_autoresize) {
	.cmd = CBM_IOC_SET_AUTORESIZE, .size = sizeof(struct cbm_autoresize),
	.min_size = sizeof(struct cbm_autoresize), .kind = ARG_IN,
};

FIXTURE_VARIANT_ADD(abi, get_autoresize) {
	.cmd = CBM_IOC_GET_AUTORESIZE, .size = sizeof(struct cbm_autoresize),
	.min_size = sizeof(struct cbm_autoresize), .kind = ARG_OUT,
};

FIXTURE_VARIANT_ADD(abi, map_info) {
	.cmd = CBM_IOC_MAP_INFO, .size = sizeof(struct cbm_map_info),
	.min_size = offsetof(struct cbm_map_info, next_seq) + sizeof(__u64),
	.kind = ARG_OUT,
};

FIXTURE_VARIANT_ADD(abi, send_batch) {
	.cmd = CBM_IOC_SEND_BATCH, .size = sizeof(struct cbm_send_batch),
	.min_size = sizeof(struct cbm_send_batch), .kind = ARG_IN, .ret = 1,
};

FIXTURE_VARIANT_ADD(abi, restore) {
	.cmd = CBM_IOC_RESTORE, .size = sizeof(struct cbm_restore),
	.min_size = sizeof(struct cbm_restore), .kind = ARG_IN, .ret = 1,
};

FIXTURE_SETUP(abi)
{
	conv_name(self->name, "abi");
	self->fd = -1;
	self->ctl = create_named(self->name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, self->ctl);
	self->fd = cbm_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	/* BIND needs an unbound file; the others act on the conversation */
	if (variant->cmd != CBM_IOC_BIND && variant->cmd != CBM_IOC_UNLINK)
		ASSERT_EQ(0, cbm_bind(self->fd, self->name, 0, 0, 0, 0));

	self->page_size = sysconf(_SC_PAGESIZE);
	self->pages = mmap(NULL, 2 * self->page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->pages);
	ASSERT_EQ(0, mprotect(self->pages + self->page_size, self->page_size,
			      PROT_NONE));
}

FIXTURE_TEARDOWN(abi)
{
	if (self->pages && self->pages != MAP_FAILED)
		munmap(self->pages, 2 * self->page_size);
	if (self->fd >= 0)
		close(self->fd);
	if (self->ctl >= 0)
		close(self->ctl);
	unlink_name(self->name);
}

/* Builds a valid argument in @buf, with @size in its size field */
static void make_arg(FIXTURE_DATA(abi) *self,
		     const FIXTURE_VARIANT(abi) *variant,
		     unsigned char *buf, __u32 size)
{
	static const char payload[] = "abc";
	static const struct cbm_batch_msg msg = {
		.role = CBM_ROLE_USER, .len = sizeof(payload) - 1,
		.data = (uintptr_t)payload,
	};
	static const struct cbm_restore_msg rmsg = {
		.role = CBM_ROLE_USER, .len = sizeof(payload) - 1,
		.data = (uintptr_t)payload, .seq = 0, .ts_ns = 1,
	};

	memset(buf, 0, variant->size);
	switch (variant->cmd) {
	case CBM_IOC_BIND: {
		struct cbm_bind *b = (struct cbm_bind *)buf;

		copy_name(b->name, self->name);
		break;
	}
	case CBM_IOC_UNLINK: {
		struct cbm_unlink *u = (struct cbm_unlink *)buf;

		copy_name(u->name, self->name);
		break;
	}
	case CBM_IOC_SEND: {
		struct cbm_send *s = (struct cbm_send *)buf;

		s->role = CBM_ROLE_USER;
		s->len = strlen(payload);
		s->data = (uintptr_t)payload;
		s->seq = ~0ULL;
		break;
	}
	case CBM_IOC_SEND_BATCH: {
		struct cbm_send_batch *b = (struct cbm_send_batch *)buf;

		b->msgs = (uintptr_t)&msg;
		b->count = 1;
		b->msg_size = sizeof(msg);
		b->first_seq = ~0ULL;
		break;
	}
	case CBM_IOC_RESTORE: {
		struct cbm_restore *r = (struct cbm_restore *)buf;

		r->msgs = (uintptr_t)&rmsg;
		r->count = 1;
		r->msg_size = sizeof(rmsg);
		break;
	}
	case CBM_IOC_SET_CONFIG: {
		struct cbm_fd_config *c = (struct cbm_fd_config *)buf;

		c->flags = CBM_FD_RECORDS;
		c->role = CBM_ROLE_USER;
		break;
	}
	case CBM_IOC_SET_WINDOW:
	case CBM_IOC_READ_WINDOW:
	case CBM_IOC_SEEK:
	case CBM_IOC_RESIZE:
	case CBM_IOC_SET_AUTORESIZE:
		/* all zero is valid: no window, no buffer, cursor 0, ... */
		break;
	default:
		memset(buf, JUNK, variant->size);
		break;
	}
	memcpy(buf, &size, sizeof(size));
}

/* After a rejected call, nothing changed and a valid call still works */
static void check_unchanged(struct __test_metadata *_metadata,
			    FIXTURE_DATA(abi) *self,
			    const FIXTURE_VARIANT(abi) *variant)
{
	struct cbm_fd_config cfg;
	struct cbm_info info;

	switch (variant->cmd) {
	case CBM_IOC_SEND:
	case CBM_IOC_SEND_BATCH:
	case CBM_IOC_RESTORE:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(0, info.next_seq);
		break;
	case CBM_IOC_SET_CONFIG:
		ASSERT_EQ(0, get_config(self->fd, &cfg));
		EXPECT_EQ(0, cfg.flags);
		break;
	}
	make_arg(self, variant, self->arg.bytes, variant->size);
	EXPECT_EQ(variant->ret, ioctl(self->fd, variant->cmd, self->arg.bytes));
}

/* Checks that a successful call did its job */
static void check_done(struct __test_metadata *_metadata,
		       FIXTURE_DATA(abi) *self,
		       const FIXTURE_VARIANT(abi) *variant)
{
	const struct cbm_reader_info *ri = (void *)self->arg.bytes;
	const struct cbm_fd_config *c = (void *)self->arg.bytes;
	const struct cbm_send *s = (void *)self->arg.bytes;
	const struct cbm_info *out = (void *)self->arg.bytes;
	const struct cbm_send_batch *b = (void *)self->arg.bytes;
	const struct cbm_map_info *mi = (void *)self->arg.bytes;
	struct cbm_fd_config cfg;
	struct cbm_info info;
	int fd;

	switch (variant->cmd) {
	case CBM_IOC_BIND:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_STREQ(self->name, info.name);
		break;
	case CBM_IOC_UNLINK:
		fd = open_named(self->name, O_RDONLY);
		EXPECT_EQ(-1, fd);
		EXPECT_EQ(ENOENT, errno);
		break;
	case CBM_IOC_SEND:
		EXPECT_EQ(0, s->seq);
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(1, info.next_seq);
		break;
	case CBM_IOC_SET_CONFIG:
		ASSERT_EQ(0, get_config(self->fd, &cfg));
		EXPECT_EQ(CBM_FD_RECORDS, cfg.flags);
		break;
	case CBM_IOC_GET_CONFIG:
		EXPECT_EQ(0, c->flags);
		EXPECT_EQ(CBM_ROLE_USER, c->role);
		EXPECT_EQ(0, c->__reserved);
		break;
	case CBM_IOC_INFO:
		EXPECT_STREQ(self->name, out->name);
		EXPECT_EQ(0, out->flags);
		EXPECT_EQ(0, out->msgs);
		EXPECT_EQ(0, out->__reserved);
		EXPECT_EQ(0600, out->mode);
		break;
	case CBM_IOC_SEND_BATCH:
		EXPECT_EQ(0, b->first_seq);
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(1, info.next_seq);
		break;
	case CBM_IOC_RESTORE:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(1, info.next_seq);
		EXPECT_EQ(1, info.msgs);
		break;
	case CBM_IOC_MAP_INFO:
		ASSERT_EQ(0, read_info(self->fd, &info));
		EXPECT_EQ(0, mi->flags);
		EXPECT_EQ(info.capacity, mi->capacity);
		EXPECT_EQ(0, mi->header_offset);
		EXPECT_EQ(self->page_size, mi->header_size);
		EXPECT_EQ(mi->header_size, mi->data_offset);
		EXPECT_EQ(2 * info.capacity, mi->data_size);
		EXPECT_EQ(mi->data_offset + mi->data_size, mi->map_size);
		EXPECT_EQ(mi->tail, mi->head);
		EXPECT_EQ(0, mi->first_seq);
		EXPECT_EQ(0, mi->next_seq);
		break;
	case CBM_IOC_READER_INFO:
		EXPECT_EQ(0, ri->cursor);
		EXPECT_EQ(0, ri->lost);
		EXPECT_EQ(0, ri->gap);
		EXPECT_EQ(0, ri->unread);
		EXPECT_EQ(0, ri->next_len);
		EXPECT_EQ(0, ri->__reserved);
		break;
	}
}

static bool tail_is_zero(const unsigned char *tail)
{
	int i;

	for (i = 0; i < ABI_TAIL; i++)
		if (tail[i])
			return false;
	return true;
}

TEST_F(abi, exact_size)
{
	make_arg(self, variant, self->arg.bytes, variant->size);
	ASSERT_EQ(variant->ret, ioctl(self->fd, variant->cmd, self->arg.bytes));
	check_done(_metadata, self, variant);
}

TEST_F(abi, size_zero)
{
	int ret;

	make_arg(self, variant, self->arg.bytes, 0);
	ret = ioctl(self->fd, variant->cmd, self->arg.bytes);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	check_unchanged(_metadata, self, variant);
}

/* Anything shorter than a struct's first published version is invalid */
TEST_F(abi, size_short)
{
	int ret;

	make_arg(self, variant, self->arg.bytes, variant->min_size - 8);
	ret = ioctl(self->fd, variant->cmd, self->arg.bytes);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);

	make_arg(self, variant, self->arg.bytes, sizeof(__u32));
	ret = ioctl(self->fd, variant->cmd, self->arg.bytes);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	check_unchanged(_metadata, self, variant);
}

TEST_F(abi, larger_zero_tail)
{
	unsigned char *tail = self->arg.bytes + variant->size;

	make_arg(self, variant, self->arg.bytes, variant->size + ABI_TAIL);
	memset(tail, 0, ABI_TAIL);
	ASSERT_EQ(variant->ret, ioctl(self->fd, variant->cmd, self->arg.bytes));
	EXPECT_TRUE(tail_is_zero(tail));
	check_done(_metadata, self, variant);
}

TEST_F(abi, larger_nonzero_tail)
{
	unsigned char *tail = self->arg.bytes + variant->size;
	int ret;

	make_arg(self, variant, self->arg.bytes, variant->size + ABI_TAIL);
	memset(tail, JUNK, ABI_TAIL);
	ret = ioctl(self->fd, variant->cmd, self->arg.bytes);
	switch (variant->kind) {
	case ARG_IN:
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(E2BIG, errno);
		check_unchanged(_metadata, self, variant);
		break;
	case ARG_OUT:
		ASSERT_EQ(variant->ret, ret);
		EXPECT_TRUE(tail_is_zero(tail));
		check_done(_metadata, self, variant);
		break;
	}
}

TEST_F(abi, efault_null)
{
	int ret;

	ret = ioctl(self->fd, variant->cmd, NULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	check_unchanged(_metadata, self, variant);
}

/* The size word is readable, the rest of the struct is not */
TEST_F(abi, efault_past_size)
{
	unsigned char *arg = self->pages + self->page_size - sizeof(__u32);
	int ret;

	memcpy(arg, &variant->size, sizeof(__u32));
	ret = ioctl(self->fd, variant->cmd, arg);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	check_unchanged(_metadata, self, variant);
}

/*
 * The largest size a caller can claim: the kernel checks the tail beyond
 * its struct (input) or clears it (output) up to the guard page and fails
 * there, however far the size says the struct goes.
 */
TEST_F(abi, size_u32_max)
{
	int ret;

	memset(self->pages, 0, self->page_size);
	make_arg(self, variant, self->pages, UINT32_MAX);
	ret = ioctl(self->fd, variant->cmd, self->pages);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	check_unchanged(_metadata, self, variant);
}

/* Capacity requests are rounded up to a power of two of at least a page */
FIXTURE(capacity) {
	char name[CBM_NAME_MAX];
	__u64 expect;
};

FIXTURE_VARIANT(capacity) {
	__u64 request;
	__u64 expect;	/* 0: the default_capacity parameter */
};

FIXTURE_VARIANT_ADD(capacity, zero) { .request = 0, .expect = 0 };
FIXTURE_VARIANT_ADD(capacity, one) { .request = 1, .expect = 4096 };
FIXTURE_VARIANT_ADD(capacity, page) { .request = 4096, .expect = 4096 };
FIXTURE_VARIANT_ADD(capacity, page_plus_one) { .request = 4097, .expect = 8192 };
FIXTURE_VARIANT_ADD(capacity, odd) { .request = 100000, .expect = 131072 };

FIXTURE_SETUP(capacity)
{
	long long def;

	conv_name(self->name, "cap");
	self->expect = variant->expect;
	if (!self->expect) {
		ASSERT_EQ(0, param_read("default_capacity", &def));
		self->expect = def;
	}
}

FIXTURE_TEARDOWN(capacity)
{
	unlink_name(self->name);
}

static void check_new_conv(struct __test_metadata *_metadata, int fd,
			   __u64 capacity, __u32 flags)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(capacity, info.capacity);
	EXPECT_EQ(max_payload(capacity), info.max_msg_size);
	EXPECT_EQ(flags, info.flags);
	EXPECT_EQ(0, info.used);
	EXPECT_EQ(0, info.msgs);
	EXPECT_EQ(0, info.first_seq);
	EXPECT_EQ(0, info.next_seq);
	EXPECT_EQ(0, info.evicted);
	EXPECT_EQ(1, info.readers);
	EXPECT_EQ(geteuid(), info.uid);
	EXPECT_EQ(getegid(), info.gid);
	EXPECT_EQ(0, info.__reserved);
}

TEST_F(capacity, named)
{
	struct cbm_info info;
	int fd;

	fd = create_named(self->name, O_RDWR, 0640, 0, variant->request);
	ASSERT_LE(0, fd);
	check_new_conv(_metadata, fd, self->expect, 0);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(0640, info.mode);
	EXPECT_STREQ(self->name, info.name);
	close(fd);
}

TEST_F(capacity, anon)
{
	struct cbm_info info;
	int fd;

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, variant->request));
	check_new_conv(_metadata, fd, self->expect, CBM_CONV_ANON);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_STREQ("", info.name);
	close(fd);
}

/* Malformed names are refused by every call that takes a name */
FIXTURE(bad_name) {
	char raw[CBM_NAME_MAX];
	char good[CBM_NAME_MAX];
	int fd;
};

FIXTURE_VARIANT(bad_name) {
	const char *name;
	bool no_nul;	/* all CBM_NAME_MAX bytes are name characters */
};

FIXTURE_VARIANT_ADD(bad_name, empty) { .name = "" };
FIXTURE_VARIANT_ADD(bad_name, no_nul) { .name = "", .no_nul = true };
FIXTURE_VARIANT_ADD(bad_name, slash) { .name = "a/b" };
FIXTURE_VARIANT_ADD(bad_name, space) { .name = "a b" };
FIXTURE_VARIANT_ADD(bad_name, newline) { .name = "ab\n" };
FIXTURE_VARIANT_ADD(bad_name, star) { .name = "a*" };
FIXTURE_VARIANT_ADD(bad_name, colon) { .name = "a:b" };
FIXTURE_VARIANT_ADD(bad_name, utf8) { .name = "caf\xc3\xa9" };
FIXTURE_VARIANT_ADD(bad_name, leading_dot) { .name = ".a" };
FIXTURE_VARIANT_ADD(bad_name, dot) { .name = "." };
FIXTURE_VARIANT_ADD(bad_name, dotdot) { .name = ".." };
FIXTURE_VARIANT_ADD(bad_name, leading_dash) { .name = "-a" };
/* names are not paths: nothing resolves them against anything */
FIXTURE_VARIANT_ADD(bad_name, parent_path) { .name = "../x" };
FIXTURE_VARIANT_ADD(bad_name, absolute_path) { .name = "/dev/null" };
FIXTURE_VARIANT_ADD(bad_name, default_path) { .name = "default/../x" };

FIXTURE_SETUP(bad_name)
{
	conv_name(self->good, "good");
	memset(self->raw, 0, sizeof(self->raw));
	if (variant->no_nul)
		memset(self->raw, 'a', sizeof(self->raw));
	else
		copy_name(self->raw, variant->name);
	self->fd = cbm_open(O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(bad_name)
{
	close(self->fd);
	unlink_name(self->good);
}

TEST_F(bad_name, create)
{
	int ret;

	ret = bind_raw(self->fd, self->raw, CBM_BIND_CREATE | CBM_BIND_EXCL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	/* the file is still unbound */
	EXPECT_EQ(0, cbm_bind(self->fd, self->good,
			      CBM_BIND_CREATE | CBM_BIND_EXCL, 0600, 0, 0));
}

TEST_F(bad_name, attach)
{
	int ret;

	ret = bind_raw(self->fd, self->raw, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(bad_name, unlink)
{
	int ret;

	ret = unlink_raw(self->fd, self->raw);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
}

/*
 * The first operation that needs a conversation binds an unbound file to
 * "default"; binding it afterwards fails with EBUSY.
 */
enum implicit_op {
	OP_READ, OP_WRITE, OP_POLL, OP_LSEEK, OP_SEND, OP_INFO,
	OP_READER_INFO, OP_FIONREAD, OP_SEND_BATCH, OP_MAP_INFO, OP_RESTORE,
};

FIXTURE(implicit) {
	char name[CBM_NAME_MAX];
	int fd;
};

FIXTURE_VARIANT(implicit) {
	enum implicit_op op;
};

FIXTURE_VARIANT_ADD(implicit, read) { .op = OP_READ };
FIXTURE_VARIANT_ADD(implicit, write) { .op = OP_WRITE };
FIXTURE_VARIANT_ADD(implicit, poll) { .op = OP_POLL };
FIXTURE_VARIANT_ADD(implicit, lseek) { .op = OP_LSEEK };
FIXTURE_VARIANT_ADD(implicit, send) { .op = OP_SEND };
FIXTURE_VARIANT_ADD(implicit, info) { .op = OP_INFO };
FIXTURE_VARIANT_ADD(implicit, reader_info) { .op = OP_READER_INFO };
FIXTURE_VARIANT_ADD(implicit, fionread) { .op = OP_FIONREAD };
FIXTURE_VARIANT_ADD(implicit, send_batch) { .op = OP_SEND_BATCH };
FIXTURE_VARIANT_ADD(implicit, map_info) { .op = OP_MAP_INFO };
FIXTURE_VARIANT_ADD(implicit, restore) { .op = OP_RESTORE };

FIXTURE_SETUP(implicit)
{
	conv_name(self->name, "implicit");
	self->fd = cbm_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(implicit)
{
	close(self->fd);
	unlink_name(self->name);
}

TEST_F(implicit, binds_default)
{
	static union rec_buf buf;
	static const struct cbm_batch_msg msg = {
		.role = CBM_ROLE_USER, .len = 9, .data = (uintptr_t)"implicit\n",
	};
	struct cbm_map_info mi = { .size = sizeof(mi) };
	struct cbm_restore rs = {
		.size = sizeof(rs), .msg_size = sizeof(struct cbm_restore_msg),
	};
	struct cbm_reader_info ri;
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct cbm_info info;
	ssize_t n;
	int ret, avail;

	switch (variant->op) {
	case OP_READ:
		/* default may hold older messages or none */
		n = read(self->fd, buf.bytes, sizeof(buf));
		if (n < 0)
			EXPECT_EQ(EAGAIN, errno);
		break;
	case OP_WRITE:
		EXPECT_EQ(9, write_str(self->fd, "implicit\n"));
		break;
	case OP_POLL:
		EXPECT_LE(0, poll(&pfd, 1, 0));
		break;
	case OP_LSEEK:
		EXPECT_LE(0, lseek(self->fd, 0, SEEK_CUR));
		break;
	case OP_SEND:
		EXPECT_EQ(0, send_msg(self->fd, CBM_ROLE_USER, 0, "implicit\n",
				      9, NULL));
		break;
	case OP_INFO:
		EXPECT_EQ(0, read_info(self->fd, &info));
		break;
	case OP_READER_INFO:
		EXPECT_EQ(0, read_rinfo(self->fd, &ri));
		break;
	case OP_FIONREAD:
		EXPECT_EQ(0, ioctl(self->fd, FIONREAD, &avail));
		break;
	case OP_SEND_BATCH:
		EXPECT_EQ(1, send_batch(self->fd, &msg, 1, NULL));
		break;
	case OP_MAP_INFO:
		EXPECT_EQ(0, ioctl(self->fd, CBM_IOC_MAP_INFO, &mi));
		break;
	case OP_RESTORE:
		/* default is restorable only until something was written */
		if (ioctl(self->fd, CBM_IOC_RESTORE, &rs))
			EXPECT_EQ(EBUSY, errno);
		break;
	}

	ret = cbm_bind(self->fd, self->name, CBM_BIND_CREATE | CBM_BIND_EXCL,
		       0600, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);

	ASSERT_EQ(0, read_info(self->fd, &info));
	EXPECT_STREQ(CBM_DEFAULT_NAME, info.name);
	EXPECT_EQ(CBM_CONV_DEFAULT, info.flags & CBM_CONV_DEFAULT);
}

FIXTURE(bind) {
	char name[CBM_NAME_MAX];
	char name2[CBM_NAME_MAX];
};

FIXTURE_SETUP(bind)
{
	conv_name(self->name, "a");
	conv_name(self->name2, "b");
}

FIXTURE_TEARDOWN(bind)
{
	unlink_name(self->name);
	unlink_name(self->name2);
}

TEST_F(bind, create_then_attach)
{
	struct cbm_info info;
	char buf[16];
	int fd1, fd2;

	fd1 = create_named(self->name, O_RDWR, 0640, 0, 8192);
	ASSERT_LE(0, fd1);
	fd2 = open_named(self->name, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd2);

	ASSERT_EQ(5, write_str(fd1, "hello"));
	ASSERT_EQ(5, read(fd2, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));

	ASSERT_EQ(0, read_info(fd2, &info));
	EXPECT_STREQ(self->name, info.name);
	EXPECT_EQ(8192, info.capacity);
	EXPECT_EQ(0640, info.mode);
	EXPECT_EQ(0, info.uid);
	EXPECT_EQ(0, info.gid);
	EXPECT_EQ(0, info.flags);
	EXPECT_EQ(2, info.readers);
	EXPECT_EQ(1, info.msgs);
	close(fd2);
	close(fd1);
}

TEST_F(bind, create_excl_eexist)
{
	int fd, ret;

	fd = create_named(self->name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, fd);
	ret = create_named(self->name, O_RDWR, 0600, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EEXIST, errno);
	close(fd);
}

/* CREATE without EXCL attaches, ignoring the creation parameters */
TEST_F(bind, create_attaches_existing)
{
	struct cbm_info info;
	char buf[16];
	int fd1, fd2;

	fd1 = create_named(self->name, O_RDWR | O_NONBLOCK, 0600, 0, 8192);
	ASSERT_LE(0, fd1);
	fd2 = cbm_open(O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, cbm_bind(fd2, self->name, CBM_BIND_CREATE, 0644,
			      CBM_CONV_LOSSLESS, 65536));
	ASSERT_EQ(0, read_info(fd2, &info));
	EXPECT_EQ(8192, info.capacity);
	EXPECT_EQ(0600, info.mode);
	EXPECT_EQ(0, info.flags & CBM_CONV_LOSSLESS);

	ASSERT_EQ(3, write_str(fd2, "one"));
	ASSERT_EQ(3, read(fd1, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "one", 3));
	close(fd2);
	close(fd1);
}

TEST_F(bind, attach_missing_enoent)
{
	int fd, ret;

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	ret = cbm_bind(fd, self->name, 0, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	/* the failed attach left the file unbound */
	EXPECT_EQ(0, cbm_bind(fd, self->name, CBM_BIND_CREATE, 0600, 0, 0));
	close(fd);
}

TEST_F(bind, bind_twice_ebusy)
{
	int fd, ret;

	fd = create_named(self->name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, fd);

	ret = cbm_bind(fd, self->name, 0, 0, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);

	ret = cbm_bind(fd, self->name2, CBM_BIND_CREATE, 0600, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	/* and it did not create name2 on the way */
	ret = open_named(self->name2, O_RDWR);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);

	ret = cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	close(fd);
}

/* SET_CONFIG and GET_CONFIG work on an unbound file and do not bind it */
TEST_F(bind, config_does_not_bind)
{
	struct cbm_fd_config cfg;
	int fd;

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_config(fd, CBM_FD_RECORDS, CBM_ROLE_TOOL));
	ASSERT_EQ(0, get_config(fd, &cfg));
	ASSERT_EQ(0, cbm_bind(fd, self->name, CBM_BIND_CREATE | CBM_BIND_EXCL,
			      0600, 0, 0));
	ASSERT_EQ(0, get_config(fd, &cfg));
	EXPECT_EQ(CBM_FD_RECORDS, cfg.flags);
	EXPECT_EQ(CBM_ROLE_TOOL, cfg.role);
	EXPECT_EQ(0, cfg.__reserved);
	close(fd);
}

TEST_F(bind, valid_names)
{
	char names[6][CBM_NAME_MAX];
	struct cbm_info info;
	int i, fd, pid = getpid();

	snprintf(names[0], CBM_NAME_MAX, "%d.a-b_C", pid);
	snprintf(names[1], CBM_NAME_MAX, "_%d", pid);
	snprintf(names[2], CBM_NAME_MAX, "Z%d.", pid);
	snprintf(names[3], CBM_NAME_MAX, "x%d-", pid);
	snprintf(names[4], CBM_NAME_MAX, "y%d..z", pid);
	/* the longest name: CBM_NAME_MAX - 1 characters */
	memset(names[5], 'L', CBM_NAME_MAX - 1);
	names[5][CBM_NAME_MAX - 1] = '\0';
	memcpy(names[5], names[1], strlen(names[1]));

	for (i = 0; i < 6; i++) {
		fd = create_named(names[i], O_RDWR, 0600, 0, 0);
		EXPECT_LE(0, fd) TH_LOG("name '%s'", names[i]);
		if (fd < 0)
			continue;
		EXPECT_EQ(0, read_info(fd, &info));
		EXPECT_STREQ(names[i], info.name);
		EXPECT_EQ(0, unlink_name(names[i]));
		close(fd);
	}
}

/* Impossible flag combinations and unknown bits */
TEST_F(bind, bad_flags_einval)
{
	static const struct {
		__u32 flags, mode, conv_flags;
		bool anon_name;
	} cases[] = {
		{ CBM_BIND_CREATE | (1U << 3), 0600, 0, false },
		{ 1U << 31, 0600, 0, false },
		{ CBM_BIND_EXCL, 0600, 0, false },
		{ CBM_BIND_ANON | CBM_BIND_CREATE, 0600, 0, true },
		{ CBM_BIND_ANON | CBM_BIND_EXCL, 0600, 0, true },
		{ CBM_BIND_ANON, 0600, 0, false },	/* ANON with a name */
		{ CBM_BIND_CREATE, 01000, 0, false },
		{ CBM_BIND_CREATE, 0600, 1U << 1, false },
		{ CBM_BIND_CREATE, 0600, CBM_CONV_ANON, false },
		{ CBM_BIND_CREATE, 0600, CBM_CONV_UNLINKED, false },
		{ CBM_BIND_CREATE, 0600, CBM_CONV_DEFAULT, false },
	};
	unsigned int i;
	int fd, ret;

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *name = self->name;

		if (cases[i].anon_name)
			name = "";
		ret = cbm_bind(fd, name, cases[i].flags, cases[i].mode,
			       cases[i].conv_flags, 0);
		EXPECT_EQ(-1, ret) TH_LOG("case %u", i);
		EXPECT_EQ(EINVAL, errno) TH_LOG("case %u", i);
	}
	/* nothing was created and the file is still unbound */
	ret = open_named(self->name, O_RDWR);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, cbm_bind(fd, self->name, CBM_BIND_CREATE, 0600, 0, 0));
	close(fd);
}

TEST_F(bind, capacity_e2big)
{
	long long max;
	int fd, ret;

	ASSERT_EQ(0, param_read("max_capacity", &max));
	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);

	ret = cbm_bind(fd, self->name, CBM_BIND_CREATE, 0600, 0, max + 1);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	/* rounding up must not wrap around */
	ret = cbm_bind(fd, self->name, CBM_BIND_CREATE, 0600, 0, ~0ULL);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ret = cbm_bind(fd, self->name, CBM_BIND_CREATE, 0600, 0, 1ULL << 63);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);
	ret = cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, max + 1);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(E2BIG, errno);

	ret = open_named(self->name, O_RDWR);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	close(fd);
}

/* Two anonymous conversations are distinct and neither is "default" */
TEST_F(bind, anon_private)
{
	struct cbm_info info, def_before, def_after;
	int fd1, fd2, def;

	def = cbm_open(O_RDONLY);
	ASSERT_LE(0, def);
	ASSERT_EQ(0, read_info(def, &def_before));

	fd1 = cbm_open(O_RDWR);
	fd2 = cbm_open(O_RDWR);
	ASSERT_LE(0, fd1);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, cbm_bind(fd1, "", CBM_BIND_ANON, 0600, 0, 0));
	ASSERT_EQ(0, cbm_bind(fd2, "", CBM_BIND_ANON, 0600, 0, 0));
	ASSERT_EQ(3, write_str(fd1, "one"));

	ASSERT_EQ(0, read_info(fd1, &info));
	EXPECT_EQ(1, info.msgs);
	EXPECT_EQ(CBM_CONV_ANON, info.flags);
	EXPECT_STREQ("", info.name);
	ASSERT_EQ(0, read_info(fd2, &info));
	EXPECT_EQ(0, info.msgs);

	ASSERT_EQ(0, read_info(def, &def_after));
	EXPECT_EQ(def_before.next_seq, def_after.next_seq);
	close(fd2);
	close(fd1);
	close(def);
}

TEST_F(bind, anon_lossless)
{
	struct cbm_info info;
	int fd;

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, cbm_bind(fd, "", CBM_BIND_ANON, 0600, CBM_CONV_LOSSLESS,
			      4096));
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(CBM_CONV_ANON | CBM_CONV_LOSSLESS, info.flags);
	EXPECT_EQ(4096, info.capacity);
	close(fd);
}

/*
 * An anonymous conversation is shared with a child through fork() and lives
 * on after the parent closes its file.
 */
TEST_F_TIMEOUT(bind, anon_survives_parent_close, 15)
{
	int go[2], fd;
	pid_t pid;

	fd = cbm_open(O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, 0));
	ASSERT_EQ(6, write_str(fd, "before"));
	ASSERT_EQ(0, pipe(go));

	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct cbm_info info;
		char buf[16];

		CHILD_CHECK(sync_wait(go[0]) == 0);
		CHILD_CHECK(read(fd, buf, sizeof(buf)) == 6);
		CHILD_CHECK(!memcmp(buf, "before", 6));
		CHILD_CHECK(write_str(fd, "after") == 5);
		CHILD_CHECK(read(fd, buf, sizeof(buf)) == 5);
		CHILD_CHECK(!memcmp(buf, "after", 5));
		CHILD_CHECK(read_info(fd, &info) == 0);
		CHILD_CHECK(info.msgs == 2 && info.flags == CBM_CONV_ANON);
		_exit(0);
	}
	close(fd);
	ASSERT_EQ(0, sync_post(go[1]));
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(bind, default_by_name)
{
	struct cbm_info info;
	int fd, ret;

	fd = open_named(CBM_DEFAULT_NAME, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_STREQ(CBM_DEFAULT_NAME, info.name);
	EXPECT_EQ(CBM_CONV_DEFAULT, info.flags);
	EXPECT_EQ(0, info.uid);
	EXPECT_EQ(0, info.gid);
	close(fd);

	ret = create_named(CBM_DEFAULT_NAME, O_RDWR, 0600, 0, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EEXIST, errno);
}

TEST_F(bind, unlink_errors)
{
	int fd, ctl, ret;

	ctl = cbm_open(O_RDONLY);
	ASSERT_LE(0, ctl);

	ret = unlink_on(ctl, self->name, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);

	ret = unlink_on(ctl, CBM_DEFAULT_NAME, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EBUSY, errno);
	fd = open_named(CBM_DEFAULT_NAME, O_RDONLY);
	EXPECT_LE(0, fd);
	close(fd);

	fd = create_named(self->name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, fd);
	ret = unlink_on(ctl, self->name, 1);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	/* the name survived the refused unlink */
	fd = open_named(self->name, O_RDONLY);
	EXPECT_LE(0, fd);
	close(fd);

	/* UNLINK names a conversation and does not bind the file */
	EXPECT_EQ(0, unlink_on(ctl, self->name, 0));
	EXPECT_EQ(0, cbm_bind(ctl, self->name2, CBM_BIND_CREATE, 0600, 0, 0));
	close(ctl);
}

/* A name reused after unlink is a new conversation; old files keep theirs */
TEST_F(bind, unlink_then_recreate)
{
	struct cbm_info info;
	int old, fd, ret, i;

	old = create_named(self->name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, old);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(3, write_str(old, "msg"));
	ASSERT_EQ(0, unlink_name(self->name));

	ret = open_named(self->name, O_RDWR);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);

	fd = create_named(self->name, O_RDWR, 0600, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	EXPECT_EQ(0, info.next_seq);
	EXPECT_EQ(0, info.msgs);
	EXPECT_EQ(0, info.flags);

	ASSERT_EQ(0, read_info(old, &info));
	EXPECT_EQ(CBM_CONV_UNLINKED, info.flags & CBM_CONV_UNLINKED);
	EXPECT_EQ(3, info.msgs);
	close(fd);
	close(old);
}

TEST(unknown_ioctl_enotty)
{
	static const unsigned long cmds[] = {
		_IO(CBM_IOC_MAGIC, CBM_CMD_RESTORE + 1),
		_IO(CBM_IOC_MAGIC, 0x5f),
		_IO(CBM_IOC_MAGIC, 0x00),
	};
	char arg[256] = { 0 };
	unsigned int i;
	int fd, ret;

	fd = cbm_open(O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		ret = ioctl(fd, cmds[i], arg);
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(ENOTTY, errno) TH_LOG("cmd %#lx", cmds[i]);
	}
	/* shell tools ask whether the device is a terminal */
	EXPECT_EQ(0, isatty(fd));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

TEST_HARNESS_MAIN
