// SPDX-License-Identifier: GPL-2.0
/*
 * cbm fuzz: several processes make random system calls on /dev/cbm files
 * for CBM_FUZZ_SECS seconds (default FUZZ_SECS): open, close, dup, every
 * ioctl with random sizes, flags, names and pointers (NULL, unmapped,
 * kernel, non-canonical, straddling a guard page), batches of random
 * descriptors, random ioctl numbers, read, readv, write, writev, lseek,
 * poll, epoll and fcntl, on files they share (inherited before fork(), so
 * one file description in many processes) and on a small pool of names;
 * one process runs as an unprivileged user. Mappings of random lengths,
 * offsets and protections are made, read, split by unmapping and
 * protecting parts of them, shrunk and grown with mremap() while the
 * conversations under them are written, resized, unlinked and freed.
 * Windows (small limits, ages of a few milliseconds), pinned messages,
 * resizes and auto-resizes with short periods change the conversations
 * under the other processes' reads, writes and mappings. A timer
 * interrupts blocking calls with a signal, so nothing can block for long.
 * Random generic netlink requests (good and malformed) go to the "cbm"
 * family meanwhile, and one worker listens to its events.
 *
 * Each call must return a value that makes sense for it or fail with an
 * errno the ABI documents for that call (the tables below); any other
 * result fails the test, as does a process that hangs. The kernel log is
 * the harness's to check: an oops, a sanitizer report or a warning fails
 * the run there.
 *
 * The seed is printed; CBM_FUZZ_SEED=N replays a run (as far as the
 * scheduler allows: the processes race on purpose).
 */
#include <limits.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

#define FUZZ_SECS	10
#define WORKERS		4
/* The worker that runs as UNPRIV_UID */
#define UNPRIV_WORKER	(WORKERS - 1)
/* Seconds a worker may overrun its deadline before it counts as hung */
#define FUZZ_SLACK	60
#define FUZZ_HARNESS_TIMEOUT	(7 * 24 * 3600)

/* File slots per worker; the first SHARED_FDS are inherited from the parent */
#define SLOTS		16
#define SHARED_FDS	4
/* Names in the pool the workers create, attach to and unlink */
#define POOL		6

/* Limits during the run, so that memory use stays small */
#define FUZZ_MAX_CAPACITY	(256 * 1024)

/* Blocking calls are interrupted this often */
#define INTERRUPT_MS	20

/* Addresses no process can touch */
#define KERNEL_ADDR	0xffff888000000000ULL
#define NONCANON_ADDR	0xdead000000000000ULL

/* Pages of the buffer area; the last one is PROT_NONE */
#define ARENA_PAGES	3

/*
 * Bytes of the CBM_IOC_READ_WINDOW buffer, followed by a PROT_NONE page:
 * more than a ring of FUZZ_MAX_CAPACITY and max_pinned bytes of pins hold
 */
#define WBUF_SIZE	(512 * 1024)

/* Sequence numbers of the last pinned messages a worker sent */
#define PINS		8

/* Descriptors of a batch: at most BATCH_DESCS, BATCH_STRIDE bytes apart */
#define BATCH_DESCS	16
#define BATCH_STRIDE	64

/* Mappings of /dev/cbm files a worker holds at once */
#define MAPS		4

#define ERRS(...)	((const int []){ __VA_ARGS__, 0 })

struct fuzz {
	__u64 seed;
	unsigned int secs;
	char pool[POOL][CBM_NAME_MAX];
	int shared[SHARED_FDS];
	__u64 *ops;		/* shared: calls each worker made */
	__u64 max_pinned;	/* the max_pinned parameter, never changed */
	__u64 default_capacity;	/* the default_capacity parameter */
};

/*
 * A mapping of a /dev/cbm file, @len bytes at @addr, all of them the
 * worker's until it unmaps the whole: a part it unmaps is replaced by an
 * anonymous PROT_NONE mapping, so that nothing else can be mapped there
 * (which the worker would then read, protect or unmap as its own).
 * @holes: some parts were replaced; the rest is no longer read, and
 * mprotect() or mremap() of it may act on those parts
 * @mixed: parts have different protections; it is no longer read
 */
struct mapping {
	unsigned char *addr;	/* NULL for none */
	size_t len;
	bool readable;
	bool holes;
	bool mixed;
};

/* One worker's state */
struct worker {
	int id;
	bool unpriv;
	__u64 rng;
	__u64 n;		/* calls made */
	const struct fuzz *fz;
	int fds[SLOTS];
	int epfd;
	unsigned char *arena;	/* ARENA_PAGES, the last one PROT_NONE */
	unsigned char *ro;	/* a read-only page */
	unsigned char *wbuf;	/* WBUF_SIZE, then a PROT_NONE page */
	__u64 pins[PINS];	/* see do_unpin() */
	unsigned int npins;	/* pinned messages sent */
	struct mapping maps[MAPS];
	size_t page;
	bool dirty;		/* see mess() */
	char what[256];		/* the call being made, for the report */
	struct nl_sock *nl;	/* requests to the netlink family */
	int family;		/* its id */
	struct nl_sock *events;	/* worker 0: the events group, or NULL */
};

static void on_interrupt(int sig)
{
	(void)sig;
}

static __u64 rnd(struct worker *w, __u64 n)
{
	return rng_below(&w->rng, n);
}

static bool one_in(struct worker *w, __u64 n)
{
	return rnd(w, n) == 0;
}

static __u64 pick(struct worker *w, const __u64 *vals, size_t n)
{
	return vals[rnd(w, n)];
}

#define PICK(w, ...) ({							\
	static const __u64 __vals[] = { __VA_ARGS__ };			\
	pick(w, __vals, ARRAY_SIZE(__vals));				\
})

/*
 * A clean call gets valid arguments only, so that it reaches deep into the
 * module; in a dirty one each argument goes bad with probability 1/3.
 */
static bool mess(struct worker *w)
{
	return w->dirty && one_in(w, 3);
}

/* One of @valid, or when messing, one of @bad or any 32-bit value */
#define CHOOSE(w, valid, bad)						\
	(!mess(w) ? (__u32)PICK(w, ESC valid) :				\
	 one_in(w, 2) ? (__u32)rnd(w, 1ULL << 32) : (__u32)PICK(w, ESC bad))
#define ESC(...)	__VA_ARGS__

static bool errno_in(int err, const int *errs)
{
	for (; *errs; errs++)
		if (*errs == err)
			return true;
	return false;
}

/*
 * Checks a call's result: success (ret >= 0) or an allowed errno. Only the
 * unprivileged worker may see EACCES or EPERM: root passes every
 * permission check (CAP_DAC_OVERRIDE, CAP_SYS_ADMIN).
 */
static void check(struct worker *w, long ret, const int *errs)
{
	int err = errno;

	if (ret >= 0 ||
	    (errno_in(err, errs) &&
	     ((err != EACCES && err != EPERM) || w->unpriv)))
		return;
	fprintf(stderr,
		"# worker %d, call %llu (seed %llu): %s: returned %ld, errno %d (%s)\n",
		w->id, (unsigned long long)w->n,
		(unsigned long long)w->fz->seed, w->what, ret, err,
		strerror(err));
	_exit(1);
}

static void __attribute__((noreturn)) bad_result(struct worker *w,
						  const char *why)
{
	fprintf(stderr, "# worker %d, call %llu (seed %llu): %s: %s\n",
		w->id, (unsigned long long)w->n,
		(unsigned long long)w->fz->seed, w->what, why);
	_exit(1);
}

#define describe(w, ...) snprintf((w)->what, sizeof((w)->what), __VA_ARGS__)

/* A random slot; -1 in it means empty */
static int *slot(struct worker *w)
{
	return &w->fds[rnd(w, SLOTS)];
}

/* An open file to act on; a new one when every slot is empty */
static int some_fd(struct worker *w)
{
	unsigned int start = rnd(w, SLOTS), i;
	int fd;

	for (i = 0; i < SLOTS; i++) {
		fd = w->fds[(start + i) % SLOTS];
		if (fd >= 0)
			return fd;
	}
	w->fds[0] = cbm_open(O_RDWR | O_NONBLOCK);
	CHILD_CHECK(w->fds[0] >= 0);
	return w->fds[0];
}

/* Bytes of the arena writable from @p on, 0 if @p is not in it */
static size_t arena_room(const struct worker *w, const void *p)
{
	uintptr_t a = (uintptr_t)w->arena, q = (uintptr_t)p;
	size_t room = (ARENA_PAGES - 1) * w->page;

	return q >= a && q < a + room ? a + room - q : 0;
}

/*
 * A pointer for the kernel to read or write @len bytes at: inside the
 * arena, or when messing, running into its PROT_NONE page or somewhere no
 * access succeeds.
 */
static void *some_ptr(struct worker *w, size_t len)
{
	size_t room = (ARENA_PAGES - 1) * w->page;

	if (!mess(w))
		return w->arena + (len < room ? rnd(w, room - len + 1) : 0);
	switch (rnd(w, 6)) {
	case 0:
		return NULL;
	case 1:
		return bad_ptr();
	case 2:
		return (void *)(uintptr_t)KERNEL_ADDR;
	case 3:
		return (void *)(uintptr_t)NONCANON_ADDR;
	case 4:
		return w->ro;
	default:
		/* ends in the guard page */
		return w->arena + room - (len < room ? len : room) +
		       1 + rnd(w, 64);
	}
}

static void fill_random(struct worker *w, unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = rnd(w, 256);
}

/* A payload length; the valid ones fit a MIN_CAPACITY ring */
static __u32 some_len(struct worker *w)
{
	if (!mess(w))
		return one_in(w, 2) ? rnd(w, 512) :
		       PICK(w, 0, 1, 7, 47, 48, 100, 4000, 4047, 4048);
	return CHOOSE(w, (4049), (65535, 65536, 65537, 1 << 20, 0x7fffffff,
				 0xffffffff));
}

