// SPDX-License-Identifier: GPL-2.0
/*
 * cbm: the memory limits. max_total_bytes caps what all conversations
 * hold, max_user_bytes what the conversations of one owner hold, and
 * max_pinned the pinned messages of one conversation; a cap counts ring
 * capacity plus the CBM_RECORD_SPACE() of each pinned copy, applies to
 * root too and fails with ENOSPC. The rings are charged to the creator's
 * memory cgroup, which fails them with ENOMEM and never OOM-kills.
 *
 * Other conversations (`default`, those of other tests) count against the
 * caps too, so each test first measures what the kernel counts now (see
 * probe_usage()) and then sets the cap relative to that, byte-exact.
 */
#include <assert.h>
#include <ctype.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "kselftest_harness.h"
#include "cbm_util.h"

/* The ring the tests create most */
#define SMALL_CAP	(64 * 1024ULL)

/* Parameter defaults from the module's documentation */
#define DEFAULT_MAX_PINNED	65536
#define TOTAL_RAM_SHARE		4	/* max_total_bytes: a quarter of RAM */
#define USER_RAM_SHARE		8	/* max_user_bytes: an eighth */

/*
 * Payloads of pinned messages. PIN_LEN2 fills its record to the alignment,
 * so one byte more takes CBM_RECORD_ALIGN bytes more.
 */
#define PIN_LEN		100
#define PIN_LEN2	8
static_assert((REC_HDR + PIN_LEN2) % CBM_RECORD_ALIGN == 0,
	      "PIN_LEN2 must fill its record to the alignment");

/* Conversation names one test may create; the teardown unlinks them */
#define MAX_NAMES	64

/* Seconds the unprivileged agent lives at most */
#define AGENT_SECS	60

#define MIB		(1024 * 1024LL)

#define CG_ROOT		"/sys/fs/cgroup"
/* memory.max of the group whose allocations must fail */
#define MEMCG_MAX	(8 * MIB)
/* A ring larger than MEMCG_MAX, within the default max_capacity */
#define BIG_CAP		(32 * MIB)
/* The group and ring of the charging test, and the error allowed */
#define CHARGE_MAX	(32 * MIB)
#define CHARGE_CAP	(4 * MIB)
#define CHARGE_SLACK	MIB
/* Seconds a memcg helper process lives at most */
#define MEMCG_SECS	20

/* Milliseconds writers keep the ring full in the auto-resize test */
#define FULL_MS		300
/* Milliseconds the ring may take to grow once the cap allows it */
#define GROW_MS		3000
/* A message size that fills a MIN_CAPACITY ring in a few writes */
#define FILL_LEN	1000
/* Messages that go twice round a SMALL_CAP ring */
#define WRAP_MSGS	((int)(2 * SMALL_CAP / FILL_LEN))

static const char * const saved_params[] = {
	"max_total_bytes", "max_user_bytes", "max_pinned", "max_capacity",
};

/*
 * A helper process running as UNPRIV_UID:UNPRIV_GID that creates and
 * unlinks conversations on request, so the tests can move the limits (as
 * root) between its attempts.
 */
struct agent {
	pid_t pid;
	int req;	/* requests to the agent */
	int rep;	/* its replies: 0 or an errno */
};

enum agent_op {
	AGENT_CREATE = 1,	/* a named conversation, left in place */
	AGENT_ANON,		/* an anonymous one, freed at once */
	AGENT_UNLINK,
};

struct agent_req {
	__u32 op;
	__u64 capacity;
	char name[CBM_NAME_MAX];
};

FIXTURE(limits) {
	long long params[ARRAY_SIZE(saved_params)];
	char names[MAX_NAMES][CBM_NAME_MAX];
	int nnames;
	struct agent agent;
	pid_t child;		/* a memcg helper process, or 0 */
	char cg[128];		/* the test's cgroup, "" if none */
	bool cg_mounted;	/* this test mounted cgroup2 */
	bool cg_enabled;	/* this test enabled the memory controller */
};

FIXTURE_SETUP(limits)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(saved_params); i++)
		ASSERT_EQ(0, param_read(saved_params[i], &self->params[i]));
}

static int agent_stop(struct agent *a)
{
	pid_t pid = a->pid;

	if (!pid)
		return 0;
	close(a->req);
	close(a->rep);
	a->pid = 0;
	/* the agent exits when its request pipe closes */
	return wait_child(pid);
}

FIXTURE_TEARDOWN(limits)
{
	unsigned int i;
	int n;

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		wait_child(self->child);
	}
	EXPECT_EQ(0, agent_stop(&self->agent));
	for (n = 0; n < self->nnames; n++)
		unlink_name(self->names[n]);
	if (self->cg[0])
		EXPECT_EQ(0, rmdir(self->cg)) TH_LOG("rmdir %s: %s", self->cg,
						     strerror(errno));
	if (self->cg_enabled)
		EXPECT_EQ(0, write_file(CG_ROOT "/cgroup.subtree_control",
					"-memory"));
	if (self->cg_mounted)
		EXPECT_EQ(0, umount(CG_ROOT));
	for (i = 0; i < ARRAY_SIZE(saved_params); i++)
		EXPECT_EQ(0, param_write(saved_params[i], self->params[i]));
}

/* A fresh conversation name, unlinked by the teardown */
static const char *new_name(struct __test_metadata *_metadata,
			    FIXTURE_DATA(limits) *self, const char *tag)
{
	char t[32];

	ASSERT_GT(MAX_NAMES, self->nnames);
	snprintf(t, sizeof(t), "%s%d", tag, self->nnames);
	conv_name(self->names[self->nnames], t);
	return self->names[self->nnames++];
}

