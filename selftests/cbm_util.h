/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the cbm selftests. Helpers that wrap a system call
 * return what it returned, with errno intact, so tests can check errors
 * with EXPECT_EQ(-1, ret); EXPECT_EQ(Exxx, errno);.
 *
 * Helper processes forked by a test must not use the harness's
 * ASSERT/EXPECT (they would run the fixture teardown a second time): they
 * use CHILD_CHECK() and report through their exit status. The helpers
 * that take _metadata are for the test process itself and check with the
 * harness's EXPECT/ASSERT, so this header includes kselftest_harness.h.
 */
#ifndef CBM_UTIL_H
#define CBM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cbm.h>

#include "kselftest_harness.h"

#define CBM_DEV			"/dev/cbm"
/* Bytes up to the end of @member: the size of a struct's first version */
#define struct_end(type, member) \
	(offsetof(type, member) + sizeof(((type *)0)->member))
#define CBM_PARAM_DIR		"/sys/module/cbm/parameters/"

/* Output structs are filled with this before each ioctl */
#define JUNK			0xa5

#define REC_HDR			sizeof(struct cbm_record)

/* Smallest ring the kernel makes; capacities are rounded up to it */
#define MIN_CAPACITY		4096

/* A buffer that holds any record the tests produce (max_msg_size is 64 KiB) */
#define REC_BUF_SIZE		(128 * 1024)

/* The unprivileged identity helper processes switch to */
#define UNPRIV_UID		1000
#define UNPRIV_GID		1000

/*
 * Seconds a helper process may live: a helper stuck in a blocking call is
 * killed by SIGALRM and the test sees a non-zero status instead of hanging.
 */
#define CHILD_TIMEOUT		10

/* Milliseconds to wait for something another process is expected to do */
#define WAIT_MS			5000

union rec_buf {
	struct cbm_record rec;
	unsigned char bytes[REC_BUF_SIZE];
};

#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# %s:%d: helper process: %s failed (errno %d: %s)\n", \
			__FILE__, __LINE__, #cond, errno, strerror(errno)); \
		_exit(1);						\
	}								\
} while (0)

static inline int cbm_open(int flags)
{
	return open(CBM_DEV, flags | O_CLOEXEC);
}

/* The test's pid keeps names unique across tests and leaked conversations */
static inline void conv_name(char name[CBM_NAME_MAX], const char *tag)
{
	snprintf(name, CBM_NAME_MAX, "kst-%d-%s", (int)getpid(), tag);
}