static void some_name(struct worker *w, char name[CBM_NAME_MAX])
{
	memset(name, 0, CBM_NAME_MAX);
	if (!mess(w)) {
		if (one_in(w, 8))
			strcpy(name, CBM_DEFAULT_NAME);
		else
			copy_name(name, w->fz->pool[rnd(w, POOL)]);
		return;
	}
	switch (rnd(w, 4)) {
	case 0:
		break;
	case 1:
		fill_random(w, (unsigned char *)name, CBM_NAME_MAX);
		break;
	case 2:
		memset(name, 'a', CBM_NAME_MAX - rnd(w, 2));
		break;
	default:
		strcpy(name, "../x");
		break;
	}
}

/* The size field of an ioctl struct whose real size is @size */
static __u32 some_size(struct worker *w, __u32 size)
{
	if (!mess(w))
		return size;
	switch (rnd(w, 6)) {
	case 0:
		return 0;
	case 1:
		return rnd(w, size);
	case 2:
		return size + 8;
	case 3:
		return size + rnd(w, 4096);
	case 4:
		return 0xffffffff;
	default:
		return rnd(w, 1ULL << 32);
	}
}

/*
 * Puts an ioctl argument of @size bytes (built in @arg, its size field
 * set by the caller) at a random place; a bigger claimed size gets a zero
 * tail, or a random one. Returns the pointer to pass.
 */
static void *place_arg(struct worker *w, const void *arg, size_t size,
		       __u32 usize)
{
	unsigned char *p = some_ptr(w, size);
	size_t room = arena_room(w, p);
	size_t tail = usize > size ? usize - size : 0;

	if (!room)
		return p;
	if (size >= room) {
		memcpy(p, arg, room);
		return p;
	}
	memcpy(p, arg, size);
	if (tail > room - size)
		tail = room - size;
	if (mess(w))
		fill_random(w, p + size, tail);
	else
		memset(p + size, 0, tail);
	/* a bit flipped somewhere */
	if (mess(w))
		p[rnd(w, size)] ^= 1 << rnd(w, 8);
	return p;
}

static const int bind_errs[] = {
	EINVAL, E2BIG, EFAULT, EBUSY, EEXIST, ENOENT, EACCES, ENOSPC, ENOMEM, 0
};

static void do_bind(struct worker *w)
{
	struct cbm_bind b;
	int fd = some_fd(w);
	void *p;

	memset(&b, 0, sizeof(b));
	b.flags = CHOOSE(w, (0, CBM_BIND_CREATE, CBM_BIND_CREATE |
			    CBM_BIND_EXCL, CBM_BIND_ANON),
			 (CBM_BIND_EXCL, CBM_BIND_ANON | CBM_BIND_CREATE,
			  1U << 31));
	b.mode = CHOOSE(w, (0600, 0666, 0, 0777, 0644), (01000));
	b.conv_flags = CHOOSE(w, (0, CBM_CONV_LOSSLESS), (CBM_CONV_ANON, 2));
	if (mess(w))
		b.capacity = PICK(w, FUZZ_MAX_CAPACITY + 1, 1ULL << 63, ~0ULL);
	else if (one_in(w, 4))
		b.capacity = rnd(w, 1 << 16);
	else
		b.capacity = PICK(w, 0, 1, 4096, 8192, 65536,
				  FUZZ_MAX_CAPACITY);
	if (b.flags == CBM_BIND_ANON && one_in(w, 2))
		memset(b.name, 0, sizeof(b.name));
	else
		some_name(w, b.name);
	b.size = some_size(w, sizeof(b));
	p = place_arg(w, &b, sizeof(b), b.size);
	describe(w, "BIND fd %d size %u flags %#x mode %#o conv_flags %#x capacity %#llx name '%.*s' arg %p",
		 fd, b.size, b.flags, b.mode, b.conv_flags,
		 (unsigned long long)b.capacity, CBM_NAME_MAX, b.name, p);
	check(w, ioctl(fd, CBM_IOC_BIND, p), bind_errs);
}

static const int unlink_errs[] = {
	EINVAL, E2BIG, EFAULT, ENOENT, EBUSY, EACCES, 0
};

static void do_unlink(struct worker *w)
{
	struct cbm_unlink u;
	int fd = some_fd(w);
	void *p;

	memset(&u, 0, sizeof(u));
	u.flags = CHOOSE(w, (0), (1));
	some_name(w, u.name);
	u.size = some_size(w, sizeof(u));
	p = place_arg(w, &u, sizeof(u), u.size);
	describe(w, "UNLINK fd %d size %u flags %#x name '%.*s' arg %p", fd,
		 u.size, u.flags, CBM_NAME_MAX, u.name, p);
	check(w, ioctl(fd, CBM_IOC_UNLINK, p), unlink_errs);
}

/* EBADF comes from files opened the other way round */
static const int write_errs[] = {
	EBADF, EFAULT, EMSGSIZE, EAGAIN, EINTR, EPIPE, EACCES, 0
};

static const int send_errs[] = {
	EINVAL, E2BIG, EFAULT, EBADF, EMSGSIZE, EAGAIN, EINTR, EPIPE, EACCES,
	ENOSPC, ENOMEM, 0
};

static void do_send(struct worker *w)
{
	struct cbm_send s;
	int fd = some_fd(w);
	void *p;
	int ret;

	memset(&s, 0, sizeof(s));
	s.flags = CHOOSE(w, (0, CBM_MSG_APP_MASK, 0xabcd0000, CBM_MSG_PINNED,
			     CBM_MSG_PINNED | 0xabcd0000),
			 (2, 0x8000, CBM_MSG_PINNED | 0x8000));
	s.role = CHOOSE(w, (CBM_ROLE_OTHER, CBM_ROLE_SYSTEM, CBM_ROLE_USER,
			    CBM_ROLE_ASSISTANT, CBM_ROLE_TOOL),
			(__CBM_ROLE_MAX));
	s.len = some_len(w);
	s.data = (uintptr_t)some_ptr(w, s.len);
	s.seq = rnd(w, 1ULL << 32);
	/* the kernel never checks a token count against the payload */
	s.tokens = one_in(w, 4) ? 0 : one_in(w, 8) ? rnd(w, 1ULL << 32) :
		   rnd(w, 64);
	s.__reserved = CHOOSE(w, (0), (1));
	s.size = some_size(w, sizeof(s));
	p = place_arg(w, &s, sizeof(s), s.size);
	describe(w, "SEND fd %d size %u flags %#x role %u len %u tokens %u reserved %u data %#llx arg %p",
		 fd, s.size, s.flags, s.role, s.len, s.tokens, s.__reserved,
		 (unsigned long long)s.data, p);
	ret = ioctl(fd, CBM_IOC_SEND, p);
	check(w, ret, send_errs);
	if (ret || arena_room(w, p) < sizeof(s))
		return;
	/* as the kernel saw it, flipped bit included */
	memcpy(&s, p, sizeof(s));
	/* a pinned message to unpin later: do_unpin() */
	if (s.flags & CBM_MSG_PINNED)
		w->pins[w->npins++ % PINS] = s.seq;
}

/*
 * A batch: descriptors with the fields do_send() picks, at the end of the
 * window buffer (the last ones may run into its guard page), a random
 * count and descriptor size, tails zero or not.
 */
static void do_send_batch(struct worker *w)
{
	unsigned char *descs = w->wbuf + WBUF_SIZE -
			       BATCH_DESCS * BATCH_STRIDE;
	struct cbm_batch_msg m;
	struct cbm_send_batch b;
	struct cbm_info info;
	unsigned int i, n;
	int fd = some_fd(w);
	__u32 count, msg_size;
	void *p;
	int ret;

	/* mostly short batches of short messages, which windows admit */
	n = one_in(w, 4) ? rnd(w, 3) :
	    1 + rnd(w, one_in(w, 2) ? 4 : BATCH_DESCS);
	if (!mess(w))
		msg_size = PICK(w, sizeof(m), sizeof(m), sizeof(m) + 8,
				BATCH_STRIDE);
	else if (one_in(w, 4))
		msg_size = rnd(w, 1ULL << 32);
	else
		msg_size = PICK(w, 0, 8, 16, sizeof(m) - 1, sizeof(m) + 1,
				BATCH_STRIDE + 8, 1 << 20);
	count = n;
	if (mess(w))
		count = PICK(w, BATCH_DESCS + 1, CBM_BATCH_MAX,
			     CBM_BATCH_MAX + 1, UINT32_MAX);
	memset(descs, 0, BATCH_DESCS * BATCH_STRIDE);
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		/* few pinned: max_pinned would refuse most batches */
		m.flags = CHOOSE(w, (0, 0, 0xabcd0000, CBM_MSG_PINNED | 0x10000),
				 (2, 0x8000, CBM_MSG_PINNED | 0x8000));
		m.role = CHOOSE(w, (CBM_ROLE_OTHER, CBM_ROLE_SYSTEM,
				    CBM_ROLE_USER, CBM_ROLE_ASSISTANT,
				    CBM_ROLE_TOOL), (__CBM_ROLE_MAX));
		m.len = one_in(w, 2) ? rnd(w, 64) : some_len(w);
		m.data = (uintptr_t)some_ptr(w, m.len);
		m.tokens = one_in(w, 4) ? 0 : rnd(w, 64);
		memcpy(descs + i * BATCH_STRIDE, &m, sizeof(m));
		if (mess(w))
			descs[i * BATCH_STRIDE + sizeof(m) +
			      rnd(w, BATCH_STRIDE - sizeof(m))] = 1;
	}
	/* the descriptors as the kernel reads them, msg_size bytes apart */
	if (msg_size != BATCH_STRIDE && msg_size <= BATCH_STRIDE)
		for (i = 1; i < n; i++)
			memmove(descs + i * msg_size, descs + i * BATCH_STRIDE,
				msg_size);

	memset(&b, 0, sizeof(b));
	b.flags = CHOOSE(w, (0), (1, 1U << 31));
	b.msgs = one_in(w, 8) ? (uintptr_t)some_ptr(w, sizeof(m)) :
		 (uintptr_t)descs;
	b.count = count;
	b.msg_size = msg_size;
	b.first_seq = rng_next(&w->rng);
	b.size = some_size(w, sizeof(b));
	p = place_arg(w, &b, sizeof(b), b.size);
	describe(w, "SEND_BATCH fd %d size %u flags %#x msgs %#llx count %u msg_size %u arg %p",
		 fd, b.size, b.flags, (unsigned long long)b.msgs, b.count,
		 b.msg_size, p);
	ret = ioctl(fd, CBM_IOC_SEND_BATCH, p);
	check(w, ret, send_errs);
	if (ret < 0)
		return;
	if (arena_room(w, p) < sizeof(b))
		bad_result(w, "succeeded on memory it cannot have read");
	/* as the kernel saw it, flipped bit included */
	memcpy(&b, p, sizeof(b));
	if ((__u32)ret > b.count || !ret != !b.count)
		bad_result(w, "SEND_BATCH returned a count it was not given");
	if (!ret)
		return;
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	/* next_seq only grows, so it is still after the batch */
	if (!ioctl(fd, CBM_IOC_INFO, &info) &&
	    b.first_seq + ret > info.next_seq)
		bad_result(w, "SEND_BATCH first_seq after the newest message");
	if (b.msgs != (uintptr_t)descs || b.msg_size > BATCH_STRIDE)
		return;
	/* pinned messages to unpin later: do_unpin() */
	for (i = 0; i < (unsigned int)ret; i++) {
		memcpy(&m, descs + i * b.msg_size, sizeof(m));
		if (m.flags & CBM_MSG_PINNED)
			w->pins[w->npins++ % PINS] = b.first_seq + i;
	}
}

