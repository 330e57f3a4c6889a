// SPDX-License-Identifier: GPL-2.0
/*
 * cbm-demo - a conversation between processes over /dev/cbm
 *
 * The parent creates the conversation "demo" and sends the system prompt.
 * A "user" and an "assistant" process take turns, each waiting for the
 * other's message with a blocking read(). A "tail" process follows the
 * conversation with poll() and prints every message with the header the
 * kernel stamped on it, and a "map" process follows it without copying,
 * through a read-only mmap() of the ring (userspace/lib/cbm_map.h), and
 * sums up what it saw. An "events" process runs "cbmctl watch demo"
 * from before the conversation is created and shows each generic netlink
 * event as it comes. Once the tail and the map reader have seen the whole
 * conversation, the parent shows it with cbmctl (dump, ls, stat), resizes
 * it and gives it a window of two turns, which evicts the older messages,
 * shows what is left and removes it with "cbmctl rm", which ends the
 * user's and the assistant's reads with end of file and the watch.
 *
 * Exits 0 only if every call and every cbmctl command succeeded, the tail
 * saw every message, in order, with the sender's pid and uid, the map
 * reader saw every message in order too, and the watch saw the
 * conversation created, resized, windowed, evicted from and unlinked.
 */
/* pipe2() */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cbm.h>

#include "cbm_map.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define __printf(a, b)	__attribute__((format(printf, a, b)))

#define CBM_DEV		"/dev/cbm"
#define DEMO_NAME	"demo"
#define DEMO_MODE	0600
/* Found through PATH: /bin/cbmctl in the VM */
#define CBMCTL		"cbmctl"
/* Most arguments of one cbmctl command the parent runs */
#define CBMCTL_MAX_ARGS	8

#define NSEC_PER_SEC	1000000000ULL
#define NSEC_PER_MSEC	1000000ULL

/*
 * Start with room for a header only: the first message already takes the
 * EMSGSIZE and FIONREAD path every reader needs for messages larger than
 * its buffer.
 */
#define READ_BUF_INIT	sizeof(struct cbm_record)

/* The assistant "thinks" this long, so the timestamps show the turns */
#define THINK_NS	150000000L

static const char system_prompt[] =
	"You are a concise assistant. Answer in one sentence.";

static const struct exchange {
	const char *question;
	const char *answer;
} script[] = {
	{ "What is /dev/cbm?",
	  "A device that keeps conversations as message logs in kernel memory." },
	{ "Who else can read what we say here?",
	  "Only root: this conversation was created with mode 0600." },
	{ "Could I send a message in someone else's name?",
	  "No: the kernel stamps the sequence number, time, pid and uid of every message." },
	{ "What happens when the buffer fills up?",
	  "The oldest messages are evicted, and every reader learns how many it lost." },
	{ "How does the tail process keep up with us?",
	  "It sleeps in poll() and reads one record, header first, per read()." },
};

/* The system prompt, then a question and an answer per exchange */
#define NR_MESSAGES	(1 + 2 * ARRAY_SIZE(script))

static const char * const role_names[__CBM_ROLE_MAX] = {
	[CBM_ROLE_OTHER]	= "other",
	[CBM_ROLE_SYSTEM]	= "system",
	[CBM_ROLE_USER]		= "user",
	[CBM_ROLE_ASSISTANT]	= "assistant",
	[CBM_ROLE_TOOL]		= "tool",
};

enum {
	CHILD_EVENTS, CHILD_USER, CHILD_ASSISTANT, CHILD_MAP, CHILD_TAIL,
	NR_CHILDREN
};

struct child {
	const char *name;
	int (*run)(void);
	pid_t pid;
	bool running;
};

static int user_run(void);
static int assistant_run(void);
static int map_run(void);
static int tail_run(void);
static int events_run(void);