/* Copies a name into a struct's name field, truncating like snprintf() */
static inline void copy_name(char dst[CBM_NAME_MAX], const char *src)
{
	size_t n = strnlen(src, CBM_NAME_MAX - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static inline int cbm_bind(int fd, const char *name, __u32 flags, __u32 mode,
			   __u32 conv_flags, __u64 capacity)
{
	struct cbm_bind b;

	memset(&b, 0, sizeof(b));
	b.size = sizeof(b);
	b.flags = flags;
	b.mode = mode;
	b.conv_flags = conv_flags;
	b.capacity = capacity;
	copy_name(b.name, name);
	return ioctl(fd, CBM_IOC_BIND, &b);
}

/* Closes @fd with errno intact; returns -1, for a helper's error path */
static inline int close_fail(int fd)
{
	int err = errno;

	close(fd);
	errno = err;
	return -1;
}

/* Returns a new file opened with oflags and attached to name, or -1 */
static inline int open_named(const char *name, int oflags)
{
	int fd = cbm_open(oflags);

	if (fd < 0)
		return -1;
	if (cbm_bind(fd, name, 0, 0, 0, 0))
		return close_fail(fd);
	return fd;
}

/* Returns a new file bound to a conversation it just created, or -1 */
static inline int create_named(const char *name, int oflags, __u32 mode,
			       __u32 conv_flags, __u64 capacity)
{
	int fd = cbm_open(oflags);

	if (fd < 0)
		return -1;
	if (cbm_bind(fd, name, CBM_BIND_CREATE | CBM_BIND_EXCL, mode,
		     conv_flags, capacity))
		return close_fail(fd);
	return fd;
}

/* Returns an O_RDWR file bound to a new anonymous conversation, or -1 */
static inline int anon_open(__u64 capacity)
{
	int fd = cbm_open(O_RDWR);

	if (fd < 0)
		return -1;
	if (cbm_bind(fd, "", CBM_BIND_ANON, 0600, 0, capacity))
		return close_fail(fd);
	return fd;
}

static inline int unlink_on(int fd, const char *name, __u32 flags)
{
	struct cbm_unlink u;

	memset(&u, 0, sizeof(u));
	u.size = sizeof(u);
	u.flags = flags;
	copy_name(u.name, name);
	return ioctl(fd, CBM_IOC_UNLINK, &u);
}

/* Unlinks name through a fresh, never bound file */
static inline int unlink_name(const char *name)
{
	int fd = cbm_open(O_RDONLY);
	int ret, err;

	if (fd < 0)
		return -1;
	ret = unlink_on(fd, name, 0);
	err = errno;
	close(fd);
	errno = err;
	return ret;
}

static inline int read_info(int fd, struct cbm_info *info)
{
	memset(info, JUNK, sizeof(*info));
	info->size = sizeof(*info);
	return ioctl(fd, CBM_IOC_INFO, info);
}

static inline int read_rinfo(int fd, struct cbm_reader_info *ri)
{
	memset(ri, JUNK, sizeof(*ri));
	ri->size = sizeof(*ri);
	return ioctl(fd, CBM_IOC_READER_INFO, ri);
}

static inline int set_config(int fd, __u32 flags, __u32 role)
{
	struct cbm_fd_config c;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.flags = flags;
	c.role = role;
	return ioctl(fd, CBM_IOC_SET_CONFIG, &c);
}

/*
 * Returns a new file opened with @oflags that gets the per-file settings
 * @cfg (role user) before it attaches to @name, or -1: a reader from the
 * oldest stored message.
 */
static inline int open_reader(const char *name, int oflags, __u32 cfg)
{
	int fd = cbm_open(oflags);

	if (fd < 0)
		return -1;
	if (set_config(fd, cfg, CBM_ROLE_USER) ||
	    cbm_bind(fd, name, 0, 0, 0, 0))
		return close_fail(fd);
	return fd;
}

static inline int get_config(int fd, struct cbm_fd_config *c)
{
	memset(c, JUNK, sizeof(*c));
	c->size = sizeof(*c);
	return ioctl(fd, CBM_IOC_GET_CONFIG, c);
}

/*
 * CBM_IOC_SEND of a message counting @tokens; stores its sequence number in
 * *seq if not NULL. Returns what ioctl() returned.
 */
static inline int send_tok(int fd, __u32 role, __u32 flags, const void *data,
			   __u32 len, __u32 tokens, __u64 *seq)
{
	struct cbm_send s;
	int ret;

	memset(&s, JUNK, sizeof(s));
	s.size = sizeof(s);
	s.flags = flags;
	s.role = role;
	s.len = len;
	s.data = (uintptr_t)data;
	s.tokens = tokens;
	s.__reserved = 0;
	ret = ioctl(fd, CBM_IOC_SEND, &s);
	if (!ret && seq)
		*seq = s.seq;
	return ret;
}

/* send_tok() of a message of no tokens; returns what ioctl() returned */
static inline int send_msg(int fd, __u32 role, __u32 flags, const void *data,
			   __u32 len, __u64 *seq)
{
	return send_tok(fd, role, flags, data, len, 0, seq);
}

/*
 * CBM_IOC_SEND_BATCH of @count descriptors @msg_size bytes apart at @msgs;
 * stores the first sequence number in *first_seq if not NULL and a message
 * was appended. Returns what ioctl() returned: the messages appended.
 */
static inline int send_batch_sized(int fd, const void *msgs, __u32 count,
				   __u32 msg_size, __u64 *first_seq)
{
	struct cbm_send_batch b;
	int ret;

	memset(&b, JUNK, sizeof(b));
	b.size = sizeof(b);
	b.flags = 0;
	b.msgs = (uintptr_t)msgs;
	b.count = count;
	b.msg_size = msg_size;
	ret = ioctl(fd, CBM_IOC_SEND_BATCH, &b);
	if (ret > 0 && first_seq)
		*first_seq = b.first_seq;
	return ret;
}

/* send_batch_sized() of an array of struct cbm_batch_msg */
static inline int send_batch(int fd, const struct cbm_batch_msg *msgs,
			     __u32 count, __u64 *first_seq)
{
	return send_batch_sized(fd, msgs, count, sizeof(*msgs), first_seq);
}

/* CBM_IOC_SET_WINDOW with these limits; returns what ioctl() returned */
static inline int set_window(int fd, __u32 flags, __u64 max_msgs,
			     __u64 max_bytes, __u64 max_tokens,
			     __u64 max_age_ns)
{
	struct cbm_window w;

	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.flags = flags;
	w.max_msgs = max_msgs;
	w.max_bytes = max_bytes;
	w.max_tokens = max_tokens;
	w.max_age_ns = max_age_ns;
	return ioctl(fd, CBM_IOC_SET_WINDOW, &w);
}

/* CBM_IOC_GET_WINDOW into *w; returns what ioctl() returned */
static inline int get_window(int fd, struct cbm_window *w)
{
	memset(w, JUNK, sizeof(*w));
	w->size = sizeof(*w);
	return ioctl(fd, CBM_IOC_GET_WINDOW, w);
}

/* CBM_IOC_UNPIN of message @seq; returns what ioctl() returned */
static inline int unpin(int fd, __u64 seq, __u32 flags)
{
	struct cbm_pin p;

	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	p.flags = flags;
	p.seq = seq;
	return ioctl(fd, CBM_IOC_UNPIN, &p);
}

/* CBM_IOC_READ_WINDOW of the newest @last (0: all); returns as ioctl() */
static inline int read_window(int fd, void *buf, __u64 len, __u64 last,
			      struct cbm_read_window *rw)
{
	memset(rw, JUNK, sizeof(*rw));
	rw->size = sizeof(*rw);
	rw->flags = 0;
	rw->buf = (uintptr_t)buf;
	rw->len = len;
	rw->last = last;
	return ioctl(fd, CBM_IOC_READ_WINDOW, rw);
}

/* CBM_IOC_SEEK, the new cursor in *cursor; returns what ioctl() returned */
static inline int seek_to(int fd, __u32 whence, __u64 value, __u64 *cursor)
{
	struct cbm_seek s;
	int ret;

	memset(&s, JUNK, sizeof(s));
	s.size = sizeof(s);
	s.whence = whence;
	s.value = value;
	ret = ioctl(fd, CBM_IOC_SEEK, &s);
	if (!ret)
		*cursor = s.cursor;
	return ret;
}

/*
 * CBM_IOC_RESIZE to @capacity; stores what the kernel wrote back in *rs if
 * not NULL. Returns what ioctl() returned.
 */
static inline int resize_to(int fd, __u64 capacity, struct cbm_resize *rs)
{
	struct cbm_resize local;

	if (!rs)
		rs = &local;
	memset(rs, JUNK, sizeof(*rs));
	rs->size = sizeof(*rs);
	rs->flags = 0;
	rs->capacity = capacity;
	return ioctl(fd, CBM_IOC_RESIZE, rs);
}

/* Returns auto-resize settings that are on, with the given marks */
static inline struct cbm_autoresize ar_on(__u64 min, __u64 max,
					  __u32 high_pct, __u32 low_pct,
					  __u32 period_ms)
{
	struct cbm_autoresize ar;

	memset(&ar, 0, sizeof(ar));
	ar.size = sizeof(ar);
	ar.flags = CBM_AUTORESIZE_ON;
	ar.min_capacity = min;
	ar.max_capacity = max;
	ar.high_pct = high_pct;
	ar.low_pct = low_pct;
	ar.period_ms = period_ms;
	return ar;
}

/* CBM_IOC_SET_AUTORESIZE; returns what ioctl() returned */
static inline int set_ar(int fd, const struct cbm_autoresize *ar)
{
	return ioctl(fd, CBM_IOC_SET_AUTORESIZE, ar);
}

/* CBM_IOC_GET_AUTORESIZE into *ar; returns what ioctl() returned */
static inline int get_ar(int fd, struct cbm_autoresize *ar)
{
	memset(ar, JUNK, sizeof(*ar));
	ar->size = sizeof(*ar);
	return ioctl(fd, CBM_IOC_GET_AUTORESIZE, ar);
}

static inline ssize_t write_str(int fd, const char *s)
{
	return write(fd, s, strlen(s));
}

/*
 * Byte @i of the payload of message @tag: the tag's bytes first, then a
 * pattern derived from it, so a reader can tell messages apart and see
 * corruption.
 */
static inline unsigned char payload_byte(__u64 tag, size_t i)
{
	return i < sizeof(tag) ? (unsigned char)(tag >> (8 * i)) :
				 (unsigned char)(tag * 7 + i);
}

static inline bool payload_ok(const unsigned char *buf, size_t len, __u64 tag)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != payload_byte(tag, i))
			return false;
	return true;
}