static void do_set_config(struct worker *w)
{
	struct cbm_fd_config c;
	int fd = some_fd(w);
	void *p;

	memset(&c, 0, sizeof(c));
	c.flags = CHOOSE(w, (0, CBM_FD_RECORDS, CBM_FD_LOSSY,
			     CBM_FD_RECORDS | CBM_FD_LOSSY), (4));
	c.role = CHOOSE(w, (CBM_ROLE_USER, CBM_ROLE_TOOL), (__CBM_ROLE_MAX));
	c.__reserved = CHOOSE(w, (0), (1));
	c.size = some_size(w, sizeof(c));
	p = place_arg(w, &c, sizeof(c), c.size);
	describe(w, "SET_CONFIG fd %d size %u flags %#x role %u reserved %u arg %p",
		 fd, c.size, c.flags, c.role, c.__reserved, p);
	check(w, ioctl(fd, CBM_IOC_SET_CONFIG, p), ERRS(EINVAL, E2BIG, EFAULT));
}

/* The tail beyond what the kernel knows must come back zeroed */
static void check_tail(struct worker *w, const unsigned char *p, size_t size,
		       __u32 usize)
{
	size_t i;

	for (i = size; i < usize; i++)
		if (p[i])
			bad_result(w, "unknown tail not zeroed");
}

/* Invariants of a conversation's state as CBM_IOC_INFO reports it */
static void check_info(struct worker *w, const struct cbm_info *info)
{
	if (info->capacity < MIN_CAPACITY ||
	    (info->capacity & (info->capacity - 1)))
		bad_result(w, "capacity not a power of two of at least a page");
	if (info->used > info->capacity)
		bad_result(w, "used above capacity");
	/* Pinned copies may outlive the ring: stored messages can have holes */
	if (info->first_seq > info->next_seq ||
	    info->msgs > info->next_seq - info->first_seq ||
	    info->pinned > info->msgs)
		bad_result(w, "sequence numbers do not add up");
	if (info->mode & ~0777 || info->__reserved)
		bad_result(w, "mode or reserved field");
	if (info->max_msg_size > info->capacity - REC_HDR)
		bad_result(w, "max_msg_size above what the ring holds");
	if (strnlen(info->name, CBM_NAME_MAX) == CBM_NAME_MAX)
		bad_result(w, "name not terminated");
	/* The stored messages are the pinned ones plus the window's */
	if (info->pinned + info->win_msgs != info->msgs ||
	    info->win_turns > info->win_msgs)
		bad_result(w, "pinned and window counts do not add up");
	if (info->pinned_bytes > w->fz->max_pinned ||
	    info->pinned_bytes < info->pinned * CBM_RECORD_SPACE(0) ||
	    info->pinned_bytes % CBM_RECORD_ALIGN)
		bad_result(w, "pinned_bytes");
	/* The window's messages are in the ring, headers and all */
	if (info->win_bytes + info->win_msgs * CBM_RECORD_SPACE(0) >
	    info->used)
		bad_result(w, "window bytes above what the ring holds");
	if (info->expired > info->evicted)
		bad_result(w, "more expired than evicted");
	/* Every resize bumps config_gen */
	if (info->resizes > info->config_gen)
		bad_result(w, "resizes above config_gen");
}

/* What CBM_IOC_GET_WINDOW returns: a window SET_WINDOW accepted */
static void check_window(struct worker *w, const struct cbm_window *win)
{
	if (win->flags & ~CBM_WINDOW_TURNS)
		bad_result(w, "unknown window flags");
}

/* What CBM_IOC_GET_AUTORESIZE returns: settings SET_AUTORESIZE accepted */
static void check_autoresize(struct worker *w, const struct cbm_autoresize *a)
{
	const struct cbm_autoresize off = { .size = a->size };

	if (!a->flags) {
		if (memcmp(a, &off, sizeof(off)))
			bad_result(w, "auto-resize off but fields not zero");
		return;
	}
	if (a->flags != CBM_AUTORESIZE_ON || a->__reserved ||
	    a->min_capacity < MIN_CAPACITY ||
	    (a->min_capacity & (a->min_capacity - 1)) ||
	    (a->max_capacity & (a->max_capacity - 1)) ||
	    a->min_capacity > a->max_capacity ||
	    !a->high_pct || a->high_pct > 100 ||
	    a->low_pct * 2 >= a->high_pct ||
	    a->period_ms < 10 || a->period_ms > 3600000)
		bad_result(w, "auto-resize settings it cannot have accepted");
}

/* What CBM_IOC_MAP_INFO returns: a layout and one consistent snapshot */
static void check_map_info(struct worker *w, const struct cbm_map_info *mi)
{
	if (mi->flags & ~CBM_MAP_UNLINKED)
		bad_result(w, "unknown map flags");
	if (mi->capacity < MIN_CAPACITY ||
	    (mi->capacity & (mi->capacity - 1)))
		bad_result(w, "map capacity not a power of two, or below a page");
	if (mi->header_offset || mi->header_size != w->page ||
	    mi->data_offset < mi->header_size || mi->data_offset % w->page ||
	    mi->data_size != 2 * mi->capacity ||
	    mi->map_size != mi->data_offset + mi->data_size)
		bad_result(w, "map layout does not add up");
	/* every record takes at least a header */
	if (mi->tail > mi->head || mi->head - mi->tail > mi->capacity ||
	    mi->first_seq > mi->next_seq ||
	    (mi->next_seq - mi->first_seq) * CBM_RECORD_SPACE(0) >
	    mi->head - mi->tail ||
	    (mi->head == mi->tail) != (mi->first_seq == mi->next_seq))
		bad_result(w, "map positions and sequence numbers disagree");
}

static const int get_config_errs[] = { EINVAL, EFAULT, 0 };
/* INFO, GET_WINDOW, GET_AUTORESIZE: binding to `default' may be denied */
static const int info_errs[] = { EINVAL, EFAULT, EACCES, 0 };
static const int reader_info_errs[] = { EINVAL, EFAULT, EBADF, EACCES, 0 };

/* Output ioctls: random size and pointer; a good result is checked */
static void do_get(struct worker *w)
{
	static const struct {
		unsigned long cmd;
		const char *name;
		size_t size;
		const int *errs;
	} cmds[] = {
		{ CBM_IOC_GET_CONFIG, "GET_CONFIG",
		  sizeof(struct cbm_fd_config), get_config_errs },
		{ CBM_IOC_INFO, "INFO", sizeof(struct cbm_info), info_errs },
		{ CBM_IOC_READER_INFO, "READER_INFO",
		  sizeof(struct cbm_reader_info), reader_info_errs },
		{ CBM_IOC_GET_WINDOW, "GET_WINDOW", sizeof(struct cbm_window),
		  info_errs },
		{ CBM_IOC_GET_AUTORESIZE, "GET_AUTORESIZE",
		  sizeof(struct cbm_autoresize), info_errs },
		{ CBM_IOC_MAP_INFO, "MAP_INFO", sizeof(struct cbm_map_info),
		  reader_info_errs },
	};
	unsigned int i = rnd(w, ARRAY_SIZE(cmds));
	unsigned char buf[sizeof(struct cbm_info)];
	__u32 usize = some_size(w, cmds[i].size);
	int fd = some_fd(w);
	unsigned char *p;
	int ret;

	memset(buf, JUNK, sizeof(buf));
	p = place_arg(w, buf, cmds[i].size, 0);
	if (arena_room(w, p) >= sizeof(usize))
		memcpy(p, &usize, sizeof(usize));
	describe(w, "%s fd %d size %u arg %p", cmds[i].name, fd, usize, p);
	ret = ioctl(fd, cmds[i].cmd, p);
	check(w, ret, cmds[i].errs);
	if (ret)
		return;
	if (arena_room(w, p) < usize)
		bad_result(w, "succeeded on memory it cannot have written");
	check_tail(w, p, cmds[i].size, usize);
	if (cmds[i].cmd == CBM_IOC_INFO && usize >= sizeof(struct cbm_info))
		check_info(w, (const struct cbm_info *)p);
	if (cmds[i].cmd == CBM_IOC_GET_WINDOW &&
	    usize >= sizeof(struct cbm_window))
		check_window(w, (const struct cbm_window *)p);
	if (cmds[i].cmd == CBM_IOC_GET_AUTORESIZE &&
	    usize >= sizeof(struct cbm_autoresize))
		check_autoresize(w, (const struct cbm_autoresize *)p);
	if (cmds[i].cmd == CBM_IOC_MAP_INFO &&
	    usize >= sizeof(struct cbm_map_info))
		check_map_info(w, (const struct cbm_map_info *)p);
}

/* The union of every ioctl's errors, for numbers chosen at random */
static const int any_ioctl_errs[] = {
	EINVAL, E2BIG, EFAULT, EBADF, EBUSY, EEXIST, ENOENT, EACCES, ENOSPC,
	ENOMEM, EMSGSIZE, EAGAIN, EINTR, EPIPE, ENOTTY, EPERM, 0
};