static struct child children[NR_CHILDREN] = {
	[CHILD_EVENTS]		= { .name = "events", .run = events_run },
	[CHILD_USER]		= { .name = "user", .run = user_run },
	[CHILD_ASSISTANT]	= { .name = "assistant", .run = assistant_run },
	[CHILD_MAP]		= { .name = "map", .run = map_run },
	[CHILD_TAIL]		= { .name = "tail", .run = tail_run },
};

/* Which process is talking, for error messages */
static const char *self = "parent";

/* The events process writes a byte here once its watch is listening */
static int ready_pipe[2] = { -1, -1 };

/* A file bound to the demo conversation, reading in record format */
struct reader {
	int fd;
	char *buf;
	size_t size;
};

static int __printf(1, 2) complain(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cbm-demo: %s: %s\n", self, msg);
	return -1;
}

static int fail(const char *what)
{
	return complain("%s: %s", what, strerror(errno));
}

static const char *role_name(unsigned int role)
{
	return role < __CBM_ROLE_MAX ? role_names[role] : "?";
}

/*
 * Every process opens its own file: the read cursor belongs to the open
 * file description, so a file shared across fork() would share it too.
 */
static int conv_open(int oflags, __u32 bind_flags)
{
	struct cbm_bind bind = {
		.size = sizeof(bind),
		.flags = bind_flags,
		.mode = DEMO_MODE,
		.name = DEMO_NAME,
	};
	int fd;

	fd = open(CBM_DEV, oflags | O_CLOEXEC);
	if (fd < 0)
		return fail("open " CBM_DEV);
	if (ioctl(fd, CBM_IOC_BIND, &bind)) {
		fail("CBM_IOC_BIND " DEMO_NAME);
		close(fd);
		return -1;
	}
	return fd;
}

static int send_msg(int fd, enum cbm_role role, const char *text)
{
	struct cbm_send msg = {
		.size = sizeof(msg),
		.role = role,
		.len = strlen(text),
		.data = (uintptr_t)text,
	};

	if (ioctl(fd, CBM_IOC_SEND, &msg))
		return fail("CBM_IOC_SEND");
	return 0;
}

static void reader_close(struct reader *r)
{
	free(r->buf);
	if (r->fd >= 0 && close(r->fd))
		fail("close");
}

static int reader_open(struct reader *r, int oflags)
{
	struct cbm_fd_config cfg = { .size = sizeof(cfg) };

	r->size = READ_BUF_INIT;
	r->buf = malloc(r->size);
	r->fd = conv_open(oflags, 0);
	if (!r->buf || r->fd < 0) {
		if (!r->buf)
			complain("out of memory");
		goto err_close;
	}
	/* Keep the role write() would use; change only the read format */
	if (ioctl(r->fd, CBM_IOC_GET_CONFIG, &cfg)) {
		fail("CBM_IOC_GET_CONFIG");
		goto err_close;
	}
	cfg.flags |= CBM_FD_RECORDS;
	if (ioctl(r->fd, CBM_IOC_SET_CONFIG, &cfg)) {
		fail("CBM_IOC_SET_CONFIG");
		goto err_close;
	}
	return 0;

err_close:
	reader_close(r);
	return -1;
}

/*
 * Read the next record into @r's buffer.
 *
 * Return: 1 and *@recp set, 0 at end of file (the conversation was
 * unlinked and drained), -EAGAIN if a non-blocking file has nothing to
 * read, or -1 after reporting an error.
 */
static int read_record(struct reader *r, const struct cbm_record **recp)
{
	const struct cbm_record *rec;
	ssize_t n;
	int need;
	char *buf;

	for (;;) {
		n = read(r->fd, r->buf, r->size);
		if (n >= 0 || errno != EMSGSIZE)
			break;
		/* Nothing was consumed: ask how big the record is, retry */
		if (ioctl(r->fd, FIONREAD, &need))
			return fail("FIONREAD");
		if (need <= 0 || (size_t)need <= r->size)
			return complain("read: EMSGSIZE, but FIONREAD says %d bytes",
					need);
		buf = realloc(r->buf, need);
		if (!buf)
			return complain("out of memory");
		r->buf = buf;
		r->size = need;
	}
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : fail("read");
	if (!n)
		return 0;

	rec = (const struct cbm_record *)r->buf;
	if ((size_t)n < sizeof(*rec) || rec->hdr_len < sizeof(*rec) ||
	    rec->hdr_len + rec->len > (size_t)n)
		return complain("read: malformed record of %zd bytes", n);
	*recp = rec;
	return 1;
}