/* Writes message @tag of @len bytes (at most REC_BUF_SIZE) with write() */
static inline ssize_t write_tagged(int fd, size_t len, __u64 tag)
{
	static unsigned char buf[REC_BUF_SIZE];
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = payload_byte(tag, i);
	return write(fd, buf, len);
}

/*
 * Reads one payload-format message written by write_tagged() with @len
 * bytes. Returns its tag, or -1 with errno set by read() or to EBADMSG if
 * the message has the wrong length or content.
 */
static inline long long read_tag(int fd, size_t len)
{
	static union rec_buf buf;
	ssize_t n;
	__u64 tag = 0;

	n = read(fd, buf.bytes, sizeof(buf));
	if (n < 0)
		return -1;
	memcpy(&tag, buf.bytes, len < sizeof(tag) ? len : sizeof(tag));
	if ((size_t)n != len || !payload_ok(buf.bytes, len, tag)) {
		errno = EBADMSG;
		return -1;
	}
	return tag;
}

/*
 * Reads one record; returns the record's size, or -1 with errno set by
 * read() or to EBADMSG if the header's lengths do not add up.
 */
static inline ssize_t read_record(int fd, union rec_buf *buf)
{
	ssize_t n = read(fd, buf->bytes, sizeof(*buf));

	if (n < 0)
		return -1;
	if ((size_t)n < REC_HDR || buf->rec.hdr_len != REC_HDR ||
	    (size_t)n != buf->rec.hdr_len + buf->rec.len) {
		errno = EBADMSG;
		return -1;
	}
	return n;
}

