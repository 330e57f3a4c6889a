// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Host unit tests of the logic libcbm keeps in userspace: name tables and
 * parsing, options handling, the NLE_* to errno translation and the
 * argument checks made before any system call. It includes libcbm.c to
 * reach the internal helpers; everything that needs the module is tested
 * in the VM by selftests/cbm_lib_test.c. Prints TAP.
 */
#include "libcbm.c"
#include "host_test.h"

/* Exists on no machine: a test that reached the device would fail loudly */
#define NO_DEV		"/nonexistent/cbm"

static void test_role_names(void)
{
	static const char *const names[] = {
		"other", "system", "user", "assistant", "tool",
	};
	unsigned int i;

	CHECK_EQ(__CBM_ROLE_MAX, sizeof(names) / sizeof(names[0]));
	for (i = 0; i < __CBM_ROLE_MAX; i++) {
		char num[4];

		CHECK_STR(names[i], cbm_role_name(i));
		CHECK_EQ(i, cbm_role_parse(names[i]));
		snprintf(num, sizeof(num), "%u", i);
		CHECK_EQ(i, cbm_role_parse(num));
	}
	CHECK(!cbm_role_name(__CBM_ROLE_MAX));
	CHECK(!cbm_role_name(-1U));
	CHECK_EQ(CBM_ROLE_OTHER, cbm_role_parse("0"));
	CHECK_EQ(CBM_ROLE_TOOL, cbm_role_parse("004"));
}

static void test_role_parse_bad(void)
{
	static const char *const bad[] = {
		"", "5", "-1", "+1", " 1", "1 ", "0x1", "1a", "User", "users",
		"use", "99999999999999999999", "4294967298",
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(cbm_role_parse(bad[i]) == -EINVAL, __LINE__,
		      "cbm_role_parse(\"%s\") = %d", bad[i],
		      cbm_role_parse(bad[i]));
	CHECK_EQ(-EINVAL, cbm_role_parse(NULL));
}

static void test_event_names(void)
{
	CHECK_STR("created", cbm_event_name(CBM_NL_EVENT_CREATED));
	CHECK_STR("resized", cbm_event_name(CBM_NL_EVENT_RESIZED));
	CHECK_STR("window", cbm_event_name(CBM_NL_EVENT_WINDOW));
	CHECK_STR("unlinked", cbm_event_name(CBM_NL_EVENT_UNLINKED));
	CHECK_STR("evicted", cbm_event_name(CBM_NL_EVENT_EVICTED));
	CHECK(!cbm_event_name(0));
	CHECK(!cbm_event_name(__CBM_NL_EVENT_MAX));
	CHECK(!cbm_event_name(-1U));
}

static void test_version(void)
{
	char want[16];

	snprintf(want, sizeof(want), "%d.%d", LIBCBM_MAJOR_VERSION,
		 LIBCBM_MINOR_VERSION);
	CHECK_STR(want, cbm_version());
	CHECK_STR("0.1", cbm_version());
}

static void test_opts_macro(void)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_CREATE,
		    .mode = 0640);
	const unsigned char *p = (const unsigned char *)&opts;
	struct cbm_open_opts want;
	size_t i;

	CHECK_EQ(sizeof(struct cbm_open_opts), opts.sz);
	CHECK_EQ(CBM_OPEN_CREATE, opts.flags);
	CHECK_EQ(0640, opts.mode);
	CHECK_EQ(0, opts.conv_flags);
	CHECK_EQ(0, opts.capacity);
	CHECK(!opts.dev);
	/* Padding too: a newer library reads it as fields */
	memset(&want, 0, sizeof(want));
	want.sz = opts.sz;
	want.flags = opts.flags;
	want.mode = opts.mode;
	for (i = 0; i < sizeof(opts); i++)
		if (p[i] != ((const unsigned char *)&want)[i])
			break;
	CHECK_EQ(sizeof(opts), i);
}

