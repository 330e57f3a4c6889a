/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the cbm selftests. Helpers that wrap a system call
 * return what it returned, with errno intact, so tests can check errors
 * with EXPECT_EQ(-1, ret); EXPECT_EQ(Exxx, errno);.
 *
 * Helper processes forked by a test must not use the harness's
 * ASSERT/EXPECT (they would run the fixture teardown a second time): they
 * use CHILD_CHECK() and report through their exit status.
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

/* Returns a new file opened with oflags and attached to name, or -1 */
static inline int open_named(const char *name, int oflags)
{
	int fd = cbm_open(oflags);
	int err;

	if (fd < 0)
		return -1;
	if (cbm_bind(fd, name, 0, 0, 0, 0)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Returns a new file bound to a conversation it just created, or -1 */
static inline int create_named(const char *name, int oflags, __u32 mode,
			       __u32 conv_flags, __u64 capacity)
{
	int fd = cbm_open(oflags);
	int err;

	if (fd < 0)
		return -1;
	if (cbm_bind(fd, name, CBM_BIND_CREATE | CBM_BIND_EXCL, mode,
		     conv_flags, capacity)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
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

static inline int get_config(int fd, struct cbm_fd_config *c)
{
	memset(c, JUNK, sizeof(*c));
	c->size = sizeof(*c);
	return ioctl(fd, CBM_IOC_GET_CONFIG, c);
}

/* CBM_IOC_SEND; stores the message's sequence number in *seq if not NULL */
static inline int send_msg(int fd, __u32 role, __u32 flags, const void *data,
			   __u32 len, __u64 *seq)
{
	struct cbm_send s;
	int ret;

	memset(&s, JUNK, sizeof(s));
	s.size = sizeof(s);
	s.flags = flags;
	s.role = role;
	s.len = len;
	s.data = (uintptr_t)data;
	s.tokens = 0;
	s.__reserved = 0;
	ret = ioctl(fd, CBM_IOC_SEND, &s);
	if (!ret && seq)
		*seq = s.seq;
	return ret;
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

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Reads a small sysfs or procfs file into @buf as a string */
static inline int read_text(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
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
 * Runs @fn(@name) in a helper as UNPRIV_UID:UNPRIV_GID; returns its exit
 * status, 0 if @fn returns.
 */
static inline int run_unpriv(void (*fn)(const char *name), const char *name)
{
	pid_t pid = fork_child();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		CHILD_CHECK(drop_privs(UNPRIV_UID, UNPRIV_GID) == 0);
		fn(name);
		_exit(0);
	}
	return wait_child(pid);
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

static inline __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