/* An address no access succeeds at: a PROT_NONE page, mapped once */
static inline void *bad_ptr(void)
{
	static void *page;

	if (!page)
		page = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return page;
}

/* Expects a read() from @fd to fail with EAGAIN: nothing more to read */
static inline void expect_eagain(struct __test_metadata *_metadata, int fd)
{
	char c;
	ssize_t n;

	n = read(fd, &c, 1);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
}

/* Appends messages @from to @to - 1 with write_tagged(), message n tag n */
static inline void write_range(struct __test_metadata *_metadata, int fd,
			       __u32 len, __u64 from, __u64 to)
{
	for (; from < to; from++)
		ASSERT_EQ(len, write_tagged(fd, len, from))
			TH_LOG("message %llu", from);
}

/* Reads payload-format messages @from to @to - 1, then expects the end */
static inline void read_range(struct __test_metadata *_metadata, int fd,
			      __u32 len, __u64 from, __u64 to)
{
	for (; from < to; from++)
		ASSERT_EQ(from, read_tag(fd, len));
	expect_eagain(_metadata, fd);
}

/* The reader state CBM_IOC_READER_INFO must report for @fd */
static inline void expect_rinfo(struct __test_metadata *_metadata, int fd,
				__u64 cursor, __u64 lost, __u64 gap,
				__u64 unread)
{
	struct cbm_reader_info ri;

	ASSERT_EQ(0, read_rinfo(fd, &ri));
	EXPECT_EQ(cursor, ri.cursor);
	EXPECT_EQ(lost, ri.lost);
	EXPECT_EQ(gap, ri.gap);
	EXPECT_EQ(unread, ri.unread);
}

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Reads a small file into @buf as a string; returns its length, or -1 */
static inline ssize_t read_all(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Reads a small sysfs or procfs file into @buf; returns 0, or -1 if empty */
static inline int read_text(const char *path, char *buf, size_t size)
{
	return read_all(path, buf, size) > 0 ? 0 : -1;
}

/* Reads a decimal or 0-prefixed octal value from a sysfs or procfs file */
static inline int read_num(const char *path, long long *val)
{
	char buf[64];

	if (read_text(path, buf, sizeof(buf)))
		return -1;
	*val = strtoll(buf, NULL, 0);
	return 0;
}

static inline int param_read(const char *param, long long *val)
{
	char path[128];

	snprintf(path, sizeof(path), CBM_PARAM_DIR "%s", param);
	return read_num(path, val);
}

/* Writes @val to a sysfs, procfs or debugfs file in one write() */
static inline int write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, err;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, val, len);
	err = errno;
	close(fd);
	errno = err;
	return n == (ssize_t)len ? 0 : -1;
}