/* An options struct as a newer caller knows it: one field more */
struct big_opts {
	struct cbm_open_opts o;
	uint64_t newer;
};

static void test_copy_opts(void)
{
	struct big_opts big;
	struct cbm_open_opts out;

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.flags = CBM_OPEN_RDONLY;
	memset(&out, 0xa5, sizeof(out));
	CHECK_EQ(0, cbm_copy_opts(&out, sizeof(out), &big, big.o.sz));
	CHECK_EQ(CBM_OPEN_RDONLY, out.flags);
	CHECK_EQ(sizeof(big), out.sz);

	big.newer = 1;
	CHECK_EQ(-EINVAL, cbm_copy_opts(&out, sizeof(out), &big, big.o.sz));

	/* An older caller: the fields it does not have read as 0 */
	memset(&big, 0xa5, sizeof(big));
	big.o.sz = offsetof(struct cbm_open_opts, mode);
	big.o.flags = CBM_OPEN_WRONLY;
	CHECK_EQ(0, cbm_copy_opts(&out, sizeof(out), &big, big.o.sz));
	CHECK_EQ(CBM_OPEN_WRONLY, out.flags);
	CHECK_EQ(0, out.mode);
	CHECK_EQ(0, out.capacity);
	CHECK(!out.dev);

	CHECK_EQ(-EINVAL, cbm_copy_opts(&out, sizeof(out), &big, 0));
	CHECK_EQ(-EINVAL, cbm_copy_opts(&out, sizeof(out), &big, 4));
	memset(&out, 0xa5, sizeof(out));
	CHECK_EQ(0, cbm_copy_opts(&out, sizeof(out), NULL, 0));
	CHECK_EQ(0, out.flags);
	CHECK_EQ(0, out.sz);
}

static void test_nl_errno(void)
{
	static const struct {
		int nle, err;
	} map[] = {
		{ NLE_SUCCESS, 0 },
		{ NLE_FAILURE, EIO },
		{ NLE_INTR, EINTR },
		{ NLE_BAD_SOCK, EBADF },
		{ NLE_AGAIN, EAGAIN },
		{ NLE_NOMEM, ENOMEM },
		{ NLE_EXIST, EEXIST },
		{ NLE_INVAL, EINVAL },
		{ NLE_RANGE, ERANGE },
		{ NLE_MSGSIZE, EMSGSIZE },
		{ NLE_OPNOTSUPP, EOPNOTSUPP },
		{ NLE_AF_NOSUPPORT, EAFNOSUPPORT },
		{ NLE_OBJ_NOTFOUND, ENOENT },
		{ NLE_NOATTR, EPROTO },
		{ NLE_MISSING_ATTR, EPROTO },
		{ NLE_SEQ_MISMATCH, EILSEQ },
		{ NLE_MSG_OVERFLOW, EMSGSIZE },
		{ NLE_MSG_TRUNC, EMSGSIZE },
		{ NLE_NOADDR, EADDRNOTAVAIL },
		{ NLE_MSG_TOOSHORT, EPROTO },
		{ NLE_BUSY, EBUSY },
		{ NLE_PROTO_MISMATCH, EPROTONOSUPPORT },
		{ NLE_NOACCESS, EACCES },
		{ NLE_PERM, EPERM },
		{ NLE_NODEV, ENODEV },
		{ NLE_DUMP_INTR, EAGAIN },
		{ NLE_ATTRSIZE, EPROTO },
		{ NLE_MAX + 1, EIO },
	};
	unsigned int i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		/* libnl returns them negated; both signs are accepted */
		check(cbm_nl_errno(-map[i].nle) == -map[i].err, __LINE__,
		      "NLE %d: %d, want %d", map[i].nle,
		      cbm_nl_errno(-map[i].nle), -map[i].err);
		CHECK_EQ(-map[i].err, cbm_nl_errno(map[i].nle));
	}
	/* The round trip of every errno libnl itself translates */
	CHECK_EQ(-ENOENT, cbm_nl_errno(-nl_syserr2nlerr(ENOENT)));
	CHECK_EQ(-EPERM, cbm_nl_errno(-nl_syserr2nlerr(EPERM)));
	CHECK_EQ(-EBUSY, cbm_nl_errno(-nl_syserr2nlerr(EBUSY)));
	CHECK_EQ(-EEXIST, cbm_nl_errno(-nl_syserr2nlerr(EEXIST)));
	CHECK_EQ(-EINVAL, cbm_nl_errno(-nl_syserr2nlerr(EINVAL)));
	CHECK_EQ(-EAGAIN, cbm_nl_errno(-nl_syserr2nlerr(EAGAIN)));
	CHECK_EQ(-EACCES, cbm_nl_errno(-nl_syserr2nlerr(EACCES)));
	CHECK_EQ(-EOPNOTSUPP, cbm_nl_errno(-nl_syserr2nlerr(EOPNOTSUPP)));
}