static const char *payload(const struct cbm_record *rec)
{
	return (const char *)rec + rec->hdr_len;
}

/* Skip records (our own messages too) until the next message from @role */
static int wait_for(struct reader *r, enum cbm_role role,
		    const struct cbm_record **recp)
{
	int ret;

	do {
		ret = read_record(r, recp);
		if (ret < 0)
			return -1;
		if (!ret)
			return complain("conversation ended while waiting for the %s",
					role_name(role));
	} while ((*recp)->type != CBM_RECORD_MSG || (*recp)->role != role);
	return 0;
}

/*
 * Stay alive until the conversation is unlinked: the pid in a header is
 * translated when it is read, and a sender that has exited may show as 0.
 */
static int wait_for_end(struct reader *r)
{
	const struct cbm_record *rec;
	int ret;

	do {
		ret = read_record(r, &rec);
	} while (ret > 0);
	return ret;
}

static int user_run(void)
{
	const struct cbm_record *rec;
	struct reader r;
	size_t i;
	int ret = -1;

	if (reader_open(&r, O_RDWR))
		return -1;
	printf("cbm-demo: user (pid %d) joined \"%s\"\n", getpid(), DEMO_NAME);
	for (i = 0; i < ARRAY_SIZE(script); i++) {
		if (send_msg(r.fd, CBM_ROLE_USER, script[i].question) ||
		    wait_for(&r, CBM_ROLE_ASSISTANT, &rec))
			goto out;
	}
	ret = wait_for_end(&r);
out:
	reader_close(&r);
	return ret;
}

static const char *answer_to(const char *question, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(script); i++) {
		if (strlen(script[i].question) == len &&
		    !memcmp(script[i].question, question, len))
			return script[i].answer;
	}
	return NULL;
}

static int assistant_run(void)
{
	const struct timespec think = { .tv_nsec = THINK_NS };
	const struct cbm_record *rec;
	const char *answer;
	struct reader r;
	size_t i;
	int ret = -1;

	if (reader_open(&r, O_RDWR))
		return -1;
	printf("cbm-demo: assistant (pid %d) joined \"%s\"\n", getpid(),
	       DEMO_NAME);
	for (i = 0; i < ARRAY_SIZE(script); i++) {
		if (wait_for(&r, CBM_ROLE_USER, &rec))
			goto out;
		answer = answer_to(payload(rec), rec->len);
		if (!answer) {
			complain("unexpected question \"%.*s\"", (int)rec->len,
				 payload(rec));
			goto out;
		}
		if (nanosleep(&think, NULL)) {
			fail("nanosleep");
			goto out;
		}
		if (send_msg(r.fd, CBM_ROLE_ASSISTANT, answer))
			goto out;
	}
	ret = wait_for_end(&r);
out:
	reader_close(&r);
	return ret;
}

/* The pid the kernel must have stamped on a message from @role */
static pid_t sender_of(unsigned int role)
{
	switch (role) {
	case CBM_ROLE_SYSTEM:
		return getppid();
	case CBM_ROLE_USER:
		return children[CHILD_USER].pid;
	case CBM_ROLE_ASSISTANT:
		return children[CHILD_ASSISTANT].pid;
	}
	return 0;
}

/*
 * Print one record. Return: 0 if it is the message @expect with the
 * sender's pid and uid, -1 otherwise.
 */