static void do_random_ioctl(struct worker *w)
{
	unsigned long cmd;
	int fd = some_fd(w);
	void *p = some_ptr(w, w->page);

	switch (rnd(w, 4)) {
	case 0:
		cmd = FIONREAD;
		break;
	case 1:
		cmd = TCGETS;
		break;
	case 2:
		/* cbm's own commands, and the first one after them */
		cmd = _IO(CBM_IOC_MAGIC, CBM_CMD_BIND +
			  rnd(w, CBM_CMD_RESTORE - CBM_CMD_BIND + 2));
		break;
	default:
		/* type 0xCB with any number, direction and size */
		cmd = _IOC(rnd(w, 4), CBM_IOC_MAGIC, rnd(w, 256),
			   rnd(w, 1 << _IOC_SIZEBITS));
		break;
	}
	if (arena_room(w, p) >= sizeof(struct cbm_info) && one_in(w, 2))
		fill_random(w, p, sizeof(struct cbm_info));
	describe(w, "ioctl fd %d cmd %#lx arg %p", fd, cmd, p);
	check(w, ioctl(fd, cmd, p), any_ioctl_errs);
}

static void do_write(struct worker *w)
{
	struct iovec iov[3];
	int fd = some_fd(w);
	size_t len = some_len(w), room;
	unsigned char *p = some_ptr(w, len);
	int i, cnt;
	ssize_t n;

	room = arena_room(w, p);
	if (room && one_in(w, 2))
		fill_random(w, p, len < room ? len : room);
	if (one_in(w, 3)) {
		cnt = 1 + rnd(w, 3);
		for (len = 0, i = 0; i < cnt; i++) {
			iov[i].iov_len = some_len(w) % (w->page + 1);
			iov[i].iov_base = some_ptr(w, iov[i].iov_len);
			len += iov[i].iov_len;
		}
		describe(w, "writev fd %d count %d len %zu", fd, cnt, len);
		n = writev(fd, iov, cnt);
		check(w, n, write_errs);
	} else {
		describe(w, "write fd %d buf %p len %zu", fd, p, len);
		n = write(fd, p, len);
		check(w, n, write_errs);
	}
	/* one write() is one whole message */
	if (n >= 0 && (size_t)n != len)
		bad_result(w, "short write");
}

static void do_read(struct worker *w)
{
	struct iovec iov[3];
	int fd = some_fd(w);
	size_t len = PICK(w, 0, 1, 47, 48, 49, 100, 4096, 8192, 65536 + 48,
			  1 << 20);
	void *p = some_ptr(w, len);
	int i, cnt;
	ssize_t n;

	if (one_in(w, 3)) {
		cnt = 1 + rnd(w, 3);
		for (i = 0; i < cnt; i++) {
			iov[i].iov_len = PICK(w, 0, 1, 48, 100, 4096);
			iov[i].iov_base = some_ptr(w, iov[i].iov_len);
		}
		for (len = 0, i = 0; i < cnt; i++)
			len += iov[i].iov_len;
		describe(w, "readv fd %d count %d len %zu", fd, cnt, len);
		n = readv(fd, iov, cnt);
	} else {
		describe(w, "read fd %d buf %p len %zu", fd, p, len);
		n = read(fd, p, len);
	}
	check(w, n, ERRS(EBADF, EFAULT, EMSGSIZE, EAGAIN, EINTR, EPIPE,
			 EACCES));
	if (n > (ssize_t)len)
		bad_result(w, "read more than asked for");
}

static void do_lseek(struct worker *w)
{
	int fd = some_fd(w);
	off_t off = mess(w) ? (off_t)rng_next(&w->rng) :
		    (off_t)PICK(w, 0, 1, -1, 5, -5, 1000, LLONG_MAX, LLONG_MIN);
	int whence = mess(w) ? (int)PICK(w, SEEK_DATA, SEEK_HOLE, 5, -1) :
		     (int)PICK(w, SEEK_SET, SEEK_CUR, SEEK_END);

	describe(w, "lseek fd %d offset %lld whence %d", fd, (long long)off,
		 whence);
	check(w, lseek(fd, off, whence), ERRS(EINVAL, EBADF, EACCES));
}

static void do_positional(struct worker *w)
{
	char buf[64];
	int fd = some_fd(w);
	ssize_t n;

	describe(w, "pread/pwrite fd %d", fd);
	if (one_in(w, 2))
		n = pread(fd, buf, sizeof(buf), rnd(w, 100));
	else
		n = pwrite(fd, "x", 1, rnd(w, 100));
	if (n >= 0)
		bad_result(w, "positional I/O succeeded");
	check(w, n, ERRS(ESPIPE, EBADF));
}

static void do_poll(struct worker *w)
{
	struct pollfd pfd[3];
	short events = POLLIN | POLLOUT | POLLPRI | POLLRDNORM | POLLWRNORM;
	short allowed;
	int i, cnt = 1 + rnd(w, 3), n;

	for (i = 0; i < cnt; i++) {
		pfd[i].fd = some_fd(w);
		pfd[i].events = rnd(w, 1 << 16) & events;
	}
	describe(w, "poll %d files", cnt);
	n = poll(pfd, cnt, rnd(w, 5));
	check(w, n, ERRS(EINTR));
	for (i = 0; n > 0 && i < cnt; i++) {
		allowed = pfd[i].events | POLLERR | POLLHUP;
		if (pfd[i].fd < 0)
			allowed = 0;
		if (pfd[i].revents & ~allowed)
			bad_result(w, "poll returned an event not asked for");
	}
}

static void do_epoll(struct worker *w)
{
	struct epoll_event ev = {
		.events = rnd(w, 1 << 8) & (EPOLLIN | EPOLLOUT | EPOLLPRI |
					    EPOLLHUP | EPOLLET),
	};
	struct epoll_event out[4];
	int fd = some_fd(w);
	int op = PICK(w, EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL);

	if (one_in(w, 2)) {
		describe(w, "epoll_ctl op %d fd %d events %#x", op, fd,
			 ev.events);
		check(w, epoll_ctl(w->epfd, op, fd, &ev),
		      ERRS(EEXIST, ENOENT, EBADF));
	} else {
		describe(w, "epoll_wait");
		check(w, epoll_wait(w->epfd, out, ARRAY_SIZE(out), rnd(w, 3)),
		      ERRS(EINTR));
	}
}

/* A slot for a new mapping: an empty one, or one emptied for it */
static struct mapping *map_slot(struct worker *w)
{
	struct mapping *m = &w->maps[rnd(w, MAPS)];

	if (m->addr)
		CHILD_CHECK(munmap(m->addr, m->len) == 0);
	memset(m, 0, sizeof(*m));
	return m;
}

/* A mapping this worker holds, or NULL */
static struct mapping *some_map(struct worker *w)
{
	struct mapping *m = &w->maps[rnd(w, MAPS)];

	return m->addr ? m : NULL;
}

/*
 * Reads a whole mapping: the header's fields must make sense, and every
 * data page must be there, whatever happened to the conversation since
 * (resized, unlinked, freed). Tail is read before head, as both only grow.
 */
static void read_map(struct worker *w, const struct mapping *m)
{
	const volatile struct cbm_map_header *hdr = (const void *)m->addr;
	volatile unsigned char sink;
	__u64 tail, head, cap;
	size_t off;

	tail = hdr->tail;
	head = __atomic_load_n(&hdr->head, __ATOMIC_ACQUIRE);
	cap = hdr->capacity;
	if (hdr->hdr_size < sizeof(struct cbm_map_header) ||
	    (hdr->flags & ~CBM_MAP_UNLINKED))
		bad_result(w, "map header size or flags");
	if (cap < MIN_CAPACITY || (cap & (cap - 1)) || tail > head)
		bad_result(w, "map header capacity or positions");
	for (off = w->page; off < m->len; off += w->page)
		sink = m->addr[off];
	(void)sink;
}

/*
 * mmap() of a file: the header page alone or the full layout, read-only
 * and from offset 0, succeed; any other length or offset is EINVAL,
 * writable or executable mappings EPERM, and the VFS refuses a file not
 * opened for reading and a shared writable mapping of a file not opened
 * for writing (EACCES). A file never bound is EINVAL (CBM_IOC_MAP_INFO,
 * made first, binds it if it can). A resize between CBM_IOC_MAP_INFO and
 * mmap() may make the length it gave EINVAL, and that of any other ring
 * size valid.
 */
/* Whether @len is the full mapping of a ring of some capacity */
static bool full_map_len(const struct worker *w, size_t len)
{
	size_t cap = (len - w->page) / 2;

	return len > w->page && len == w->page + 2 * cap &&
	       cap >= MIN_CAPACITY && cap <= FUZZ_MAX_CAPACITY &&
	       !(cap & (cap - 1));
}

static void do_mmap(struct worker *w)
{
	struct cbm_map_info mi = { .size = sizeof(mi) };
	int fd = some_fd(w);
	int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
	int prot = CHOOSE(w, (PROT_READ), (PROT_WRITE, PROT_EXEC, PROT_NONE,
					   PROT_READ | PROT_WRITE,
					   PROT_READ | PROT_EXEC));
	int flags = one_in(w, 4) ? MAP_PRIVATE : MAP_SHARED;
	size_t full = 0, len, rounded;
	off_t off = mess(w) ? (off_t)w->page * (1 + rnd(w, 16)) : 0;
	bool vfs_refuses, layout_ok, may_einval;
	struct mapping *m;
	void *p;
	int err;

	if (!ioctl(fd, CBM_IOC_MAP_INFO, &mi))
		full = mi.map_size;
	if (!mess(w)) {
		len = full && one_in(w, 2) ? full : w->page;
	} else {
		switch (rnd(w, 6)) {
		case 0:
			len = PICK(w, 0, 1, 1ULL << 40);
			break;
		case 1:
			len = w->page - 1 + PICK(w, 0, 2, 4097);
			break;
		case 2:
			len = full + w->page;
			break;
		case 3:
			len = full - w->page;
			break;
		case 4:
			len = full / 2;
			break;
		default:
			len = w->page * rnd(w, 1024);
			break;
		}
	}
	rounded = (len + w->page - 1) / w->page * w->page;
	vfs_refuses = acc == O_WRONLY ||
		      (flags == MAP_SHARED && (prot & PROT_WRITE) &&
		       acc != O_RDWR);
	layout_ok = !off && (rounded == w->page || rounded == full ||
			     full_map_len(w, rounded));
	may_einval = !len || off || rounded != w->page || !full;

	m = map_slot(w);
	describe(w, "mmap fd %d len %zu prot %#x flags %#x offset %lld", fd,
		 len, prot, flags, (long long)off);
	p = mmap(NULL, len, prot, flags, fd, off);
	err = errno;
	if (p != MAP_FAILED) {
		if (!len || vfs_refuses || !layout_ok ||
		    (prot & (PROT_WRITE | PROT_EXEC)))
			bad_result(w, "mapped what it must refuse");
		m->addr = p;
		m->len = rounded;
		m->readable = prot & PROT_READ;
		if (m->readable)
			read_map(w, m);
		return;
	}
	/* the address space or the memory cgroup may be exhausted */
	if (err == ENOMEM && len)
		return;
	if (err == EINVAL && may_einval)
		return;
	if (err == EACCES && (vfs_refuses || w->unpriv))
		return;
	if (err == EPERM && !vfs_refuses && (prot & (PROT_WRITE | PROT_EXEC)))
		return;
	bad_result(w, strerror(err));
}