static inline int param_write(const char *param, long long val)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), CBM_PARAM_DIR "%s", param);
	snprintf(buf, sizeof(buf), "%lld\n", val);
	return write_file(path, buf);
}

/*
 * Largest payload a conversation of @capacity accepts: the max_msg_size
 * parameter, or what one record filling the whole ring can carry.
 */
static inline __u64 max_payload(__u64 capacity)
{
	long long param;

	if (param_read("max_msg_size", &param))
		return 0;
	return (__u64)param < capacity - REC_HDR ? (__u64)param :
						   capacity - REC_HDR;
}

/* fork() for helper processes: the child is bounded by CHILD_TIMEOUT */
static inline pid_t fork_child(void)
{
	pid_t pid = fork();

	if (pid == 0)
		alarm(CHILD_TIMEOUT);
	return pid;
}

/*
 * fork() for helper processes that run longer than CHILD_TIMEOUT: the child
 * dies with the process that forked it and is killed by SIGALRM after
 * @secs, so a helper stuck in the kernel shows up as a failure, not a hang.
 */
static inline pid_t fork_worker(unsigned int secs)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		/* the parent may have died before prctl() took effect */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		alarm(secs);
	}
	return pid;
}

/* Returns the helper's exit status, 128 + signal if it was killed, or -1 */
static inline int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* Drops every privilege: no supplementary groups, then gid, then uid */
static inline int drop_privs(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) || setresgid(gid, gid, gid))
		return -1;
	return setresuid(uid, uid, uid);
}

/*
 * Switches the effective ids only, to act as someone else; the saved uid
 * stays root, so become_root() can switch back. Returns 0 or -1.
 */
static inline int become(uid_t euid, gid_t egid)
{
	if (setresgid(-1, egid, -1))
		return -1;
	return setresuid(-1, euid, -1);
}

/* Gets root's effective ids and capabilities back; returns 0 or -1 */
static inline int become_root(void)
{
	if (setresuid(-1, 0, -1))
		return -1;
	return setresgid(-1, 0, -1);
}

/*
 * Runs @fn(@name) in a helper as @uid:@gid; returns its exit status, 0 if
 * @fn returns.
 */
static inline int run_as(uid_t uid, gid_t gid, void (*fn)(const char *name),
			 const char *name)
{
	pid_t pid = fork_child();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		CHILD_CHECK(drop_privs(uid, gid) == 0);
		fn(name);
		_exit(0);
	}
	return wait_child(pid);
}

/* run_as() UNPRIV_UID:UNPRIV_GID; returns the helper's exit status */
static inline int run_unpriv(void (*fn)(const char *name), const char *name)
{
	return run_as(UNPRIV_UID, UNPRIV_GID, fn, name);
}

/* One byte through a pipe: "I am ready" / "go on" between processes */
static inline int sync_post(int fd)
{
	return write(fd, "x", 1) == 1 ? 0 : -1;
}