static int show_record(const struct cbm_record *rec, __u64 expect)
{
	time_t sec = rec->ts_ns / NSEC_PER_SEC;
	struct tm tm;

	if (rec->type == CBM_RECORD_GAP) {
		printf("  -- lost %llu messages from #%llu --\n", rec->lost,
		       rec->seq);
		return complain("messages were lost");
	}
	if (rec->type != CBM_RECORD_MSG)
		return complain("unknown record type %u", rec->type);
	if (!localtime_r(&sec, &tm))
		return fail("localtime_r");
	printf("  #%-3llu %02d:%02d:%02d.%03llu  pid %-5u uid %-5u %-9s  %.*s\n",
	       rec->seq, tm.tm_hour, tm.tm_min, tm.tm_sec,
	       rec->ts_ns % NSEC_PER_SEC / NSEC_PER_MSEC, rec->pid, rec->uid,
	       role_name(rec->role), (int)rec->len, payload(rec));

	if (rec->seq != expect)
		return complain("got message #%llu, expected #%llu", rec->seq,
				expect);
	if (rec->pid != (__u32)sender_of(rec->role) || rec->uid != geteuid())
		return complain("#%llu: wrong sender pid %u uid %u", rec->seq,
				rec->pid, rec->uid);
	return 0;
}

static int tail_run(void)
{
	const struct cbm_record *rec;
	struct pollfd pfd;
	struct reader r;
	__u64 expect = 0;
	int ret = 0;
	int n;

	if (reader_open(&r, O_RDONLY | O_NONBLOCK))
		return -1;
	printf("cbm-demo: tail (pid %d) follows \"%s\" with poll() in record format\n",
	       getpid(), DEMO_NAME);
	pfd.fd = r.fd;
	pfd.events = POLLIN;
	while (expect < NR_MESSAGES) {
		n = read_record(&r, &rec);
		if (n == -EAGAIN) {
			if (poll(&pfd, 1, -1) < 0) {
				ret = fail("poll");
				break;
			}
			continue;
		}
		if (n <= 0) {
			if (!n)
				complain("conversation ended after %llu of %zu messages",
					 expect, NR_MESSAGES);
			ret = -1;
			break;
		}
		if (show_record(rec, expect))
			ret = -1;
		expect = rec->seq + (rec->type == CBM_RECORD_GAP ? rec->lost : 1);
	}
	reader_close(&r);
	return ret;
}

/*
 * Follow the conversation through a read-only mapping of its ring: each
 * message is looked at in place, and cbm_map_release() confirms it was
 * not overwritten meanwhile. No system call per message, only to sleep.
 */
static int map_run(void)
{
	__u64 bytes = 0, seen = 0;
	struct cbm_map_rec rec;
	struct cbm_map m;
	int fd, ret, err;

	fd = conv_open(O_RDONLY, 0);
	if (fd < 0)
		return -1;
	err = cbm_map_open(&m, fd, CBM_MAP_OLDEST);
	if (err) {
		errno = -err;
		close(fd);
		return fail("mmap");
	}
	while (seen < NR_MESSAGES) {
		ret = cbm_map_peek(&m, &rec);
		if (ret < 0) {
			errno = -ret;
			ret = fail("cbm_map_peek");
			break;
		}
		if (!ret) {
			if (cbm_map_unlinked(&m)) {
				ret = complain("map: conversation ended after %llu of %zu messages",
					       seen, NR_MESSAGES);
				break;
			}
			ret = cbm_map_wait(&m, -1);
			if (ret < 0) {
				errno = -ret;
				ret = fail("cbm_map_wait");
				break;
			}
			continue;
		}
		if (rec.hdr.type != CBM_RECORD_MSG || rec.hdr.seq != seen) {
			ret = complain("map: expected message %llu, got %s %llu",
				       seen, rec.hdr.type == CBM_RECORD_GAP ?
				       "a gap at" : "message", rec.hdr.seq);
			break;
		}
		if (cbm_map_release(&m))
			continue;
		bytes += rec.hdr.len;
		seen++;
	}
	if (ret >= 0)
		printf("cbm-demo: map (pid %d) read all %llu messages, %llu payload bytes, in place through a read-only mmap() of the ring\n",
		       getpid(), seen, bytes);
	cbm_map_close(&m);
	close(fd);
	return ret < 0 ? -1 : 0;
}

