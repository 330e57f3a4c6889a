// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of cbmctl's logic that needs no module: the JSON parser's
 * limits and cost, the text output's escapes, the save file's next_seq,
 * option errors, and a save file's round trip through the writer and the
 * parser. It includes cbmctl.c to reach its static functions; the commands
 * themselves are tested in the VM by selftests/cbm_cli_test.sh. Prints TAP.
 */
#define main cbmctl_main
#include "cbmctl.c"
#undef main

#include <malloc.h>
#include <time.h>

#include "host_test.h"

/*
 * A line of one object with @n members "keyNNNNNNN":1, 15 bytes each
 * (nested in "d" if asked)
 */
static char *many_members(size_t n, bool nested, size_t *lenp)
{
	char *text = NULL;
	size_t i;
	FILE *f;

	f = open_memstream(&text, lenp);
	if (!f)
		return NULL;
	fputs(nested ? "{\"d\":{" : "{", f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\"key%07zu\":1", i ? "," : "", i);
	fputs(nested ? "}}" : "}", f);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* Bytes malloc() has handed out and not had back */
static size_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_json_members(void)
{
	struct json_value obj;
	char err[160], *text;
	size_t len, col;
	double t;

	text = many_members(JSON_MAX_MEMBERS, false, &len);
	CHECK_EQ(0, json_parse_line(text, len, &obj, err, sizeof(err)));
	CHECK_EQ(JSON_MAX_MEMBERS, obj.n);
	json_free(&obj);
	free(text);

	text = many_members(JSON_MAX_MEMBERS + 1, true, &len);
	CHECK_EQ(-EINVAL, json_parse_line(text, len, &obj, err, sizeof(err)));
	CHECK(strstr(err, "more than 32 members in an object"));
	free(text);

	/* 1 MB of keys: refused at the 33rd, not after scanning them all */
	text = many_members(70000, false, &len);
	CHECK(len > 1000000);
	t = now_s();
	CHECK_EQ(-EINVAL, json_parse_line(text, len, &obj, err, sizeof(err)));
	t = now_s() - t;
	check(t < 0.5, __LINE__, "%.3f s for a 1 MB line", t);
	col = strtoul(err + strlen("column "), NULL, 10);
	check(col < 600, __LINE__, "stopped at %s", err);
	free(text);
}

/*
 * Many short strings in one line: each one's buffer is sized to it, not
 * to the rest of the line, or this would take the line's length squared
 * in memory.
 */
static void test_json_strings(void)
{
	struct json_value obj;
	char err[160], *text = NULL;
	size_t len, i, j, k, before, used;
	const char *line;
	FILE *f;

	f = open_memstream(&text, &len);
	fputc('{', f);
	for (i = 0; i < JSON_MAX_MEMBERS; i++) {
		fprintf(f, "%s\"a%zu\":{", i ? "," : "", i);
		for (j = 0; j < JSON_MAX_MEMBERS; j++) {
			fprintf(f, "%s\"b%zu\":{", j ? "," : "", j);
			for (k = 0; k < JSON_MAX_MEMBERS; k++)
				fprintf(f, "%s\"c%zu\":\"\\u00e9x\"", k ? "," : "",
					k);
			fputc('}', f);
		}
		fputc('}', f);
	}
	fputc('}', f);
	CHECK_EQ(0, fclose(f));
	before = heap_used();
	CHECK_EQ(0, json_parse_line(text, len, &obj, err, sizeof(err)));
	used = heap_used() - before;
	/* The strings' bytes, their NULs, malloc's overhead: not the line's */
	check(used < 64 * len, __LINE__, "%zu bytes for a line of %zu", used,
	      len);
	if (obj.n == JSON_MAX_MEMBERS) {
		const struct json_value *v = &obj.members[31].val.members[31].val;

		v = json_get(v, "c31");
		CHECK(v && v->len == 3 && !memcmp(v->str, "\xc3\xa9x", 3));
		json_free(&obj);
	}
	free(text);

	/* Escapes and an unterminated string at the end of the line */
	CHECK_EQ(-EINVAL, json_parse_line("{\"a\":\"x\\\"", 9, &obj, err,
					  sizeof(err)));
	CHECK(strstr(err, "unterminated string"));
	CHECK_EQ(-EINVAL, json_parse_line("{\"a\":\"x\\", 8, &obj, err,
					  sizeof(err)));
	line = "{\"a\":\"\\\\\\\"\\ud83d\\ude00\"}";
	CHECK_EQ(0, json_parse_line(line, strlen(line), &obj, err,
				    sizeof(err)));
	CHECK(obj.n == 1 && obj.members[0].val.len == 6 &&
	      !memcmp(obj.members[0].val.str, "\\\"\xf0\x9f\x98\x80", 6));
	json_free(&obj);
}

static char *text_of(const char *s, size_t len)
{
	char *out = NULL;
	size_t n;
	FILE *f;

	f = open_memstream(&out, &n);
	text_write(f, s, len);
	fclose(f);
	return out;
}

#define CHECK_TEXT(want, s)						\
	do {								\
		char *t_ = text_of(s, sizeof(s) - 1);			\
									\
		CHECK_STR(want, t_);					\
		free(t_);						\
	} while (0)

static void test_text_escapes(void)
{
	CHECK_TEXT("plain caf\xc3\xa9 \xf0\x9f\x98\x80",
		   "plain caf\xc3\xa9 \xf0\x9f\x98\x80");
	CHECK_TEXT("a\\\\b\\n\\r\\t\\x01\\x1b\\x7f", "a\\b\n\r\t\x01\x1b\x7f");
	CHECK_TEXT("\\xff\\xc0\\x80", "\xff\xc0\x80");
	/* C1 controls: the 8-bit CSI (clear screen here) and NEL, ... */
	CHECK_TEXT("\\u009b2J\\u0085\\u0080\\u009f",
		   "\xc2\x9b" "2J\xc2\x85\xc2\x80\xc2\x9f");
	/* ... not their printable neighbours */
	CHECK_TEXT("\xc2\xa0\xc2\xa9", "\xc2\xa0\xc2\xa9");
	/* Bidirectional embeddings and overrides, then isolates, ... */
	CHECK_TEXT("\\u202a\\u202b\\u202c\\u202d\\u202e",
		   "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"
		   "\xe2\x80\xae");
	CHECK_TEXT("\\u2066\\u2067\\u2068\\u2069",
		   "\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9");
	/* ... not their neighbours */
	CHECK_TEXT("\xe2\x80\xa9\xe2\x81\xa5\xe2\x81\xaa",
		   "\xe2\x80\xa9\xe2\x81\xa5\xe2\x81\xaa");
	/* A literal "\u202e" stays distinguishable from the escape */
	CHECK_TEXT("\\\\u202e", "\\u202e");
}

/* Records for save_next_seq(), as cbm_read_window() lays them out */
static size_t put_rec(void *buf, size_t off, uint16_t hdr_len, uint64_t seq,
		      uint32_t flags)
{
	struct cbm_record *r = (struct cbm_record *)((char *)buf + off);

	r->hdr_len = hdr_len;
	r->len = 3;
	r->seq = seq;
	r->flags = flags;
	return off + ((hdr_len + r->len + CBM_RECORD_ALIGN - 1) &
		      ~(CBM_RECORD_ALIGN - 1));
}

static void test_save_next_seq(void)
{
	const uint16_t hdr = sizeof(struct cbm_record);
	uint64_t buf[64] = { 0 };
	size_t off;

	/* Nothing saved: the conversation's own */
	CHECK_EQ(9, save_next_seq(NULL, 0, 9));
	/* The ring's newest is the snapshot's last: appends after it drop */
	off = put_rec(buf, 0, hdr, 3, 0);
	put_rec(buf, off, hdr, 4, 0);
	CHECK_EQ(5, save_next_seq(buf, 2, 9));
	CHECK_EQ(5, save_next_seq(buf, 2, 5));
	/* A pinned newest message, after one that is not: still in the ring */
	off = put_rec(buf, 0, hdr, 0, 0);
	put_rec(buf, off, hdr, 1, CBM_MSG_PINNED);
	CHECK_EQ(2, save_next_seq(buf, 2, 3));
	/* Pinned ones only: the ring may be empty, numbers gone on */
	off = put_rec(buf, 0, hdr, 2, CBM_MSG_PINNED);
	put_rec(buf, off, hdr, 7, CBM_MSG_PINNED | 0x10000);
	CHECK_EQ(20, save_next_seq(buf, 2, 20));
	/* Headers longer than this cbmctl knows: the walk still finds the last */
	off = put_rec(buf, 0, hdr + 24, 10, CBM_MSG_PINNED);
	off = put_rec(buf, off, hdr + 24, 11, 0);
	put_rec(buf, off, hdr + 24, 12, CBM_MSG_PINNED);
	CHECK_EQ(13, save_next_seq(buf, 3, 40));
}

/* Run a command's function on @args; its status, its stderr in @err */
static int run(int (*fn)(int, char **), const char *name, char **args,
	       char *err, size_t err_size)
{
	FILE *saved = stderr, *out = stdout;
	char *text = NULL;
	size_t len;
	int argc, ret;

	for (argc = 0; args[argc]; argc++)
		;
	cmd = name;
	target = NULL;
	json = false;
	optind = 0;
	stderr = open_memstream(&text, &len);
	stdout = fopen("/dev/null", "w");
	ret = fn(argc, args);
	fclose(stderr);
	fclose(stdout);
	stderr = saved;
	stdout = out;
	snprintf(err, err_size, "%s", text ? text : "");
	free(text);
	return ret;
}

#define CHECK_USAGE(want, fn, ...)					\
	do {								\
		char *args_[] = { #fn, __VA_ARGS__, NULL };		\
		char got_[256], want_[256];				\
									\
		snprintf(want_, sizeof(want_),				\
			 "cbmctl: %s: %s\nTry 'cbmctl %s --help'.\n",	\
			 #fn, want, #fn);				\
		CHECK_EQ(EXIT_USAGE,					\
			 run(cmd_##fn, #fn, args_, got_, sizeof(got_)));	\
		CHECK_STR(want_, got_);					\
	} while (0)

static void test_option_errors(void)
{
	char *help[] = { "tail", "x", "-h", NULL };
	char err[256];

	CHECK_USAGE("bad option '--bogus'", tail, "x", "--bogus");
	CHECK_USAGE("bad option '-x'", tail, "x", "-x");
	/* Inside a group, and after a long option: still the right name */
	CHECK_USAGE("bad option '-x'", tail, "x", "--json", "-xf");
	CHECK_USAGE("bad option '-q'", ls, "-q");
	CHECK_USAGE("option --from needs a value", tail, "x", "--from");
	CHECK_USAGE("option --from needs a value", tail, "x", "--fr");
	CHECK_USAGE("option -n needs a value", tail, "x", "-fn");
	CHECK_USAGE("option --capacity needs a value", create, "x", "--capacity");
	CHECK_USAGE("option --follow takes no value", tail, "x", "--follow=1");
	CHECK_USAGE("option --json takes no value", dump, "x", "--json=1");
	CHECK_USAGE("bad option '--f'", tail, "x", "--f");
	CHECK_USAGE("--from, --since and --last exclude each other", tail,
		    "x", "--last", "2", "--from", "3");
	/* The same one twice is no conflict: the bad option is the error */
	CHECK_USAGE("bad option '--bogus'", tail, "x", "--last", "2",
		    "--last", "3", "--bogus");
	CHECK_USAGE("bad option '--bogus'", tail, "x", "--from", "2",
		    "--from", "3", "--bogus");
	CHECK_USAGE("bad mode '8': octal, 0777 at most", create, "x",
		    "--mode", "8");
	CHECK_EQ(EXIT_OK, run(cmd_tail, "tail", help, err, sizeof(err)));
	CHECK_STR("", err);
}

/* A save file written as save_write() does, then read by load */
static void test_save_round_trip(void)
{
	static const char *const payloads[] = {
		"", "plain", "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f",
		"\xe2\x80\xa8\xe2\x80\xa9", "\xff\xfe", "a\0b", "\xed\xa0\x80",
		"\xf0\x9f\x98\x80", "\xc2\x85\xe2\x80\xae",
	};
	static const size_t lens[] = { 0, 5, 14, 6, 2, 3, 3, 4, 5 };
	const size_t n = ARRAY_SIZE(lens);
	struct cbm_autoresize ar = { .high_pct = 90 };
	struct cbm_window w = { .max_msgs = 4 };
	struct saved s = { 0 };
	char *text = NULL;
	size_t len, i;
	FILE *f;

	f = open_memstream(&text, &len);
	fprintf(f, "{\"cbm_save\":1,\"name\":\"x\",\"capacity\":4096,"
		"\"mode\":\"0000\",\"flags\":1,\"next_seq\":100,\"msgs\":%zu,"
		"\"window\":", n);
	print_window_json(f, &w);
	fputs(",\"autoresize\":", f);
	print_autoresize_json(f, &ar);
	fputs("}\n", f);
	for (i = 0; i < n; i++) {
		struct cbm_record r = {
			.hdr_len = sizeof(r), .len = lens[i], .seq = i * 3,
			.ts_ns = i, .role = i % __CBM_ROLE_MAX,
			.flags = 0x10000, .tokens = 7,
		};

		print_message_json(f, &r, payloads[i]);
	}
	CHECK_EQ(0, fclose(f));
	f = fmemopen(text, len, "r");
	CHECK_EQ(EXIT_OK, load_read(f, &s));
	fclose(f);
	CHECK_EQ(n, s.n);
	CHECK_EQ(0, s.mode);
	CHECK_EQ(1, s.flags);
	CHECK_EQ(100, s.next_seq);
	CHECK_EQ(4, s.win.max_msgs);
	CHECK_EQ(90, s.ar.high_pct);
	for (i = 0; i < s.n && i < n; i++) {
		const struct cbm_saved_message *m = &s.msgs[i];

		check(m->msg.len == lens[i] &&
		      !memcmp(m->msg.data, payloads[i], lens[i]) &&
		      m->seq == i * 3 && m->ts_ns == i &&
		      m->msg.role == i % __CBM_ROLE_MAX &&
		      m->msg.tokens == 7 && m->msg.flags == 0x10000,
		      __LINE__, "message %zu differs", i);
	}
	saved_free(&s);
	free(text);
}

static const struct host_test tests[] = {
	{ "json_members", test_json_members },
	{ "json_strings", test_json_strings },
	{ "text_escapes", test_text_escapes },
	{ "save_next_seq", test_save_next_seq },
	{ "option_errors", test_option_errors },
	{ "save_round_trip", test_save_round_trip },
};

int main(void)
{
	return host_test_run(tests, sizeof(tests) / sizeof(tests[0]));
}