static inline int sync_wait(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, WAIT_MS) != 1)
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/*
 * Waits until @pid sleeps in the kernel (state S in /proc/<pid>/stat), so a
 * test knows a helper that posted "ready" has reached its blocking call.
 */
static inline int wait_sleeping(pid_t pid)
{
	char path[64], buf[512], *p;
	int tries;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (tries = 0; tries < WAIT_MS / 10; tries++) {
		if (read_text(path, buf, sizeof(buf)))
			return -1;
		/* the state follows the command name, which may contain ')' */
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return 0;
		usleep(10000);
	}
	return -1;
}

/*
 * The readers of the tests that load a conversation from several processes:
 * blocking record reads; non-blocking record reads sized by FIONREAD after
 * poll(); blocking payload reads, which learn about losses from EPIPE and,
 * in a lossless conversation, opt out with CBM_FD_LOSSY.
 */
enum reader_kind { RD_RECORD, RD_RECORD_POLL, RD_PAYLOAD, READERS };

/* Returns the name of reader @kind, for messages */
static inline const char *reader_name(enum reader_kind kind)
{
	static const char *const names[READERS] = {
		"record", "record-poll", "payload",
	};

	return names[kind];
}

/*
 * In a helper process: opens a reader of @kind on @name, checks that it is
 * lossless exactly if @lossless, then posts on @ready. Returns the file;
 * the helper exits on any failure.
 */
static inline int start_reader(const char *name, enum reader_kind kind,
			       bool lossless, int ready)
{
	struct cbm_reader_info ri;
	int fd;

	fd = open_reader(name,
			 O_RDONLY | (kind == RD_RECORD_POLL ? O_NONBLOCK : 0),
			 kind == RD_PAYLOAD ? CBM_FD_LOSSY : CBM_FD_RECORDS);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(read_rinfo(fd, &ri) == 0);
	CHILD_CHECK(!!(ri.flags & CBM_READER_LOSSLESS) == lossless);
	CHILD_CHECK(sync_post(ready) == 0);
	return fd;
}

static inline int catch_signal(int sig, int sa_flags, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = sa_flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

/*
 * Forks a helper that sends @sig to this process once it sleeps in the
 * kernel, so the signal lands in the blocking call the test makes next.
 */
static inline pid_t signal_when_sleeping(int sig)
{
	pid_t parent = getpid();
	pid_t pid;

	pid = fork_child();
	if (pid)
		return pid;
	CHILD_CHECK(wait_sleeping(parent) == 0);
	CHILD_CHECK(kill(parent, sig) == 0);
	_exit(0);
}

/* Returns CLOCK_MONOTONIC in nanoseconds */
static inline __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Returns CLOCK_MONOTONIC in milliseconds */
static inline __u64 mono_ms(void)
{
	return mono_ns() / 1000000;
}

/* Sleeps @ms milliseconds, however many signals come meanwhile */
static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* poll() for @events; returns the events reported, 0 for none, or -1 */
static inline int poll_events(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n = poll(&pfd, 1, timeout_ms);

	if (n <= 0)
		return n;
	return pfd.revents;
}

/*
 * Seconds from the environment variable @name (the harness exports
 * CBM_STRESS_SECS and CBM_FUZZ_SECS), @def if it is unset or not a
 * positive number. The bound leaves callers room to add slack for alarm().
 */
static inline unsigned int env_secs(const char *name, unsigned int def)
{
	const char *s = getenv(name);
	unsigned long v;
	char *end;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !v || v > UINT32_MAX / 2)
		return def;
	return v;
}

/* The splitmix64 finalizer: a well-mixed hash of a 64-bit value */
static inline __u64 mix64(__u64 x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* splitmix64: seeded, fast and reproducible, which is all tests need */
static inline __u64 rng_next(__u64 *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

/* A number below @n (not 0); the tiny modulo bias does not matter here */
static inline __u64 rng_below(__u64 *state, __u64 n)
{
	return rng_next(state) % n;
}

#endif /* CBM_UTIL_H */