/* Creates a conversation anyone may use and closes it: 0 or an errno */
static int create_errno(const char *name, __u64 capacity)
{
	int fd = create_named(name, O_RDWR, 0666, 0, capacity);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int anon_errno(__u64 capacity)
{
	int fd = anon_open(capacity);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/*
 * CBM_IOC_SEND of a @len byte system message with @flags; stores its
 * sequence number in *seq if not NULL.
 */
static int send_flags(int fd, __u32 flags, __u32 len, __u64 *seq)
{
	static const unsigned char payload[SMALL_CAP];

	return send_tok(fd, CBM_ROLE_SYSTEM, flags, payload, len, 0, seq);
}

static int pin(int fd, __u32 len, __u64 *seq)
{
	return send_flags(fd, CBM_MSG_PINNED, len, seq);
}

/* What a call a cap must refuse returned, @ret, and errno say ENOSPC */
static void expect_enospc(struct __test_metadata *_metadata, int ret)
{
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOSPC, errno);
}

/* What a failed operation must not have changed */
static bool info_same(const struct cbm_info *a, const struct cbm_info *b)
{
	return a->capacity == b->capacity && a->used == b->used &&
	       a->first_seq == b->first_seq && a->next_seq == b->next_seq &&
	       a->msgs == b->msgs && a->evicted == b->evicted &&
	       a->resizes == b->resizes && a->pinned == b->pinned &&
	       a->pinned_bytes == b->pinned_bytes &&
	       a->config_gen == b->config_gen;
}

/* What `default` holds: its ring and its pinned copies */
static long long default_charge(struct __test_metadata *_metadata)
{
	struct cbm_info info;
	int fd;

	fd = cbm_open(O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, read_info(fd, &info));
	close(fd);
	return info.capacity + info.pinned_bytes;
}

static void agent_serve(int req, int rep)
{
	struct agent_req r;
	int err;

	CHILD_CHECK(drop_privs(UNPRIV_UID, UNPRIV_GID) == 0);
	while (read(req, &r, sizeof(r)) == sizeof(r)) {
		switch (r.op) {
		case AGENT_CREATE:
			err = create_errno(r.name, r.capacity);
			break;
		case AGENT_ANON:
			err = anon_errno(r.capacity);
			break;
		case AGENT_UNLINK:
			err = unlink_name(r.name) ? errno : 0;
			break;
		default:
			_exit(1);
		}
		CHILD_CHECK(write(rep, &err, sizeof(err)) == sizeof(err));
	}
	_exit(0);
}

/*
 * Starts the agent. Call it before opening any conversation: the agent
 * would inherit the files and keep their conversations alive.
 */
static void agent_start(struct __test_metadata *_metadata, struct agent *a)
{
	int to[2], from[2];

	ASSERT_EQ(0, pipe2(to, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(from, O_CLOEXEC));
	a->pid = fork_worker(AGENT_SECS);
	ASSERT_LE(0, a->pid);
	if (a->pid == 0) {
		close(to[1]);
		close(from[0]);
		agent_serve(to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	a->req = to[1];
	a->rep = from[0];
}

/* Returns the agent's answer to one request: 0 or an errno */
static int agent_call(struct __test_metadata *_metadata, struct agent *a,
		      enum agent_op op, const char *name, __u64 capacity)
{
	struct pollfd pfd = { .fd = a->rep, .events = POLLIN };
	struct agent_req r;
	int err;

	memset(&r, 0, sizeof(r));
	r.op = op;
	r.capacity = capacity;
	copy_name(r.name, name ? name : "");
	ASSERT_EQ(sizeof(r), write(a->req, &r, sizeof(r)));
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS)) TH_LOG("the agent does not answer");
	ASSERT_EQ(sizeof(err), read(a->rep, &err, sizeof(err)))
		TH_LOG("the agent died");
	return err;
}

/* Creates @name as root, or as the agent if @a is not NULL: 0 or errno */
static int create_as(struct __test_metadata *_metadata, struct agent *a,
		     const char *name, __u64 capacity)
{
	return a ? agent_call(_metadata, a, AGENT_CREATE, name, capacity) :
		   create_errno(name, capacity);
}

/*
 * What the kernel counts against the cap @param now, for root or, with @a,
 * for the agent's uid. Creating a MIN_CAPACITY conversation succeeds
 * exactly when usage + MIN_CAPACITY <= cap, so the smallest cap that lets
 * it through, found by bisection, gives the usage to the byte. Rings and
 * record spaces are multiples of CBM_RECORD_ALIGN: any other result means
 * the kernel compares with the cap off by some bytes.
 */
static long long probe_usage(struct __test_metadata *_metadata,
			     FIXTURE_DATA(limits) *self, const char *param,
			     struct agent *a)
{
	const char *name = new_name(_metadata, self, "probe");
	long long lo = MIN_CAPACITY - 1, orig, hi, mid;
	int err;

	ASSERT_EQ(0, param_read(param, &orig));
	hi = orig;
	err = create_as(_metadata, a, name, MIN_CAPACITY);
	ASSERT_EQ(0, err) TH_LOG("%s %lld leaves no room: %s", param, hi,
				 strerror(err));
	ASSERT_EQ(0, unlink_name(name));
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		ASSERT_EQ(0, param_write(param, mid));
		err = create_as(_metadata, a, name, MIN_CAPACITY);
		if (err == 0) {
			ASSERT_EQ(0, unlink_name(name));
			hi = mid;
		} else {
			ASSERT_EQ(ENOSPC, err) TH_LOG("%s %lld", param, mid);
			lo = mid;
		}
	}
	ASSERT_EQ(0, (hi - MIN_CAPACITY) % CBM_RECORD_ALIGN)
		TH_LOG("%s: a %d byte ring fits under %lld, not under %lld",
		       param, MIN_CAPACITY, hi, hi - 1);
	ASSERT_EQ(0, param_write(param, orig));
	return hi - MIN_CAPACITY;
}

static void expect_enospc_create(struct __test_metadata *_metadata,
				 FIXTURE_DATA(limits) *self, __u64 capacity)
{
	const char *name = new_name(_metadata, self, "over");
	int ret;

	ret = create_named(name, O_RDWR, 0600, 0, capacity);
	EXPECT_EQ(-1, ret) TH_LOG("a %llu byte ring passed the cap",
				  (unsigned long long)capacity);
	EXPECT_EQ(ENOSPC, errno);
	/* a refused creation leaves no name behind */
	ret = open_named(name, O_RDONLY);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOENT, errno);
	ret = anon_open(capacity);
	EXPECT_EQ(-1, ret) TH_LOG("a %llu byte anonymous ring passed the cap",
				  (unsigned long long)capacity);
	EXPECT_EQ(ENOSPC, errno);
}