/*
 * Something done to a mapping: read it, change the protection of a part
 * (never to writable or executable), unmap a part or shrink it, try to
 * grow it.
 */
static void do_map_op(struct worker *w)
{
	struct mapping *m = some_map(w);
	size_t pages, first, cnt;
	unsigned char *part;
	int prot, ret;
	void *p;

	if (!m)
		return;
	pages = m->len / w->page;
	first = rnd(w, pages);
	cnt = 1 + rnd(w, pages - first);
	part = m->addr + first * w->page;
	switch (rnd(w, 5)) {
	case 0:
		if (m->readable && !m->holes && !m->mixed)
			read_map(w, m);
		break;
	case 1:
		prot = PICK(w, PROT_READ, PROT_NONE, PROT_WRITE, PROT_EXEC,
			    PROT_READ | PROT_WRITE);
		/* a replaced part would take write or execute */
		if ((prot & (PROT_WRITE | PROT_EXEC)) && m->holes)
			break;
		describe(w, "mprotect pages %zu-%zu of %zu prot %#x", first,
			 first + cnt - 1, pages, prot);
		ret = mprotect(part, cnt * w->page, prot);
		if (prot & (PROT_WRITE | PROT_EXEC)) {
			if (ret != -1 || errno != EACCES)
				bad_result(w, "mprotect added write or execute");
			break;
		}
		if (ret)
			bad_result(w, strerror(errno));
		if (cnt < pages)
			m->mixed = true;
		else
			m->readable = prot & PROT_READ;
		break;
	case 2:
		describe(w, "unmapping pages %zu-%zu of %zu", first,
			 first + cnt - 1, pages);
		p = mmap(part, cnt * w->page, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		CHILD_CHECK(p == part);
		m->holes = true;
		break;
	case 3:
		describe(w, "mremap %zu pages to %zu", pages, cnt);
		p = mremap(m->addr, m->len, cnt * w->page, 0);
		if (p != m->addr)
			bad_result(w, "mremap could not shrink a mapping");
		m->len = cnt * w->page;
		break;
	default:
		/* a replaced part could grow */
		if (m->holes)
			break;
		describe(w, "mremap %zu pages to %zu", pages, pages + cnt);
		p = mremap(m->addr, m->len, m->len + cnt * w->page,
			   one_in(w, 2) ? MREMAP_MAYMOVE : 0);
		if (p != MAP_FAILED || errno != EFAULT)
			bad_result(w, "mremap grew a mapping");
		break;
	}
}

static void do_open(struct worker *w)
{
	int *s = slot(w);
	int flags = PICK(w, O_RDONLY, O_WRONLY, O_RDWR) |
		    (one_in(w, 4) ? 0 : O_NONBLOCK);

	if (*s >= 0)
		close(*s);
	describe(w, "open flags %#x", flags);
	*s = cbm_open(flags);
	check(w, *s, ERRS(0));
}

/* Closes a slot, and sometimes fills it with a duplicate of another */
static void do_close_dup(struct worker *w)
{
	int *s = slot(w);
	int fd;

	if (*s >= 0)
		close(*s);
	*s = -1;
	if (one_in(w, 2))
		return;
	fd = some_fd(w);
	describe(w, "dup fd %d", fd);
	*s = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	check(w, *s, ERRS(0));
}

static void do_fcntl(struct worker *w)
{
	int fd = some_fd(w);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return;
	describe(w, "fcntl fd %d toggling O_NONBLOCK", fd);
	check(w, fcntl(fd, F_SETFL, fl ^ O_NONBLOCK), ERRS(EBADF));
}

/* Root changes a limit that every write checks, while writes go on */
static void do_param(struct worker *w)
{
	__u64 v = PICK(w, 64, 4096, 65536);

	if (w->unpriv)
		return;
	describe(w, "max_msg_size %llu", (unsigned long long)v);
	check(w, param_write("max_msg_size", v), ERRS(0));
}

/* A configuration change: also EPERM, for a caller that is not the owner */
static const int config_errs[] = {
	EINVAL, E2BIG, EFAULT, EBADF, EPERM, EACCES, 0
};

static void do_set_window(struct worker *w)
{
	struct cbm_window win;
	int fd = some_fd(w);
	void *p;

	memset(&win, 0, sizeof(win));
	win.flags = CHOOSE(w, (0, CBM_WINDOW_TURNS), (2, 1U << 31));
	/* each limit only some of the time, so that windows come and go */
	if (one_in(w, 2))
		win.max_msgs = mess(w) ? rng_next(&w->rng) :
			       PICK(w, 1, 2, 3, 5, 16, 100);
	if (one_in(w, 3))
		win.max_bytes = mess(w) ? ~0ULL : PICK(w, 1, 64, 512, 4096,
						       65536);
	if (one_in(w, 3))
		win.max_tokens = mess(w) ? ~0ULL : PICK(w, 1, 10, 100, 1000);
	if (one_in(w, 3))
		win.max_age_ns = mess(w) ? PICK(w, 1, ~0ULL, 1ULL << 63) :
				 PICK(w, 1000000, 2000000, 5000000, 20000000,
				      1000000000);
	win.size = some_size(w, sizeof(win));
	p = place_arg(w, &win, sizeof(win), win.size);
	describe(w, "SET_WINDOW fd %d size %u flags %#x max_msgs %llu max_bytes %llu max_tokens %llu max_age_ns %llu arg %p",
		 fd, win.size, win.flags, (unsigned long long)win.max_msgs,
		 (unsigned long long)win.max_bytes,
		 (unsigned long long)win.max_tokens,
		 (unsigned long long)win.max_age_ns, p);
	check(w, ioctl(fd, CBM_IOC_SET_WINDOW, p), config_errs);
}

/*
 * Unpins a message this worker pinned (maybe in another conversation), or
 * one near the newest of the file's conversation, or any number.
 */
static void do_unpin(struct worker *w)
{
	struct cbm_info info;
	struct cbm_pin pin;
	int fd = some_fd(w);
	void *p;

	memset(&pin, 0, sizeof(pin));
	pin.flags = CHOOSE(w, (0), (1, 1U << 31));
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	if (w->npins && one_in(w, 2))
		pin.seq = w->pins[rnd(w, w->npins < PINS ? w->npins : PINS)];
	else if (!mess(w) && !ioctl(fd, CBM_IOC_INFO, &info))
		pin.seq = info.next_seq - 1 - rnd(w, 8);
	else
		pin.seq = PICK(w, 0, 1, ~0ULL, 1ULL << 63);
	pin.size = some_size(w, sizeof(pin));
	p = place_arg(w, &pin, sizeof(pin), pin.size);
	describe(w, "UNPIN fd %d size %u flags %#x seq %llu arg %p", fd,
		 pin.size, pin.flags, (unsigned long long)pin.seq, p);
	check(w, ioctl(fd, CBM_IOC_UNPIN, p),
	      ERRS(EINVAL, E2BIG, EFAULT, EBADF, EPERM, ENOENT, EACCES));
}

/*
 * The records a successful CBM_IOC_READ_WINDOW copied to @buf: @rw->count
 * messages, oldest first, each CBM_RECORD_SPACE() bytes, @rw->needed in
 * all, and nothing written after them (@len bytes at @buf were JUNK).
 */
static void check_records(struct worker *w, const struct cbm_read_window *rw,
			  const unsigned char *buf, size_t len)
{
	static const __u8 zero[sizeof(((struct cbm_record *)0)->__reserved)];
	__u64 off = 0, prev = 0, i, space, pad;
	struct cbm_record rec;

	for (i = 0; i < rw->count; i++) {
		if (off + REC_HDR > rw->needed)
			bad_result(w, "window records run past needed");
		memcpy(&rec, buf + off, REC_HDR);
		if (rec.hdr_len != REC_HDR || rec.type != CBM_RECORD_MSG ||
		    rec.lost || !rec.ts_ns || rec.role >= __CBM_ROLE_MAX ||
		    (rec.flags & CBM_MSG_KERNEL_MASK & ~CBM_MSG_PINNED) ||
		    memcmp(rec.__reserved, zero, sizeof(zero))) {
			fprintf(stderr, "# record %llu: hdr_len %u type %u seq %llu ts %llu lost %llu role %u flags %#x\n",
				(unsigned long long)i, rec.hdr_len, rec.type,
				(unsigned long long)rec.seq,
				(unsigned long long)rec.ts_ns,
				(unsigned long long)rec.lost, rec.role,
				rec.flags);
			bad_result(w, "bad record header in the window");
		}
		if (i ? rec.seq <= prev : rec.seq != rw->first_seq)
			bad_result(w, "window sequence numbers not increasing from first_seq");
		space = CBM_RECORD_SPACE(rec.len);
		if (off + space > rw->needed)
			bad_result(w, "window record runs past needed");
		for (pad = REC_HDR + rec.len; pad < space; pad++)
			if (buf[off + pad])
				bad_result(w, "window record padding not zeroed");
		prev = rec.seq;
		off += space;
	}
	if (off != rw->needed)
		bad_result(w, "READ_WINDOW needed is not the records' size");
	if (rw->needed < len && buf[rw->needed] != JUNK)
		bad_result(w, "READ_WINDOW wrote past the records");
}

/* Bytes writable from @p on in the window buffer or the arena, else 0 */
static size_t wbuf_room(const struct worker *w, __u64 p)
{
	__u64 a = (uintptr_t)w->wbuf;

	if (p >= a && p <= a + WBUF_SIZE)
		return a + WBUF_SIZE - p;
	return arena_room(w, (const void *)(uintptr_t)p);
}

static void do_read_window(struct worker *w)
{
	struct cbm_read_window rw;
	int fd = some_fd(w);
	__u64 buf, len, room;
	void *p;
	int ret;

	memset(&rw, 0, sizeof(rw));
	rw.flags = CHOOSE(w, (0), (1, 1U << 31));
	rw.last = one_in(w, 2) ? 0 : mess(w) ? ~0ULL : PICK(w, 1, 2, 5, 100);
	len = one_in(w, 2) ? rnd(w, WBUF_SIZE + 1) :
	      PICK(w, 0, 1, REC_HDR, CBM_RECORD_SPACE(1), 4096, 65536,
		   WBUF_SIZE);
	/* at the start of the buffer, or ending at its guard page */
	buf = (uintptr_t)w->wbuf + (one_in(w, 2) ? 0 : WBUF_SIZE - len);
	if (mess(w)) {
		switch (rnd(w, 3)) {
		case 0:
			buf = (uintptr_t)some_ptr(w, len);
			break;
		case 1:
			/* runs into the guard page */
			buf = (uintptr_t)w->wbuf + WBUF_SIZE - rnd(w, len + 1);
			break;
		default:
			len = PICK(w, WBUF_SIZE + 1, 1ULL << 40, ~0ULL);
			break;
		}
	}
	room = wbuf_room(w, buf);
	memset((void *)(uintptr_t)buf, JUNK, room < len ? room : len);
	rw.buf = buf;
	rw.len = len;
	rw.size = some_size(w, sizeof(rw));
	p = place_arg(w, &rw, sizeof(rw), rw.size);
	describe(w, "READ_WINDOW fd %d size %u flags %#x buf %#llx len %llu last %llu arg %p",
		 fd, rw.size, rw.flags, (unsigned long long)buf,
		 (unsigned long long)len, (unsigned long long)rw.last, p);
	ret = ioctl(fd, CBM_IOC_READ_WINDOW, p);
	check(w, ret, ERRS(EINVAL, E2BIG, EFAULT, EBADF, EMSGSIZE, EACCES));
	if (ret && errno != EMSGSIZE)
		return;
	/* the kernel wrote the outputs, so it read the whole struct */
	if (arena_room(w, p) < sizeof(rw))
		bad_result(w, "succeeded on memory it cannot have written");
	/* the arguments as the kernel saw them (a bit may have flipped) */
	memcpy(&rw, p, sizeof(rw));
	if (rw.count * CBM_RECORD_SPACE(0) > rw.needed ||
	    !rw.count != !rw.needed)
		bad_result(w, "READ_WINDOW count and needed disagree");
	if (rw.last && rw.count > rw.last)
		bad_result(w, "READ_WINDOW returned more than the last ones");
	if (ret) {
		if (rw.needed <= rw.len)
			bad_result(w, "EMSGSIZE with a buffer large enough");
		return;
	}
	if (rw.needed > rw.len || rw.needed > wbuf_room(w, rw.buf))
		bad_result(w, "READ_WINDOW wrote where it cannot have");
	/*
	 * Records in the arena may have been overwritten by the outputs of
	 * the argument, which lives there too
	 */
	if (rw.buf == buf && rw.len == len && !arena_room(w, (void *)buf))
		check_records(w, &rw, (const unsigned char *)(uintptr_t)buf,
			      room < len ? room : len);
}

static void do_seek(struct worker *w)
{
	struct cbm_info info;
	struct cbm_seek s;
	int fd = some_fd(w);
	void *p;
	int ret;

	memset(&s, 0, sizeof(s));
	s.whence = CHOOSE(w, (CBM_SEEK_SEQ, CBM_SEEK_TIME, CBM_SEEK_LAST),
			  (__CBM_SEEK_MAX, ~0U));
	switch (s.whence) {
	case CBM_SEEK_TIME:
		s.value = one_in(w, 4) ? PICK(w, 0, ~0ULL) :
			  now_ns() - rnd(w, 100000000);
		break;
	case CBM_SEEK_LAST:
		s.value = PICK(w, 0, 1, 2, 10, 1000, ~0ULL);
		break;
	default:
		s.value = one_in(w, 2) ? rnd(w, 64) :
			  PICK(w, 1000, 1ULL << 40, ~0ULL);
		break;
	}
	s.cursor = rng_next(&w->rng);
	s.size = some_size(w, sizeof(s));
	p = place_arg(w, &s, sizeof(s), s.size);
	describe(w, "SEEK fd %d size %u whence %u value %llu arg %p", fd,
		 s.size, s.whence, (unsigned long long)s.value, p);
	ret = ioctl(fd, CBM_IOC_SEEK, p);
	check(w, ret, ERRS(EINVAL, E2BIG, EFAULT, EBADF, EACCES));
	if (ret || arena_room(w, p) < sizeof(s))
		return;
	memcpy(&s, p, sizeof(s));
	/* a target no longer stored moves forward, never back */
	if (s.whence == CBM_SEEK_SEQ && s.cursor < s.value)
		bad_result(w, "SEEK_SEQ moved before its target");
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	/* next_seq only grows, so it is still at or after the cursor */
	if (!ioctl(fd, CBM_IOC_INFO, &info) && s.cursor > info.next_seq)
		bad_result(w, "SEEK moved past the newest message");
}

/* The capacity a request rounds to: a power of two, at least a page */
static __u64 rounded_capacity(const struct worker *w, __u64 req)
{
	__u64 c = MIN_CAPACITY;

	if (!req)
		req = w->fz->default_capacity;
	while (c && c < req)
		c <<= 1;
	return c;
}

static void do_resize(struct worker *w)
{
	struct cbm_resize rs;
	int fd = some_fd(w);
	__u64 want;
	void *p;
	int ret;

	memset(&rs, 0, sizeof(rs));
	rs.flags = CHOOSE(w, (0), (1, 1U << 31));
	if (mess(w))
		rs.capacity = PICK(w, FUZZ_MAX_CAPACITY + 1, 384 * 1024,
				   1ULL << 63, ~0ULL);
	else if (one_in(w, 2))
		rs.capacity = MIN_CAPACITY + rnd(w, FUZZ_MAX_CAPACITY -
						 MIN_CAPACITY + 1);
	else
		rs.capacity = PICK(w, 0, 1, 4096, 8192, 16384, 65536,
				   FUZZ_MAX_CAPACITY);
	rs.evicted = rng_next(&w->rng);
	rs.size = some_size(w, sizeof(rs));
	p = place_arg(w, &rs, sizeof(rs), rs.size);
	/* the request as the kernel will see it (a bit may have flipped) */
	if (arena_room(w, p) >= sizeof(rs))
		memcpy(&rs, p, sizeof(rs));
	want = rs.capacity;
	describe(w, "RESIZE fd %d size %u flags %#x capacity %llu arg %p", fd,
		 rs.size, rs.flags, (unsigned long long)rs.capacity, p);
	ret = ioctl(fd, CBM_IOC_RESIZE, p);
	check(w, ret, ERRS(EINVAL, E2BIG, EFAULT, EBADF, EPERM, EBUSY, ENOSPC,
			   ENOMEM, EACCES));
	if (ret)
		return;
	if (arena_room(w, p) < sizeof(rs))
		bad_result(w, "succeeded on memory it cannot have written");
	memcpy(&rs, p, sizeof(rs));
	if (rs.capacity != rounded_capacity(w, want) ||
	    rs.capacity > FUZZ_MAX_CAPACITY)
		bad_result(w, "RESIZE reported a capacity it cannot have rounded to");
}

static void do_set_autoresize(struct worker *w)
{
	struct cbm_autoresize a;
	int fd = some_fd(w);
	__u64 low_marks;
	void *p;

	memset(&a, 0, sizeof(a));
	a.flags = CHOOSE(w, (0, CBM_AUTORESIZE_ON, CBM_AUTORESIZE_ON),
			 (2, CBM_AUTORESIZE_ON | 2));
	a.min_capacity = CHOOSE(w, (4096, 8192, 16384), (0, 1ULL << 40));
	a.max_capacity = mess(w) ? PICK(w, 0, 4095, FUZZ_MAX_CAPACITY + 1,
					~0ULL) :
			 PICK(w, 16384, 65536, FUZZ_MAX_CAPACITY);
	a.high_pct = CHOOSE(w, (1, 50, 75, 90, 100), (0, 101));
	/* valid: twice the low mark stays under the high mark */
	low_marks = (a.high_pct + 1ULL) / 2;
	a.low_pct = mess(w) ? a.high_pct / 2 + rnd(w, 3) :
		    low_marks ? rnd(w, low_marks) : 0;
	a.period_ms = CHOOSE(w, (10, 20, 50), (0, 9, 3600001));
	if (!mess(w) && one_in(w, 2))
		a.period_ms = 10 + rnd(w, 41);
	a.__reserved = CHOOSE(w, (0), (1));
	a.size = some_size(w, sizeof(a));
	p = place_arg(w, &a, sizeof(a), a.size);
	describe(w, "SET_AUTORESIZE fd %d size %u flags %#x min %llu max %llu high %u low %u period %u reserved %u arg %p",
		 fd, a.size, a.flags, (unsigned long long)a.min_capacity,
		 (unsigned long long)a.max_capacity, a.high_pct, a.low_pct,
		 a.period_ms, a.__reserved, p);
	check(w, ioctl(fd, CBM_IOC_SET_AUTORESIZE, p), config_errs);
}

static const int restore_errs[] = {
	EINVAL, E2BIG, EFAULT, EBADF, EMSGSIZE, EAGAIN, EPIPE, EACCES, ENOSPC,
	ENOMEM, EPERM, EBUSY, 0
};

/*
 * A restore: descriptors as do_send_batch() makes them, with sequence
 * numbers and timestamps that mostly go on from the conversation's (so
 * that fresh conversations take some), holes and all.
 */
static void do_restore(struct worker *w)
{
	unsigned char *descs = w->wbuf + WBUF_SIZE -
			       BATCH_DESCS * BATCH_STRIDE;
	struct cbm_restore_msg m;
	struct cbm_restore r;
	struct cbm_info info;
	int fd = some_fd(w);
	__u64 seq, ts;
	unsigned int i, n;
	void *p;
	int ret;

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	seq = ioctl(fd, CBM_IOC_INFO, &info) ? rng_next(&w->rng) :
	      info.next_seq + (one_in(w, 4) ? rnd(w, 5) : 0);
	ts = one_in(w, 8) ? rng_next(&w->rng) : now_ns() - rnd(w, 1ULL << 40);
	n = one_in(w, 4) ? rnd(w, 3) : 1 + rnd(w, BATCH_DESCS);
	memset(descs, 0, BATCH_DESCS * BATCH_STRIDE);
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		m.flags = CHOOSE(w, (0, 0, 0xabcd0000, CBM_MSG_PINNED),
				 (2, CBM_MSG_PINNED | 0x8000));
		m.role = CHOOSE(w, (CBM_ROLE_SYSTEM, CBM_ROLE_USER,
				    CBM_ROLE_TOOL), (__CBM_ROLE_MAX));
		m.len = one_in(w, 2) ? rnd(w, 64) : some_len(w);
		m.data = (uintptr_t)some_ptr(w, m.len);
		m.tokens = rnd(w, 64);
		m.seq = seq;
		m.ts_ns = ts;
		seq += mess(w) ? rng_next(&w->rng) : 1 + (one_in(w, 4) ? rnd(w, 9) : 0);
		ts += mess(w) ? rng_next(&w->rng) : rnd(w, 1000);
		memcpy(descs + i * BATCH_STRIDE, &m, sizeof(m));
	}

	memset(&r, 0, sizeof(r));
	r.flags = CHOOSE(w, (0), (1));
	r.msgs = one_in(w, 8) ? (uintptr_t)some_ptr(w, sizeof(m)) :
		 (uintptr_t)descs;
	r.count = mess(w) ? PICK(w, CBM_BATCH_MAX + 1, UINT32_MAX) : n;
	r.msg_size = mess(w) ? PICK(w, 0, sizeof(m) - 8, 1 << 20) :
				BATCH_STRIDE;
	r.next_seq = one_in(w, 4) ? seq + rnd(w, 3) : 0;
	r.size = some_size(w, sizeof(r));
	p = place_arg(w, &r, sizeof(r), r.size);
	describe(w, "RESTORE fd %d size %u flags %#x msgs %#llx count %u msg_size %u next_seq %llu arg %p",
		 fd, r.size, r.flags, (unsigned long long)r.msgs, r.count,
		 r.msg_size, (unsigned long long)r.next_seq, p);
	ret = ioctl(fd, CBM_IOC_RESTORE, p);
	check(w, ret, restore_errs);
	if (ret > 0 && (__u32)ret > n)
		bad_result(w, "RESTORE returned a count it was not given");
}