/* Every refusal comes before the device is opened */
static void test_open_args(void)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .dev = NO_DEV);
	struct cbm *c = (struct cbm *)&opts;
	char longname[CBM_NAME_MAX + 1];
	struct big_opts big;

	CHECK_EQ(-EINVAL, cbm_open("x", &opts, NULL));
	opts.flags = 0x100;
	CHECK_EQ(-EINVAL, cbm_open("x", &opts, &c));
	opts.flags = -1U;
	CHECK_EQ(-EINVAL, cbm_open("x", &opts, &c));
	opts.flags = CBM_OPEN_RDONLY | CBM_OPEN_WRONLY;
	CHECK_EQ(-EINVAL, cbm_open("x", &opts, &c));
	opts.flags = CBM_OPEN_ANON;
	CHECK_EQ(-EINVAL, cbm_open("x", &opts, &c));
	opts.flags = CBM_OPEN_ANON | CBM_OPEN_CREATE;
	CHECK_EQ(-EINVAL, cbm_open(NULL, &opts, &c));
	opts.flags = CBM_OPEN_ANON | CBM_OPEN_EXCL;
	CHECK_EQ(-EINVAL, cbm_open(NULL, &opts, &c));
	opts.flags = 0;
	opts.sz = 0;
	CHECK_EQ(-EINVAL, cbm_open("x", &opts, &c));
	opts.sz = sizeof(opts);

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(-EINVAL, cbm_open(longname, &opts, &c));
	longname[CBM_NAME_MAX - 1] = '\0';
	/* The longest name passes the checks and reaches open() */
	CHECK_EQ(-ENOENT, cbm_open(longname, &opts, &c));
	CHECK_EQ(-ENOENT, cbm_open(NULL, &opts, &c));
	opts.flags = CBM_OPEN_ANON;
	CHECK_EQ(-ENOENT, cbm_open(NULL, &opts, &c));
	CHECK(c == (struct cbm *)&opts);

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.dev = NO_DEV;
	CHECK_EQ(-ENOENT, cbm_open("x", &big.o, &c));
	big.newer = 1;
	CHECK_EQ(-EINVAL, cbm_open("x", &big.o, &c));
	CHECK_EQ(-EINVAL, cbm_create("x", &big.o, &c));
	CHECK_EQ(-EINVAL, cbm_attach("x", &big.o, &c));
}

static void test_create_attach_args(void)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .dev = NO_DEV);
	struct cbm *c = NULL;

	CHECK_EQ(-EINVAL, cbm_create(NULL, &opts, &c));
	CHECK_EQ(-ENOENT, cbm_create("x", &opts, &c));
	opts.flags = CBM_OPEN_ANON;
	CHECK_EQ(-EINVAL, cbm_create("x", &opts, &c));
	opts.flags = CBM_OPEN_CREATE;
	CHECK_EQ(-EINVAL, cbm_attach("x", &opts, &c));
	opts.flags = CBM_OPEN_EXCL;
	CHECK_EQ(-EINVAL, cbm_attach("x", &opts, &c));
	opts.flags = CBM_OPEN_ANON;
	CHECK_EQ(-EINVAL, cbm_attach(NULL, &opts, &c));
	opts.flags = CBM_OPEN_RDONLY | CBM_OPEN_NONBLOCK | CBM_OPEN_LOSSY;
	CHECK_EQ(-ENOENT, cbm_attach("x", &opts, &c));
	CHECK(!c);
	cbm_close(NULL);
}