static int create_ok(struct __test_metadata *_metadata,
		     FIXTURE_DATA(limits) *self, const char *tag,
		     __u64 capacity)
{
	int fd = create_named(new_name(_metadata, self, tag), O_RDWR, 0600, 0,
			      capacity);

	ASSERT_LE(0, fd) TH_LOG("creating a %llu byte ring: %s",
				(unsigned long long)capacity, strerror(errno));
	return fd;
}

/* Unlinks the conversation of @fd, created by create_ok(), and closes it */
static void free_conv(struct __test_metadata *_metadata, int fd)
{
	struct cbm_info info;

	ASSERT_EQ(0, read_info(fd, &info));
	ASSERT_EQ(0, unlink_name(info.name));
	close(fd);
}

TEST_F(limits, params_root_writable)
{
	struct stat st;
	char path[128];
	long long val;
	unsigned int i;

	/* the new ones; saved_params ends with the older max_capacity */
	for (i = 0; i < ARRAY_SIZE(saved_params) - 1; i++) {
		snprintf(path, sizeof(path), CBM_PARAM_DIR "%s",
			 saved_params[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s missing", path);
		EXPECT_EQ(0644, st.st_mode & 07777) TH_LOG("%s", path);
		EXPECT_EQ(0, st.st_uid);
		ASSERT_EQ(0, param_write(saved_params[i],
					 self->params[i] + MIN_CAPACITY));
		ASSERT_EQ(0, param_read(saved_params[i], &val));
		EXPECT_EQ(self->params[i] + MIN_CAPACITY, val);
	}
}

static void params_denied(const char *name)
{
	long long val;
	unsigned int i;

	(void)name;
	for (i = 0; i < ARRAY_SIZE(saved_params) - 1; i++) {
		CHILD_CHECK(param_read(saved_params[i], &val) == 0);
		CHILD_CHECK(param_write(saved_params[i], val) == -1);
		CHILD_CHECK(errno == EACCES);
	}
}

TEST(params_root_only)
{
	EXPECT_EQ(0, run_unpriv(params_denied, NULL));
}

/* Defaults: fractions of RAM at load, to within the page rounding */
TEST(param_defaults)
{
	long long page = sysconf(_SC_PAGESIZE);
	long long ram, total, user, pinned;
	struct sysinfo si;

	ASSERT_EQ(0, sysinfo(&si));
	ram = (long long)si.totalram * si.mem_unit;
	ASSERT_EQ(0, param_read("max_total_bytes", &total));
	ASSERT_EQ(0, param_read("max_user_bytes", &user));
	ASSERT_EQ(0, param_read("max_pinned", &pinned));
	EXPECT_GT(page, llabs(total - ram / TOTAL_RAM_SHARE))
		TH_LOG("max_total_bytes %lld, RAM %lld", total, ram);
	EXPECT_GT(page, llabs(user - ram / USER_RAM_SHARE))
		TH_LOG("max_user_bytes %lld, RAM %lld", user, ram);
	EXPECT_EQ(DEFAULT_MAX_PINNED, pinned);
}

/*
 * Creating stops at max_total_bytes, to the byte, for named and anonymous
 * conversations, and freeing one gives its room back.
 */
TEST_F(limits, total_create_at_limit)
{
	long long usage;
	int fa, fb;

	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	EXPECT_LE(default_charge(_metadata), usage)
		TH_LOG("`default` is not counted");
	ASSERT_EQ(0, param_write("max_total_bytes",
				 usage + SMALL_CAP + MIN_CAPACITY));

	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	expect_enospc_create(_metadata, self, 2 * MIN_CAPACITY);
	/* exactly at the cap */
	fb = create_ok(_metadata, self, "b", MIN_CAPACITY);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);

	free_conv(_metadata, fa);
	fa = create_ok(_metadata, self, "c", SMALL_CAP);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);
	free_conv(_metadata, fb);
	fb = create_ok(_metadata, self, "d", MIN_CAPACITY);
	close(fa);
	close(fb);
}

/*
 * An unlinked conversation that a file still holds keeps its ring, and
 * its charge, until the last close: unlinking alone must not let anyone
 * allocate past the cap.
 */
TEST_F(limits, total_unlinked_still_counts)
{
	long long usage;
	int fa, fb;

	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	ASSERT_EQ(0, param_write("max_total_bytes", usage + SMALL_CAP));
	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	ASSERT_EQ(0, unlink_name(self->names[self->nnames - 1]));
	expect_enospc_create(_metadata, self, MIN_CAPACITY);
	close(fa);
	fb = create_ok(_metadata, self, "b", SMALL_CAP);
	close(fb);
}