/*
 * Errors a malformed netlink request may get: EINVAL, or ERANGE from the
 * core for a nested attribute shorter than an attribute header, and
 * those of its ioctl
 */
static const int nl_errs[] = {
	EINVAL, ERANGE, ENOENT, EBUSY, EPERM, EACCES, E2BIG, ENOSPC, ENOMEM, 0
};

/* A malformed request may also name a command that does not exist */
static const int nl_bad_errs[] = {
	EINVAL, ERANGE, ENOENT, EBUSY, EPERM, EACCES, E2BIG, ENOSPC, ENOMEM,
	EOPNOTSUPP, 0
};

/* Errors of a well-formed request, by command */
static const int *nl_clean_errs(__u8 cmd)
{
	static const int get_errs[] = { ENOENT, 0 };
	static const int unlink_errs[] = { ENOENT, EBUSY, EACCES, 0 };
	static const int window_errs[] = { ENOENT, EPERM, 0 };
	static const int resize_errs[] = {
		ENOENT, EPERM, E2BIG, EBUSY, ENOSPC, ENOMEM, 0
	};

	switch (cmd) {
	case CBM_NL_CMD_CONV_GET:
		return get_errs;
	case CBM_NL_CMD_CONV_UNLINK:
		return unlink_errs;
	case CBM_NL_CMD_CONV_SET_WINDOW:
		return window_errs;
	default:
		return resize_errs;
	}
}