/* A handle on fd -1: the library's refusals come before the kernel's */
static void test_handle_args(void)
{
	struct cbm cbm = { .fd = -1 };
	struct cbm_message msgs[2] = { { .len = 1 }, { .len = 1 } };
	struct cbm_saved_message saved = { .msg.len = 1 };
	uint64_t seq = 7;
	struct cbm_record rec;
	size_t len;
	void *buf;

	CHECK_EQ(-EINVAL, cbm_unlink(NULL));
	CHECK_EQ(-EINVAL, cbm_unlink(""
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	CHECK_EQ(-EINVAL, cbm_send(&cbm, NULL, &seq));
	CHECK_EQ(-E2BIG, cbm_send_batch(&cbm, msgs, CBM_BATCH_MAX + 1, &seq));
	CHECK_EQ(-EINVAL, cbm_send_batch(&cbm, NULL, 1, &seq));
	CHECK_EQ(-EINVAL, cbm_restore(&cbm, NULL, 1, 0));
	CHECK_EQ(-E2BIG, cbm_restore(&cbm, &saved, (size_t)INT_MAX + 1, 0));
	CHECK_EQ(-EINVAL, cbm_recv(&cbm, NULL, &rec, sizeof(rec)));
	CHECK_EQ(-EINVAL, cbm_recv(&cbm, &rec, NULL, 1));
	CHECK_EQ(-EINVAL, cbm_read_window(&cbm, 0, NULL, &len, &seq));
	CHECK_EQ(-EINVAL, cbm_read_window(&cbm, 0, &buf, NULL, &seq));
	CHECK_EQ(-EINVAL, cbm_read_window(&cbm, 0, &buf, &len, NULL));
	CHECK_EQ(-EINVAL, cbm_map_attach(&cbm, CBM_MAP_OLDEST, NULL));
	CHECK_EQ(-EINVAL, cbm_set_window(&cbm, NULL));
	CHECK_EQ(-EINVAL, cbm_set_autoresize(&cbm, NULL));
	/* Payloads the kernel's __u32 lengths cannot describe */
	msgs[1].len = (size_t)UINT32_MAX + 1;
	saved.msg.len = msgs[1].len;
	CHECK_EQ(-EMSGSIZE, cbm_send(&cbm, &msgs[1], &seq));
	CHECK_EQ(-EMSGSIZE, cbm_send_batch(&cbm, msgs, 2, &seq));
	CHECK_EQ(-EMSGSIZE, cbm_restore(&cbm, &saved, 1, 0));
	msgs[1].len = 1;
	/* The fd is -1: these reach the kernel, which refuses the fd */
	CHECK_EQ(-EBADF, cbm_send(&cbm, &msgs[0], &seq));
	CHECK_EQ(7, seq);
	CHECK_EQ(-EBADF, cbm_recv(&cbm, &rec, NULL, 0));
	CHECK_EQ(-EBADF, cbm_seek(&cbm, CBM_SEEK_SEQ, 0, &seq));
	CHECK_EQ(-EBADF, cbm_resize(&cbm, 0, NULL, NULL));
	free(cbm.rbuf);
}

/* The bind a cbm_open() asks for: the mode, and CBM_OPEN_MODE's 0 */
static void test_bind_mode(void)
{
	LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_CREATE);
	struct cbm_bind bind;
	struct cbm *c = NULL;

	memset(&bind, 0, sizeof(bind));
	CHECK_EQ(0, cbm_fill_bind(&bind, "x", &opts));
	CHECK_EQ(0600, bind.mode);
	CHECK_EQ(CBM_BIND_CREATE, bind.flags);
	CHECK_STR("x", bind.name);

	opts.mode = 0640;
	memset(&bind, 0, sizeof(bind));
	CHECK_EQ(0, cbm_fill_bind(&bind, "x", &opts));
	CHECK_EQ(0640, bind.mode);

	opts.mode = 0;
	opts.flags |= CBM_OPEN_MODE;
	memset(&bind, 0xa5, sizeof(bind));
	memset(&bind, 0, offsetof(struct cbm_bind, name));
	CHECK_EQ(0, cbm_fill_bind(&bind, "x", &opts));
	CHECK_EQ(0, bind.mode);
	opts.mode = 0751;
	CHECK_EQ(0, cbm_fill_bind(&bind, "x", &opts));
	CHECK_EQ(0751, bind.mode);

	/* The flag is known: it reaches open(), not -EINVAL */
	opts.dev = NO_DEV;
	CHECK_EQ(-ENOENT, cbm_open("x", &opts, &c));
	CHECK(!c);
}

/*
 * A cbm_read_window() buffer as a newer kernel would fill it: headers
 * longer than this library's struct cbm_record, which cbm_record_next()
 * must step over by their own length.
 */
static void test_record_next(void)
{
	static const struct {
		uint16_t hdr_len;
		uint32_t len;
	} recs[] = {
		{ sizeof(struct cbm_record), 5 },
		{ sizeof(struct cbm_record) + 16, 0 },
		{ sizeof(struct cbm_record) + 16, 13 },
		{ sizeof(struct cbm_record) + 8, 8 },
		{ sizeof(struct cbm_record), 1 },
	};
	const unsigned int n = sizeof(recs) / sizeof(recs[0]);
	uint64_t buf[256] = { 0 };
	const struct cbm_record *rec;
	struct cbm_record *r;
	size_t off = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		r = (struct cbm_record *)((char *)buf + off);
		r->hdr_len = recs[i].hdr_len;
		r->len = recs[i].len;
		r->seq = 100 + i;
		memset((char *)r + r->hdr_len, 'a' + i, r->len);
		off += (r->hdr_len + r->len + CBM_RECORD_ALIGN - 1) &
		       ~(CBM_RECORD_ALIGN - 1);
	}
	CHECK(off <= sizeof(buf));
	rec = (const struct cbm_record *)buf;
	for (i = 0; i < n; i++, rec = cbm_record_next(rec)) {
		const char *p = cbm_record_payload(rec);

		CHECK_EQ(100 + i, rec->seq);
		CHECK_EQ(recs[i].len, rec->len);
		CHECK(!rec->len || (p[0] == 'a' + (int)i &&
				    p[rec->len - 1] == 'a' + (int)i));
	}
	CHECK_EQ(off, (const char *)rec - (const char *)buf);
}