/*
 * Anonymous conversations count, and are released when the last file
 * sharing them (here across fork()) is closed.
 */
TEST_F(limits, total_anon_released_on_close)
{
	int go[2], fa, fb;
	long long usage;
	pid_t pid;

	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	ASSERT_EQ(0, param_write("max_total_bytes", usage + SMALL_CAP));
	fa = anon_open(SMALL_CAP);
	ASSERT_LE(0, fa);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);

	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(go[1]);
		CHILD_CHECK(sync_wait(go[0]) == 0);
		_exit(0);
	}
	close(go[0]);
	/* the helper still holds the file */
	close(fa);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);
	ASSERT_EQ(0, sync_post(go[1]));
	ASSERT_EQ(0, wait_child(pid));
	close(go[1]);

	fb = create_ok(_metadata, self, "a", SMALL_CAP);
	free_conv(_metadata, fb);
	fb = anon_open(SMALL_CAP);
	EXPECT_LE(0, fb);
	close(fb);
}

/* Growing counts like creating; shrinking gives room back */
TEST_F(limits, total_resize)
{
	struct cbm_info before, after;
	long long usage;
	int fa, fb;

	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	ASSERT_EQ(8, write_str(fa, "survivor"));
	ASSERT_EQ(0, param_write("max_total_bytes", usage + 2 * SMALL_CAP));

	/* exactly at the cap */
	ASSERT_EQ(0, resize_to(fa, 2 * SMALL_CAP, NULL));
	ASSERT_EQ(0, read_info(fa, &before));
	EXPECT_EQ(2 * SMALL_CAP, before.capacity);
	expect_enospc(_metadata, resize_to(fa, 4 * SMALL_CAP, NULL));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_TRUE(info_same(&before, &after));
	EXPECT_EQ(1, after.resizes);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);

	ASSERT_EQ(0, resize_to(fa, SMALL_CAP, NULL));
	fb = create_ok(_metadata, self, "b", SMALL_CAP);
	expect_enospc(_metadata, resize_to(fa, 2 * SMALL_CAP, NULL));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_EQ(SMALL_CAP, after.capacity);
	EXPECT_EQ(1, after.msgs);
	close(fa);
	close(fb);
}

/*
 * A pinned copy counts its CBM_RECORD_SPACE() against the cap on top of
 * the ring; unpinning and freeing the conversation give it back.
 */
TEST_F(limits, total_pin)
{
	const __u64 room = CBM_RECORD_SPACE(PIN_LEN) + CBM_RECORD_SPACE(PIN_LEN2);
	struct cbm_info info;
	long long usage;
	__u64 seq;
	int fa;

	ASSERT_EQ(0, param_write("max_pinned", SMALL_CAP));
	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	ASSERT_EQ(0, param_write("max_total_bytes", usage + SMALL_CAP + room));

	ASSERT_EQ(0, pin(fa, PIN_LEN, &seq));
	expect_enospc(_metadata, pin(fa, PIN_LEN2 + 1, NULL));
	ASSERT_EQ(0, read_info(fa, &info));
	EXPECT_EQ(1, info.next_seq) TH_LOG("a refused pin appended anyway");
	EXPECT_EQ(1, info.pinned);
	/* exactly at the cap */
	ASSERT_EQ(0, pin(fa, PIN_LEN2, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));
	ASSERT_EQ(0, read_info(fa, &info));
	EXPECT_EQ(2, info.pinned);
	EXPECT_EQ(room, info.pinned_bytes);
	/* unpinned messages live in the ring, which is paid for */
	EXPECT_EQ(0, send_flags(fa, 0, PIN_LEN, NULL));
	expect_enospc_create(_metadata, self, MIN_CAPACITY);

	ASSERT_EQ(0, unpin(fa, seq, 0));
	ASSERT_EQ(0, pin(fa, PIN_LEN, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));

	/* freeing returns the ring and the pinned copies */
	free_conv(_metadata, fa);
	fa = create_ok(_metadata, self, "b", SMALL_CAP);
	EXPECT_EQ(0, pin(fa, PIN_LEN, NULL));
	EXPECT_EQ(0, pin(fa, PIN_LEN2, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));
	close(fa);
}

/*
 * A pinned message refused by a cap costs nothing, even when the ring is
 * full and the message would have needed room: nothing is evicted first.
 */
TEST_F(limits, refused_pin_evicts_nothing)
{
	struct cbm_info before, after;
	long long usage;
	unsigned int i;
	int fa;

	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	ASSERT_EQ(0, param_write("max_total_bytes", usage + SMALL_CAP));
	/* twice round the ring: full, and every new message evicts */
	for (i = 0; i < 2 * SMALL_CAP / CBM_RECORD_SPACE(PIN_LEN); i++)
		ASSERT_EQ(0, send_flags(fa, 0, PIN_LEN, NULL));
	ASSERT_EQ(0, read_info(fa, &before));
	ASSERT_LT(0, before.evicted);
	ASSERT_GT(CBM_RECORD_SPACE(PIN_LEN), before.capacity - before.used);

	expect_enospc(_metadata, pin(fa, PIN_LEN, NULL));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_TRUE(info_same(&before, &after));
	close(fa);
}

/*
 * Auto-resize does not grow a ring past the cap, and does once the cap
 * allows it (so the first half can fail).
 */