/* Random attributes of a request, good ones unless messing */
static void nl_put_attrs(struct worker *w, struct nl_msg *msg, __u8 cmd,
			 char *name)
{
	unsigned char junk[96];
	struct nlattr *nest;

	some_name(w, name);
	if (mess(w))
		nla_put(msg, CBM_NL_A_NAME, rnd(w, CBM_NAME_MAX + 8), name);
	else if (!mess(w))
		nla_put_string(msg, CBM_NL_A_NAME, name);
	if (cmd == CBM_NL_CMD_CONV_RESIZE && !mess(w))
		nla_put_u64(msg, CBM_NL_A_CAPACITY,
			    PICK(w, 0, 4096, 5000, 65536, FUZZ_MAX_CAPACITY,
				 FUZZ_MAX_CAPACITY + 1, ~0ULL));
	if (cmd == CBM_NL_CMD_CONV_SET_WINDOW && !mess(w)) {
		/* Never empty: libnl drops an empty nest, which is required */
		nest = nla_nest_start(msg, CBM_NL_A_WINDOW);
		nla_put_u32(msg, CBM_NL_WINDOW_A_FLAGS,
			    CHOOSE(w, (0, CBM_WINDOW_TURNS), (2)));
		if (one_in(w, 2))
			nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_MSGS,
				    PICK(w, 0, 1, 2, 5, 100));
		if (one_in(w, 3))
			nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_BYTES,
				    PICK(w, 0, 10, 1000, 100000));
		if (one_in(w, 3))
			nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_AGE_NS,
				    PICK(w, 0, 1000000, 5000000));
		if (mess(w))
			nla_put_u32(msg, rnd(w, CBM_NL_WINDOW_A_MAX + 3),
				    rnd(w, 1ULL << 32));
		nla_nest_end(msg, nest);
	}
	if (mess(w)) {
		fill_random(w, junk, sizeof(junk));
		nla_put(msg, rnd(w, CBM_NL_A_MAX + 3), rnd(w, sizeof(junk)),
			junk);
	}
}

/* Reads replies until the ack or the end of a dump; returns the error */
static int nl_replies(struct worker *w)
{
	struct sockaddr_nl peer;
	struct nlmsghdr *nlh;
	unsigned char *buf;
	int len, ret = 1;

	while (ret > 0) {
		len = nl_recv(w->nl, &peer, &buf, NULL);
		if (len <= 0)
			bad_result(w, "no reply");
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type == NLMSG_DONE)
				ret = 0;
			else if (nlh->nlmsg_type == NLMSG_ERROR)
				ret = ((struct nlmsgerr *)nlmsg_data(nlh))->error;
			else if (!nlmsg_find_attr(nlh, GENL_HDRLEN,
						  CBM_NL_A_NAME))
				bad_result(w, "reply without a name");
		}
		free(buf);
	}
	return ret;
}

/* Drains the events group: every event names its type and conversation */
static void nl_drain_events(struct worker *w)
{
	struct sockaddr_nl peer;
	struct nlmsghdr *nlh;
	struct nlattr *ev;
	unsigned char *buf;
	int len;

	while ((len = nl_recv(w->events, &peer, &buf, NULL)) > 0) {
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len)) {
			ev = nlmsg_find_attr(nlh, GENL_HDRLEN, CBM_NL_A_EVENT);
			if (!ev || nla_get_u32(ev) < CBM_NL_EVENT_CREATED ||
			    nla_get_u32(ev) > CBM_NL_EVENT_EVICTED ||
			    !nlmsg_find_attr(nlh, GENL_HDRLEN, CBM_NL_A_NAME))
				bad_result(w, "malformed event");
		}
		free(buf);
	}
	/* Nothing left, or events were dropped while nobody read them */
	if (len != -NLE_AGAIN && len != -NLE_NOMEM)
		bad_result(w, "event socket failed");
}

static void nl_setup(struct worker *w)
{
	w->nl = nl_socket_alloc();
	CHILD_CHECK(w->nl);
	nl_socket_enable_msg_peek(w->nl);
	CHILD_CHECK(genl_connect(w->nl) == 0);
	w->family = genl_ctrl_resolve(w->nl, CBM_GENL_NAME);
	CHILD_CHECK(w->family > 0);
	if (w->id)
		return;
	w->events = nl_socket_alloc();
	CHILD_CHECK(w->events);
	nl_socket_disable_seq_check(w->events);
	nl_socket_enable_msg_peek(w->events);
	CHILD_CHECK(genl_connect(w->events) == 0);
	CHILD_CHECK(nl_socket_add_membership(w->events,
			genl_ctrl_resolve_grp(w->nl, CBM_GENL_NAME,
					      CBM_GENL_MCGRP_EVENTS)) == 0);
	CHILD_CHECK(nl_socket_set_nonblocking(w->events) == 0);
}

static void do_netlink(struct worker *w)
{
	__u8 cmd = PICK(w, CBM_NL_CMD_CONV_GET, CBM_NL_CMD_CONV_UNLINK,
			CBM_NL_CMD_CONV_SET_WINDOW, CBM_NL_CMD_CONV_RESIZE);
	bool dump = cmd == CBM_NL_CMD_CONV_GET && one_in(w, 3);
	char name[CBM_NAME_MAX];
	bool bad = mess(w);
	struct nl_msg *msg;
	int ret;

	if (w->events)
		nl_drain_events(w);
	if (bad)
		cmd = PICK(w, CBM_NL_CMD_UNSPEC, CBM_NL_CMD_EVENT, 200);
	msg = nlmsg_alloc();
	CHILD_CHECK(msg);
	CHILD_CHECK(genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, w->family, 0,
				dump ? NLM_F_DUMP : 0, cmd, CBM_GENL_VERSION));
	if (!dump)
		nl_put_attrs(w, msg, cmd, name);
	else
		strcpy(name, "(dump)");
	describe(w, "netlink cmd %u%s name '%.*s'%s", cmd, dump ? " dump" : "",
		 CBM_NAME_MAX, name, w->dirty ? " (malformed)" : "");
	CHILD_CHECK(nl_send_auto(w->nl, msg) >= 0);
	nlmsg_free(msg);
	ret = nl_replies(w);
	errno = -ret;
	/* A well-formed request never fails validation */
	check(w, ret, bad ? nl_bad_errs :
		      w->dirty ? nl_errs : nl_clean_errs(cmd));
}