/* Write one record of @hdr_len header bytes and @len payload bytes */
static void put_record(int fd, uint16_t hdr_len, uint32_t len, uint64_t seq)
{
	unsigned char rec[256] = { 0 };
	struct cbm_record r = { .hdr_len = hdr_len, .type = CBM_RECORD_MSG,
				.len = len, .seq = seq };
	size_t size = hdr_len + len;

	if (size < sizeof(r))
		size = sizeof(r);
	memcpy(rec, &r, sizeof(r));
	/* A field this library does not know, and the payload after it */
	if (hdr_len > sizeof(r))
		rec[sizeof(r)] = 0xaa;
	/* A short header's payload would overwrite its own fields */
	if (hdr_len >= sizeof(r))
		memset(rec + hdr_len, 'p', len);
	CHECK_EQ(size, write(fd, rec, size));
}

/*
 * cbm_recv() over a socket pair, which keeps records apart as the device
 * does: a longer header is skipped, one shorter than the first published
 * struct cbm_record does not parse.
 */
static void test_recv_headers(void)
{
	const uint16_t base = sizeof(struct cbm_record);
	struct cbm_record rec;
	struct cbm cbm = { 0 };
	char buf[16];
	int sv[2];

	CHECK_EQ(56, CBM_RECORD_HDR_MIN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		CHECK(!"socketpair");
		return;
	}
	cbm.fd = sv[0];

	put_record(sv[1], base + 16, 5, 42);
	CHECK_EQ(-EMSGSIZE, cbm_recv(&cbm, &rec, buf, 3));
	CHECK_EQ(5, rec.len);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(1, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	CHECK_EQ(42, rec.seq);
	CHECK_EQ(base + 16, rec.hdr_len);
	CHECK(!memcmp(buf, "ppppp", 5));

	put_record(sv[1], base, 0, 43);
	CHECK_EQ(1, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	CHECK_EQ(43, rec.seq);

	put_record(sv[1], CBM_RECORD_HDR_MIN - 1, 0, 44);
	CHECK_EQ(-EIO, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	put_record(sv[1], 8, 0, 45);
	CHECK_EQ(-EIO, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	put_record(sv[1], 0, 4, 46);
	CHECK_EQ(-EIO, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	/* Shorter than any header at all */
	CHECK_EQ(2, write(sv[1], &base, 2));
	CHECK_EQ(-EIO, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	/* A payload longer than the record */
	memset(&rec, 0, sizeof(rec));
	rec.hdr_len = base;
	rec.len = 4;
	CHECK_EQ(sizeof(rec), write(sv[1], &rec, sizeof(rec)));
	CHECK_EQ(-EIO, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	/* Nothing held back by a refused record: the next one reads */
	put_record(sv[1], base, 2, 48);
	CHECK_EQ(1, cbm_recv(&cbm, &rec, buf, sizeof(buf)));
	CHECK_EQ(48, rec.seq);

	close(sv[0]);
	close(sv[1]);
	free(cbm.rbuf);
}

static void test_nl_args(void)
{
	struct cbm_nl nl = { 0 };
	struct cbm_stats *s;

	CHECK_EQ(-EINVAL, cbm_nl_open(NULL));
	CHECK_EQ(-EINVAL, cbm_nl_event_fd(&nl));
	CHECK_EQ(-EINVAL, cbm_nl_get(&nl, NULL, &s));
	CHECK_EQ(-EINVAL, cbm_nl_get(&nl, "x", NULL));
	CHECK_EQ(-EINVAL, cbm_nl_get(&nl, "", &s));
	CHECK_EQ(-EINVAL, cbm_nl_dump(&nl, NULL, NULL));
	CHECK_EQ(-EINVAL, cbm_nl_unlink(&nl, NULL));
	CHECK_EQ(-EINVAL, cbm_nl_set_window(&nl, "x", NULL));
	CHECK_EQ(-EINVAL, cbm_nl_resize(&nl, NULL, 0, NULL));
	CHECK_EQ(-EINVAL, cbm_nl_events(&nl, NULL, NULL, 0));
	cbm_nl_close(NULL);
	cbm_stats_free(NULL);
}

static const struct host_test tests[] = {
	{ "role_names", test_role_names },
	{ "role_parse_bad", test_role_parse_bad },
	{ "event_names", test_event_names },
	{ "version", test_version },
	{ "opts_macro", test_opts_macro },
	{ "copy_opts", test_copy_opts },
	{ "nl_errno", test_nl_errno },
	{ "open_args", test_open_args },
	{ "create_attach_args", test_create_attach_args },
	{ "handle_args", test_handle_args },
	{ "bind_mode", test_bind_mode },
	{ "record_next", test_record_next },
	{ "recv_headers", test_recv_headers },
	{ "nl_args", test_nl_args },
};

int main(void)
{
	return host_test_run(tests, sizeof(tests) / sizeof(tests[0]));
}