TEST_F(limits, total_blocks_autogrow)
{
	struct cbm_info info;
	long long usage;
	struct cbm_autoresize ar = ar_on(MIN_CAPACITY, SMALL_CAP, 50, 10, 10);
	__u64 start, tag = 0;
	int fa;

	usage = probe_usage(_metadata, self, "max_total_bytes", NULL);
	fa = create_ok(_metadata, self, "a", MIN_CAPACITY);
	ASSERT_EQ(0, set_ar(fa, &ar));
	ASSERT_EQ(0, param_write("max_total_bytes", usage + MIN_CAPACITY));

	for (start = mono_ms(); mono_ms() - start < FULL_MS; usleep(1000))
		ASSERT_EQ(FILL_LEN, write_tagged(fa, FILL_LEN, tag++));
	ASSERT_EQ(0, read_info(fa, &info));
	EXPECT_EQ(MIN_CAPACITY, info.capacity);
	EXPECT_EQ(0, info.resizes);

	ASSERT_EQ(0, param_write("max_total_bytes",
				 usage + 2 * MIN_CAPACITY));
	for (start = mono_ms(); mono_ms() - start < GROW_MS; usleep(1000)) {
		ASSERT_EQ(FILL_LEN, write_tagged(fa, FILL_LEN, tag++));
		ASSERT_EQ(0, read_info(fa, &info));
		if (info.capacity != MIN_CAPACITY)
			break;
	}
	ASSERT_EQ(2 * MIN_CAPACITY, info.capacity)
		TH_LOG("the ring did not grow once the cap allowed it");
	for (start = mono_ms(); mono_ms() - start < FULL_MS; usleep(1000))
		ASSERT_EQ(FILL_LEN, write_tagged(fa, FILL_LEN, tag++));
	ASSERT_EQ(0, read_info(fa, &info));
	EXPECT_EQ(2 * MIN_CAPACITY, info.capacity);
	EXPECT_EQ(1, info.resizes);
	close(fa);
}

/*
 * Fills @bytes with rings of power-of-two sizes, created as root or, with
 * @a, as the agent, leaving less than MIN_CAPACITY; returns the name of
 * the largest and stores its size in *size.
 */
static const char *fill(struct __test_metadata *_metadata,
			FIXTURE_DATA(limits) *self, struct agent *a,
			long long bytes, long long *size)
{
	const char *name, *biggest = NULL;
	long long max_cap, chunk;
	int err;

	ASSERT_EQ(0, param_read("max_capacity", &max_cap));
	*size = 0;
	for (; bytes >= MIN_CAPACITY; bytes -= chunk) {
		for (chunk = MIN_CAPACITY;
		     chunk * 2 <= bytes && chunk * 2 <= max_cap; chunk *= 2)
			;
		name = new_name(_metadata, self, "fill");
		err = create_as(_metadata, a, name, chunk);
		ASSERT_EQ(0, err) TH_LOG("a %lld byte ring, %lld to go: %s",
					 chunk, bytes, strerror(err));
		if (chunk > *size) {
			biggest = name;
			*size = chunk;
		}
	}
	return biggest;
}

/*
 * The agent (UNPRIV_UID) fills its max_user_bytes; root, counted apart,
 * can still create until it fills its own, and growing or pinning a
 * conversation is charged to its owner, whoever does it.
 */
TEST_F(limits, user_cap_unpriv)
{
	long long theirs, ours, cap, max_cap, biggest_cap, root_cap;
	const char *biggest;
	int fd, ret;

	agent_start(_metadata, &self->agent);
	theirs = probe_usage(_metadata, self, "max_user_bytes", &self->agent);
	ours = probe_usage(_metadata, self, "max_user_bytes", NULL);
	EXPECT_LE(default_charge(_metadata), ours)
		TH_LOG("`default` is not counted for root");

	/*
	 * Root keeps at least SMALL_CAP of room; the agent's room is a
	 * multiple of MIN_CAPACITY, so rings fill it to the byte.
	 */
	cap = (ours > theirs ? ours : theirs) + SMALL_CAP;
	cap += (theirs - cap) & (MIN_CAPACITY - 1);
	ASSERT_EQ(0, param_write("max_user_bytes", cap));
	biggest = fill(_metadata, self, &self->agent, cap - theirs,
		       &biggest_cap);
	ret = agent_call(_metadata, &self->agent, AGENT_CREATE,
			 new_name(_metadata, self, "over"), MIN_CAPACITY);
	EXPECT_EQ(ENOSPC, ret);
	ret = agent_call(_metadata, &self->agent, AGENT_ANON, NULL,
			 MIN_CAPACITY);
	EXPECT_EQ(ENOSPC, ret);

	/* root has room, the owner of the agent's conversation has none */
	ASSERT_EQ(0, param_read("max_capacity", &max_cap));
	ASSERT_GE(max_cap, 2 * biggest_cap);
	fd = open_named(biggest, O_RDWR);
	ASSERT_LE(0, fd);
	expect_enospc(_metadata, pin(fd, 0, NULL));
	expect_enospc(_metadata, resize_to(fd, 2 * biggest_cap, NULL));
	close(fd);

	/* root counts apart, up to its own cap: no capability bypasses it */
	fill(_metadata, self, NULL, cap - ours, &root_cap);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);

	/* the agent's freed ring is room for it again, and no more */
	ASSERT_EQ(0, agent_call(_metadata, &self->agent, AGENT_UNLINK, biggest,
				0));
	ASSERT_EQ(0, agent_call(_metadata, &self->agent, AGENT_CREATE,
				new_name(_metadata, self, "again"),
				biggest_cap));
	ret = agent_call(_metadata, &self->agent, AGENT_CREATE,
			 new_name(_metadata, self, "over"), MIN_CAPACITY);
	EXPECT_EQ(ENOSPC, ret);
}