static const struct {
	void (*fn)(struct worker *w);
	unsigned int weight;
} ops[] = {
	{ do_bind, 6 }, { do_unlink, 2 }, { do_send, 8 },
	{ do_set_config, 3 }, { do_get, 6 }, { do_random_ioctl, 4 },
	{ do_write, 10 }, { do_read, 10 }, { do_lseek, 4 },
	{ do_positional, 1 }, { do_poll, 4 }, { do_epoll, 3 },
	{ do_mmap, 3 }, { do_map_op, 3 }, { do_open, 4 }, { do_close_dup, 3 }, { do_fcntl, 2 },
	{ do_param, 1 }, { do_set_window, 3 }, { do_unpin, 2 },
	{ do_read_window, 4 }, { do_seek, 3 }, { do_resize, 3 },
	{ do_set_autoresize, 2 }, { do_send_batch, 6 }, { do_restore, 3 },
	{ do_netlink, 4 },
};

static void run_worker(struct fuzz *fz, int id)
{
	struct sigevent sev = {
		.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1,
	};
	struct itimerspec its = {
		.it_value.tv_nsec = INTERRUPT_MS * 1000000L,
		.it_interval.tv_nsec = INTERRUPT_MS * 1000000L,
	};
	unsigned int total = 0, r, i;
	__u64 deadline = mono_ms() + fz->secs * 1000ULL;
	struct worker w = {
		.id = id,
		.unpriv = id == UNPRIV_WORKER,
		.rng = fz->seed + id,
		.fz = fz,
		.page = sysconf(_SC_PAGESIZE),
	};
	timer_t timer;

	for (i = 0; i < SLOTS; i++)
		w.fds[i] = i < SHARED_FDS ? fz->shared[i] : -1;
	w.arena = mmap(NULL, ARENA_PAGES * w.page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w.ro = mmap(NULL, w.page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	CHILD_CHECK(w.arena != MAP_FAILED && w.ro != MAP_FAILED);
	CHILD_CHECK(mprotect(w.arena + (ARENA_PAGES - 1) * w.page, w.page,
			     PROT_NONE) == 0);
	w.wbuf = mmap(NULL, WBUF_SIZE + w.page, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(w.wbuf != MAP_FAILED);
	CHILD_CHECK(mprotect(w.wbuf + WBUF_SIZE, w.page, PROT_NONE) == 0);
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	CHILD_CHECK(w.epfd >= 0);
	nl_setup(&w);
	if (w.unpriv)
		CHILD_CHECK(drop_privs(UNPRIV_UID, UNPRIV_GID) == 0);

	/* no SA_RESTART: a blocking call ends with EINTR */
	CHILD_CHECK(catch_signal(SIGUSR1, 0, on_interrupt) == 0);
	CHILD_CHECK(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
	CHILD_CHECK(timer_settime(timer, 0, &its, NULL) == 0);

	for (i = 0; i < ARRAY_SIZE(ops); i++)
		total += ops[i].weight;
	while (mono_ms() < deadline) {
		r = rnd(&w, total);
		for (i = 0; r >= ops[i].weight; i++)
			r -= ops[i].weight;
		w.n++;
		w.dirty = one_in(&w, 2);
		ops[i].fn(&w);
	}
	fz->ops[id] = w.n;
	_exit(0);
}

/*
 * Gives `default' back as the run found it, for the tests after this one:
 * no window, no auto-resize, no pinned message, @capacity bytes.
 */
static int restore_default(__u64 capacity)
{
	struct cbm_autoresize a = { .size = sizeof(a) };
	struct cbm_window win = { .size = sizeof(win) };
	struct cbm_read_window rw = { .size = sizeof(rw), .len = WBUF_SIZE };
	struct cbm_resize rs = { .size = sizeof(rs), .capacity = capacity };
	struct cbm_pin pin = { .size = sizeof(pin) };
	unsigned char *buf = malloc(WBUF_SIZE);
	int fd = cbm_open(O_RDWR);
	struct cbm_record rec;
	__u64 off, i;
	int ret = -1;

	rw.buf = (uintptr_t)buf;
	if (fd < 0 || !buf || ioctl(fd, CBM_IOC_SET_WINDOW, &win) ||
	    ioctl(fd, CBM_IOC_SET_AUTORESIZE, &a) ||
	    ioctl(fd, CBM_IOC_READ_WINDOW, &rw))
		goto out;
	for (off = 0, i = 0; i < rw.count; i++) {
		memcpy(&rec, buf + off, sizeof(rec));
		pin.seq = rec.seq;
		if ((rec.flags & CBM_MSG_PINNED) &&
		    ioctl(fd, CBM_IOC_UNPIN, &pin))
			goto out;
		off += CBM_RECORD_SPACE(rec.len);
	}
	ret = ioctl(fd, CBM_IOC_RESIZE, &rs);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

FIXTURE(fuzz) {
	struct fuzz fz;
	long long max_capacity, max_msg_size;
	__u64 default_capacity;	/* of `default' when the run started */
};

FIXTURE_SETUP(fuzz)
{
	const char *seed = getenv("CBM_FUZZ_SEED");
	struct cbm_info info;
	long long val;
	char tag[16];
	int i, fd;

	for (i = 0; i < SHARED_FDS; i++)
		self->fz.shared[i] = -1;
	self->fz.secs = env_secs("CBM_FUZZ_SECS", FUZZ_SECS);
	self->fz.seed = seed ? strtoull(seed, NULL, 0) :
			       now_ns() ^ (__u64)getpid() << 32;
	TH_LOG("seed %llu: CBM_FUZZ_SEED=%llu replays it, for %u s",
	       (unsigned long long)self->fz.seed,
	       (unsigned long long)self->fz.seed, self->fz.secs);
	for (i = 0; i < POOL; i++) {
		snprintf(tag, sizeof(tag), "fz%d", i);
		conv_name(self->fz.pool[i], tag);
	}
	self->fz.ops = mmap(NULL, WORKERS * sizeof(*self->fz.ops),
			    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
	ASSERT_NE(MAP_FAILED, self->fz.ops);

	ASSERT_EQ(0, param_read("max_capacity", &self->max_capacity));
	ASSERT_EQ(0, param_read("max_msg_size", &self->max_msg_size));
	ASSERT_EQ(0, param_read("max_pinned", &val));
	self->fz.max_pinned = val;
	ASSERT_EQ(0, param_read("default_capacity", &val));
	self->fz.default_capacity = val;
	ASSERT_EQ(0, param_write("max_capacity", FUZZ_MAX_CAPACITY));

	/* files every worker inherits: one description, many processes */
	self->fz.shared[0] = create_named(self->fz.pool[0], O_RDWR | O_NONBLOCK,
					  0666, 0, MIN_CAPACITY);
	self->fz.shared[1] = cbm_open(O_RDONLY | O_NONBLOCK);
	self->fz.shared[2] = cbm_open(O_WRONLY | O_NONBLOCK);
	self->fz.shared[3] = cbm_open(O_RDWR);
	for (i = 0; i < SHARED_FDS; i++)
		ASSERT_LE(0, self->fz.shared[i]);
	ASSERT_EQ(0, cbm_bind(self->fz.shared[2], "", CBM_BIND_ANON, 0600,
			      CBM_CONV_LOSSLESS, MIN_CAPACITY));
	/* a file of its own: the shared ones stay unbound for the workers */
	fd = cbm_open(O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	close(fd);
	self->default_capacity = info.capacity;
}

FIXTURE_TEARDOWN(fuzz)
{
	char longest[CBM_NAME_MAX];
	int i;

	if (self->default_capacity)
		EXPECT_EQ(0, restore_default(self->default_capacity));
	EXPECT_EQ(0, param_write("max_capacity", self->max_capacity));
	EXPECT_EQ(0, param_write("max_msg_size", self->max_msg_size));
	for (i = 0; i < SHARED_FDS; i++)
		if (self->fz.shared[i] >= 0)
			close(self->fz.shared[i]);
	for (i = 0; i < POOL; i++)
		unlink_name(self->fz.pool[i]);
	/* some_name() can also make the longest valid name: all 'a' */
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	unlink_name(longest);
	if (self->fz.ops && self->fz.ops != MAP_FAILED)
		munmap(self->fz.ops, WORKERS * sizeof(*self->fz.ops));
}

TEST_F_TIMEOUT(fuzz, random_calls, FUZZ_HARNESS_TIMEOUT)
{
	pid_t pids[WORKERS];
	__u64 total = 0;
	char name[CBM_NAME_MAX];
	int i, status, fd;

	alarm(self->fz.secs + 2 * FUZZ_SLACK);
	for (i = 0; i < WORKERS; i++) {
		pids[i] = fork_worker(self->fz.secs + FUZZ_SLACK);
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			run_worker(&self->fz, i);
	}
	for (i = 0; i < WORKERS; i++) {
		status = wait_child(pids[i]);
		EXPECT_EQ(0, status) TH_LOG("worker %d%s", i,
					    status == 128 + SIGALRM ?
					    " hung" : "");
		total += self->fz.ops[i];
	}
	TH_LOG("%llu calls", (unsigned long long)total);

	/* the module still works */
	ASSERT_EQ(0, param_write("max_msg_size", self->max_msg_size));
	conv_name(name, "after");
	fd = create_named(name, O_RDWR | O_NONBLOCK, 0600, 0, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(8, write_tagged(fd, 8, 42));
	EXPECT_EQ(42, read_tag(fd, 8));
	close(fd);
	EXPECT_EQ(0, unlink_name(name));
}

TEST_HARNESS_MAIN