/*
 * Run "cbmctl ARGS..." with its output on ours. Return: 0 if it exited
 * with status 0, -1 otherwise.
 */
static int cbmctl(const char *arg, ...)
{
	const char *argv[CBMCTL_MAX_ARGS + 2] = { CBMCTL };
	size_t argc = 1;
	va_list ap;
	int status;
	pid_t pid;

	va_start(ap, arg);
	for (; arg && argc <= CBMCTL_MAX_ARGS; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	printf("cbm-demo: $ %s", CBMCTL);
	for (argc = 1; argv[argc]; argc++)
		printf(" %s", argv[argc]);
	printf("\n");
	pid = fork();
	if (pid < 0)
		return fail("fork");
	if (!pid) {
		execvp(CBMCTL, (char *const *)argv);
		fail("exec " CBMCTL);
		_exit(EXIT_FAILURE);
	}
	if (waitpid(pid, &status, 0) < 0)
		return fail("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return complain("%s %s failed", CBMCTL, argv[1]);
	return 0;
}

/*
 * Follow the conversation's events with "cbmctl watch", each line shown
 * as it comes, until the unlink. Tells the parent through ready_pipe
 * when the watch listens, so that no event is missed.
 */
static int events_run(void)
{
	static const char * const want[] = {
		"created", "resized", "window", "evicted", "unlinked",
	};
	const size_t unlinked = ARRAY_SIZE(want) - 1;
	bool seen[ARRAY_SIZE(want)] = { false };
	int out[2], status, ret = 0;
	char line[512];
	size_t i, len;
	pid_t pid;
	FILE *in;

	/* Close-on-exec: only the dup2()ed copies go to cbmctl */
	if (pipe2(out, O_CLOEXEC))
		return fail("pipe");
	pid = fork();
	if (pid < 0)
		return fail("fork");
	if (!pid) {
		if (dup2(out[1], STDOUT_FILENO) < 0 ||
		    dup2(out[1], STDERR_FILENO) < 0)
			_exit(EXIT_FAILURE);
		execlp(CBMCTL, CBMCTL, "watch", DEMO_NAME, (char *)NULL);
		_exit(EXIT_FAILURE);
	}
	close(out[1]);
	in = fdopen(out[0], "r");
	if (!in) {
		close(out[0]);
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		return fail("fdopen");
	}
	while (!seen[unlinked] && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		if (strstr(line, "watching events")) {
			printf("cbm-demo: events: \"%s watch %s\" (pid %d) is listening\n",
			       CBMCTL, DEMO_NAME, pid);
			if (write(ready_pipe[1], "", 1) != 1)
				ret = fail("write");
			continue;
		}
		printf("cbm-demo: event: %s\n", line);
		for (i = 0; i < ARRAY_SIZE(want); i++) {
			len = strlen(want[i]);
			if (!strncmp(line, want[i], len) && line[len] == ' ')
				seen[i] = true;
		}
	}
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	fclose(in);
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		if (!seen[i])
			ret = complain("no \"%s\" event", want[i]);
	}
	return ret;
}

/*
 * What cbmctl shows of the finished conversation; then a resize and a
 * window of two turns, which evicts all but the last two exchanges.
 */
static int show_conversation(void)
{
	if (cbmctl("dump", DEMO_NAME, NULL) || cbmctl("ls", NULL) ||
	    cbmctl("stat", DEMO_NAME, NULL) ||
	    cbmctl("resize", DEMO_NAME, "64K", NULL) ||
	    cbmctl("window", DEMO_NAME, "--msgs", "2", "--turns", NULL) ||
	    cbmctl("dump", DEMO_NAME, "--json", NULL))
		return -1;
	return 0;
}

static int spawn(struct child *c)
{
	c->pid = fork();
	if (c->pid < 0)
		return fail("fork");
	if (!c->pid) {
		self = c->name;
		exit(c->run() ? EXIT_FAILURE : EXIT_SUCCESS);
	}
	c->running = true;
	return 0;
}

static void stop_children(void)
{
	size_t i;

	for (i = 0; i < NR_CHILDREN; i++) {
		if (children[i].running && kill(children[i].pid, SIGKILL))
			fail("kill");
	}
}

static struct child *child_of(pid_t pid)
{
	size_t i;

	for (i = 0; i < NR_CHILDREN; i++) {
		if (children[i].running && children[i].pid == pid)
			return &children[i];
	}
	return NULL;
}

/*
 * Wait for the children. Once the tail and the map reader have seen the
 * whole conversation, or as soon as anything failed, show it with cbmctl
 * and unlink it: that ends the reads of the user and the assistant, which
 * stayed bound for the tail's sake, and the watch. If the unlink fails
 * nothing would end them, so they are killed.
 */
static bool finish(bool ok)
{
	bool unlinked = false;
	struct child *c;
	int status;
	pid_t pid;

	for (;;) {
		if (!unlinked && (!ok || (!children[CHILD_TAIL].running &&
					  !children[CHILD_MAP].running))) {
			if (ok && show_conversation())
				ok = false;
			if (cbmctl("rm", DEMO_NAME, NULL)) {
				stop_children();
				ok = false;
			}
			unlinked = true;
		}
		pid = wait(&status);
		if (pid < 0) {
			/* ECHILD: every child has been reaped */
			if (errno == ECHILD)
				return ok;
			fail("wait");
			return false;
		}
		c = child_of(pid);
		if (!c)
			continue;
		c->running = false;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			complain("%s (pid %d) failed", c->name, pid);
			ok = false;
		}
	}
}