/* Root with every capability meets its own max_user_bytes */
TEST_F(limits, user_cap_root)
{
	struct cbm_info before, after;
	long long ours;
	int fa;

	ASSERT_EQ(0, param_write("max_pinned", SMALL_CAP));
	ours = probe_usage(_metadata, self, "max_user_bytes", NULL);
	ASSERT_EQ(0, param_write("max_user_bytes", ours + SMALL_CAP));

	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	expect_enospc_create(_metadata, self, MIN_CAPACITY);
	ASSERT_EQ(0, read_info(fa, &before));
	expect_enospc(_metadata, resize_to(fa, 2 * SMALL_CAP, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_TRUE(info_same(&before, &after));

	free_conv(_metadata, fa);
	fa = create_ok(_metadata, self, "b", SMALL_CAP);
	close(fa);
}

/* max_pinned bounds each conversation's pinned record spaces, to the byte */
TEST_F(limits, max_pinned_at_limit)
{
	const __u64 budget = CBM_RECORD_SPACE(PIN_LEN) +
			     CBM_RECORD_SPACE(PIN_LEN2);
	struct cbm_info info;
	__u64 seq;
	int fa, fb;

	ASSERT_EQ(0, param_write("max_pinned", budget));
	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	fb = create_ok(_metadata, self, "b", SMALL_CAP);

	ASSERT_EQ(0, pin(fa, PIN_LEN, &seq));
	expect_enospc(_metadata, pin(fa, PIN_LEN2 + 1, NULL));
	/* exactly at the budget */
	ASSERT_EQ(0, pin(fa, PIN_LEN2, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));
	ASSERT_EQ(0, read_info(fa, &info));
	EXPECT_EQ(2, info.pinned);
	EXPECT_EQ(budget, info.pinned_bytes);
	EXPECT_EQ(2, info.next_seq) TH_LOG("a refused pin appended anyway");
	EXPECT_EQ(0, send_flags(fa, 0, PIN_LEN, NULL));

	/* the budget is per conversation */
	EXPECT_EQ(0, pin(fb, PIN_LEN, NULL));
	EXPECT_EQ(0, pin(fb, PIN_LEN2, NULL));

	/* unpinning, by the owner, gives the budget back */
	ASSERT_EQ(0, unpin(fa, seq, 0));
	ASSERT_EQ(0, read_info(fa, &info));
	EXPECT_EQ(1, info.pinned);
	EXPECT_EQ(CBM_RECORD_SPACE(PIN_LEN2), info.pinned_bytes);
	ASSERT_EQ(0, pin(fa, PIN_LEN, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));
	close(fa);
	close(fb);
}

/*
 * Caps lowered below what is in use evict nothing: the conversation keeps
 * its ring, messages and pinned copy and goes on taking writes; only new
 * memory is refused, while shrinking still works.
 */
TEST_F(limits, lowered_caps_evict_nothing)
{
	struct cbm_info before, after;
	char buf[PIN_LEN];
	long long tag;
	int fa, i;

	fa = create_ok(_metadata, self, "a", SMALL_CAP);
	ASSERT_EQ(0, pin(fa, PIN_LEN, NULL));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(FILL_LEN, write_tagged(fa, FILL_LEN, i));
	ASSERT_EQ(0, read_info(fa, &before));

	ASSERT_EQ(0, param_write("max_total_bytes", MIN_CAPACITY));
	ASSERT_EQ(0, param_write("max_user_bytes", MIN_CAPACITY));
	ASSERT_EQ(0, param_write("max_pinned", CBM_RECORD_SPACE(0)));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_TRUE(info_same(&before, &after));

	/* the reader gets everything: the pinned message, then the rest */
	ASSERT_EQ(PIN_LEN, read(fa, buf, sizeof(buf)));
	for (i = 0; i < 10; i++) {
		tag = read_tag(fa, FILL_LEN);
		EXPECT_EQ(i, tag);
	}
	/* enough writes to go round the ring */
	for (i = 10; i < 10 + WRAP_MSGS; i++)
		ASSERT_EQ(FILL_LEN, write_tagged(fa, FILL_LEN, i));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_EQ(SMALL_CAP, after.capacity);
	EXPECT_EQ(1, after.pinned);
	EXPECT_EQ(before.next_seq + WRAP_MSGS, after.next_seq);

	expect_enospc_create(_metadata, self, MIN_CAPACITY);
	expect_enospc(_metadata, resize_to(fa, 2 * SMALL_CAP, NULL));
	expect_enospc(_metadata, pin(fa, 0, NULL));
	EXPECT_EQ(0, resize_to(fa, SMALL_CAP / 2, NULL));
	ASSERT_EQ(0, read_info(fa, &after));
	EXPECT_EQ(SMALL_CAP / 2, after.capacity);
	EXPECT_EQ(1, after.pinned);
	close(fa);
}

/* True if @word is one of the blank-separated words of @list */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	const char *p;

	for (p = strstr(list, word); p; p = strstr(p + n, word))
		if ((p == list || isspace((unsigned char)p[-1])) &&
		    (!p[n] || isspace((unsigned char)p[n])))
			return true;
	return false;
}

static void cg_path(const FIXTURE_DATA(limits) *self, const char *file,
		    char *path, size_t size)
{
	snprintf(path, size, "%s/%s", self->cg, file);
}

static long long cg_read(struct __test_metadata *_metadata,
			 const FIXTURE_DATA(limits) *self, const char *file)
{
	char path[192];
	long long val;

	cg_path(self, file, path, sizeof(path));
	ASSERT_EQ(0, read_num(path, &val)) TH_LOG("%s", path);
	return val;
}

/* A counter of a flat keyed file such as memory.events */
static long long cg_event(struct __test_metadata *_metadata,
			  const FIXTURE_DATA(limits) *self, const char *key)
{
	char path[192], buf[512], *line, *save;
	size_t n = strlen(key);

	cg_path(self, "memory.events", path, sizeof(path));
	ASSERT_EQ(0, read_text(path, buf, sizeof(buf)));
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, key, n) && line[n] == ' ')
			return strtoll(line + n + 1, NULL, 10);
	ASSERT_TRUE(false) TH_LOG("no %s in %s", key, path);
	return -1;
}

/*
 * Makes the test's cgroup, with memory.max @max, mounting cgroup2 and
 * enabling the memory controller if need be (the teardown undoes it).
 * Returns false after a SKIP if the kernel has no cgroup2 memory
 * controller.
 */
static bool cg_prepare(struct __test_metadata *_metadata,
		       FIXTURE_DATA(limits) *self, long long max)
{
	char buf[256], path[192], group[sizeof(self->cg)];
	struct statfs sfs;

	if (statfs(CG_ROOT, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		if (mount("none", CG_ROOT, "cgroup2", 0, NULL))
			SKIP(return false, "cannot mount cgroup2 on %s: %s",
			     CG_ROOT, strerror(errno));
		self->cg_mounted = true;
	}
	ASSERT_LE(0, read_all(CG_ROOT "/cgroup.controllers", buf,
			      sizeof(buf)));
	if (!has_word(buf, "memory"))
		SKIP(return false, "no memory controller in cgroup2 (%s)",
		     buf);
	ASSERT_LE(0, read_all(CG_ROOT "/cgroup.subtree_control", buf,
			      sizeof(buf)));
	if (!has_word(buf, "memory")) {
		ASSERT_EQ(0, write_file(CG_ROOT "/cgroup.subtree_control",
					"+memory"));
		self->cg_enabled = true;
	}
	snprintf(group, sizeof(group), CG_ROOT "/cbm-limits-%d", (int)getpid());
	ASSERT_EQ(0, mkdir(group, 0755)) TH_LOG("mkdir %s: %s", group,
						strerror(errno));
	memcpy(self->cg, group, sizeof(self->cg));
	cg_path(self, "memory.max", path, sizeof(path));
	snprintf(buf, sizeof(buf), "%lld\n", max);
	ASSERT_EQ(0, write_file(path, buf));
	return true;
}

/* Moves the calling process into the test's cgroup */
static int cg_join(const FIXTURE_DATA(limits) *self)
{
	char path[192], buf[32];

	cg_path(self, "cgroup.procs", path, sizeof(path));
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	return write_file(path, buf);
}

/* Raises @param to at least @val */
static void param_at_least(struct __test_metadata *_metadata,
			   const char *param, long long val)
{
	long long cur;

	ASSERT_EQ(0, param_read(param, &cur));
	if (cur < val)
		ASSERT_EQ(0, param_write(param, val));
}

/* Opens /dev/kmsg after its newest record, or returns -1 */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Fails the test on any kernel log line since kmsg_open() that tells of
 * the OOM killer or of a failed allocation reported with a stack trace:
 * a memory cgroup at its limit must just fail the allocation.
 */
static void kmsg_expect_quiet(struct __test_metadata *_metadata, int fd)
{
	static const char * const marks[] = {
		"out of memory", "oom-kill", "invoked oom-killer",
		"allocation failure", "vmalloc error",
	};
	char buf[8192];
	unsigned int i;
	bool bad;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf) - 1);
		/* records overwritten before they were read: go on */
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		buf[n] = '\0';
		bad = false;
		for (i = 0; i < ARRAY_SIZE(marks); i++)
			bad |= !!strcasestr(buf, marks[i]);
		EXPECT_FALSE(bad) TH_LOG("kernel log: %s", buf);
	}
	EXPECT_EQ(EAGAIN, errno);
	close(fd);
}

/*
 * In a memory cgroup with memory.max = MEMCG_MAX, a ring larger than that
 * fails with ENOMEM, creating or growing, without waking the OOM killer:
 * the process lives on, memory.events counts no OOM and the kernel log
 * tells of none. A failed grow leaves the conversation as it was. The
 * grow fails the same when a process outside the group tries it: the
 * ring is charged to its creator's group.
 */