int main(void)
{
	char ready;
	bool ok;
	size_t i;
	int fd;

	/*
	 * Line buffering writes each line with one write(), so lines from
	 * different processes never mix, and leaves nothing buffered for
	 * fork() to duplicate.
	 */
	if (setvbuf(stdout, NULL, _IOLBF, 0)) {
		complain("setvbuf failed");
		return EXIT_FAILURE;
	}

	/* The watch first, so that it sees the conversation created */
	/*
	 * Close-on-exec, so that the cbmctl the events process runs does not
	 * hold the write end: if that process fails, the read below must see
	 * end of file.
	 */
	if (pipe2(ready_pipe, O_CLOEXEC)) {
		fail("pipe");
		return EXIT_FAILURE;
	}
	ok = !spawn(&children[CHILD_EVENTS]);
	close(ready_pipe[1]);
	/* End of file instead of a byte: the events process failed */
	if (ok && read(ready_pipe[0], &ready, 1) != 1)
		ok = !complain("%s watch did not start", CBMCTL);
	close(ready_pipe[0]);
	fd = ok ? conv_open(O_WRONLY, CBM_BIND_CREATE | CBM_BIND_EXCL) : -1;
	if (fd < 0) {
		stop_children();
		while (wait(NULL) > 0)
			;
		return EXIT_FAILURE;
	}
	printf("cbm-demo: parent (pid %d) created \"%s\" with mode %04o\n",
	       getpid(), DEMO_NAME, DEMO_MODE);

	ok = !send_msg(fd, CBM_ROLE_SYSTEM, system_prompt);
	/* The tail comes last: it checks the pids of the others */
	for (i = CHILD_EVENTS + 1; ok && i < NR_CHILDREN; i++)
		ok = !spawn(&children[i]);
	ok = finish(ok);

	if (close(fd)) {
		fail("close");
		ok = false;
	}
	if (ok)
		printf("cbm-demo: ok\n");
	if (fflush(stdout) || ferror(stdout)) {
		complain("writing the output failed");
		ok = false;
	}
	return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