TEST_F(limits, memcg_enomem_no_oom)
{
	const char *big, *small;
	struct cbm_info before, after;
	int kmsg, fd, ret;

	if (!cg_prepare(_metadata, self, MEMCG_MAX))
		return;
	ASSERT_EQ(MEMCG_MAX, cg_read(_metadata, self, "memory.max"));
	/* only the memory cgroup may stand in the way */
	param_at_least(_metadata, "max_capacity", BIG_CAP);
	param_at_least(_metadata, "max_total_bytes", 4 * BIG_CAP);
	param_at_least(_metadata, "max_user_bytes", 4 * BIG_CAP);
	big = new_name(_metadata, self, "big");
	small = new_name(_metadata, self, "small");
	kmsg = kmsg_open();
	if (kmsg < 0)
		TH_LOG("no /dev/kmsg (%s): memory.events alone tells",
		       strerror(errno));

	self->child = fork_worker(MEMCG_SECS);
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		CHILD_CHECK(cg_join(self) == 0);
		ret = create_named(big, O_RDWR, 0600, 0, BIG_CAP);
		CHILD_CHECK(ret == -1 && errno == ENOMEM);
		CHILD_CHECK(open_named(big, O_RDONLY) == -1 && errno == ENOENT);
		ret = anon_open(BIG_CAP);
		CHILD_CHECK(ret == -1 && errno == ENOMEM);

		/* a small conversation works, and survives a failed grow */
		fd = create_named(small, O_RDWR | O_NONBLOCK, 0600, 0,
				  SMALL_CAP);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(write_tagged(fd, FILL_LEN, 1) == FILL_LEN);
		CHILD_CHECK(write_tagged(fd, FILL_LEN, 2) == FILL_LEN);
		CHILD_CHECK(read_info(fd, &before) == 0);
		ret = resize_to(fd, BIG_CAP, NULL);
		CHILD_CHECK(ret == -1 && errno == ENOMEM);
		CHILD_CHECK(read_info(fd, &after) == 0);
		CHILD_CHECK(info_same(&before, &after));
		CHILD_CHECK(read_tag(fd, FILL_LEN) == 1);
		CHILD_CHECK(read_tag(fd, FILL_LEN) == 2);
		CHILD_CHECK(write_tagged(fd, FILL_LEN, 3) == FILL_LEN);
		CHILD_CHECK(read_tag(fd, FILL_LEN) == 3);
		close(fd);
		_exit(0);
	}
	/* an OOM kill would show as 128 + SIGKILL */
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;

	/* the OOM checks below run whatever happened to the helper */
	fd = open_named(small, O_RDWR);
	EXPECT_LE(0, fd) TH_LOG("the helper left no conversation");
	if (fd >= 0) {
		EXPECT_EQ(0, read_info(fd, &before));
		ret = resize_to(fd, BIG_CAP, NULL);
		EXPECT_EQ(-1, ret)
			TH_LOG("the grow was not charged to the creator");
		EXPECT_EQ(ENOMEM, errno);
		EXPECT_EQ(0, read_info(fd, &after));
		EXPECT_TRUE(info_same(&before, &after));
		close(fd);
	}

	EXPECT_LT(0, cg_event(_metadata, self, "max"))
		TH_LOG("the group never reached memory.max");
	EXPECT_EQ(0, cg_event(_metadata, self, "oom"));
	EXPECT_EQ(0, cg_event(_metadata, self, "oom_kill"));
	if (kmsg >= 0)
		kmsg_expect_quiet(_metadata, kmsg);
}

/*
 * Waits up to WAIT_MS for memory.current of the group to fall to @ceiling;
 * returns the last value read.
 */
static long long cg_settle(struct __test_metadata *_metadata,
			   const FIXTURE_DATA(limits) *self, long long ceiling)
{
	__u64 start = mono_ms();
	long long cur;

	/* memory freed through RCU leaves a moment later */
	while ((cur = cg_read(_metadata, self, "memory.current")) > ceiling &&
	       mono_ms() - start < WAIT_MS)
		usleep(10000);
	return cur;
}

/*
 * A ring is charged to the memory cgroup of the process that created it,
 * also when another process grows it later, and uncharged when freed.
 */
TEST_F(limits, memcg_charged_to_creator)
{
	long long c0, c1, c2, c3;
	int to[2], from[2], fd;
	const char *name;

	if (!cg_prepare(_metadata, self, CHARGE_MAX))
		return;
	param_at_least(_metadata, "max_total_bytes", 4 * CHARGE_MAX);
	param_at_least(_metadata, "max_user_bytes", 4 * CHARGE_MAX);
	name = new_name(_metadata, self, "charged");
	ASSERT_EQ(0, pipe2(to, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(from, O_CLOEXEC));

	self->child = fork_worker(MEMCG_SECS);
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		CHILD_CHECK(cg_join(self) == 0);
		CHILD_CHECK(sync_post(from[1]) == 0);
		CHILD_CHECK(sync_wait(to[0]) == 0);
		fd = create_named(name, O_RDWR, 0600, 0, CHARGE_CAP);
		CHILD_CHECK(fd >= 0);
		close(fd);
		CHILD_CHECK(sync_post(from[1]) == 0);
		CHILD_CHECK(sync_wait(to[0]) == 0);
		_exit(0);
	}
	ASSERT_EQ(0, sync_wait(from[0]));
	c0 = cg_read(_metadata, self, "memory.current");
	ASSERT_EQ(0, sync_post(to[1]));
	ASSERT_EQ(0, sync_wait(from[0]));
	c1 = cg_read(_metadata, self, "memory.current");
	EXPECT_LE(CHARGE_CAP - CHARGE_SLACK, c1 - c0)
		TH_LOG("memory.current %lld -> %lld", c0, c1);
	EXPECT_GE(CHARGE_CAP + CHARGE_SLACK, c1 - c0)
		TH_LOG("memory.current %lld -> %lld", c0, c1);
	ASSERT_EQ(0, sync_post(to[1]));
	EXPECT_EQ(0, wait_child(self->child));
	self->child = 0;

	/* grown from outside the group, charged inside */
	c1 = cg_read(_metadata, self, "memory.current");
	fd = open_named(name, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, resize_to(fd, 2 * CHARGE_CAP, NULL));
	c2 = cg_read(_metadata, self, "memory.current");
	EXPECT_LE(CHARGE_CAP - CHARGE_SLACK, c2 - c1)
		TH_LOG("memory.current %lld -> %lld", c1, c2);
	EXPECT_GE(CHARGE_CAP + CHARGE_SLACK, c2 - c1)
		TH_LOG("memory.current %lld -> %lld", c1, c2);

	ASSERT_EQ(0, unlink_name(name));
	close(fd);
	c3 = cg_settle(_metadata, self, c2 - 2 * CHARGE_CAP + CHARGE_SLACK);
	EXPECT_GE(c2 - 2 * CHARGE_CAP + CHARGE_SLACK, c3)
		TH_LOG("memory.current %lld -> %lld", c2, c3);
	close(to[0]);
	close(to[1]);
	close(from[0]);
	close(from[1]);
}

TEST_HARNESS_MAIN
