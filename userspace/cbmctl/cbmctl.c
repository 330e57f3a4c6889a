// SPDX-License-Identifier: GPL-2.0
/*
 * cbmctl - look at and manage cbm conversations from the command line
 *
 * Everything goes through libcbm: the device for what needs a file bound
 * to the conversation (send, read, configure, restore), the "cbm" generic
 * netlink family for what needs none (list, statistics, events). See
 * Documentation/cbmctl.rst, or cbmctl --help.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "libcbm.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Exit codes, as cbmctl --help and Documentation/cbmctl.rst state them */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

#define NSEC_PER_USEC	1000ULL
#define NSEC_PER_MSEC	1000000ULL
#define NSEC_PER_SEC	1000000000ULL

/* Messages tail shows without --from, --since or --last, as tail(1) */
#define TAIL_DEFAULT_LAST	10

/* Version of the save file format, its header's "cbm_save" */
#define SAVE_VERSION	1

/* Octal digits of a mode, as cbmctl prints it */
#define MODE_MASK	0777U

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *help;
};

/* The command running and what it works on, for error messages */
static const char *cmd = "";
static const char *target;
/* --json: JSON (Lines) instead of text for people */
static bool json;

static const struct command *find_command(const char *name);

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt,
							      ...)
{
	va_list ap;

	fprintf(stderr, "cbmctl: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'cbmctl %s --help'.\n", cmd);
	return EXIT_USAGE;
}

/* "cbmctl: CMD NAME: strerror (ENAME)" for a negative errno @err */
static int fail(int err)
{
	const char *ename = strerrorname_np(-err);

	fprintf(stderr, "cbmctl: %s%s%s: %s (%s)\n", cmd, target ? " " : "",
		target ? target : "", strerror(-err), ename ? ename : "?");
	return EXIT_FAIL;
}

static int __attribute__((format(printf, 1, 2))) failf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cbmctl: %s%s%s: ", cmd, target ? " " : "",
		target ? target : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	putc('\n', stderr);
	return EXIT_FAIL;
}

/* Output that could not be written is a failure: scripts read it */
static int finish_output(int ret)
{
	if ((fflush(stdout) || ferror(stdout)) && ret == EXIT_OK)
		return failf("writing the output failed");
	return ret;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return !errno && !*end;
}

/* A u32 in decimal, or in hex with 0x */
static bool parse_u32(const char *s, uint32_t *v)
{
	unsigned long long n;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || *end || n > UINT32_MAX)
		return false;
	*v = n;
	return true;
}

/* Bytes, with an optional binary suffix K, M, G or T */
static bool parse_size(const char *s, uint64_t *v)
{
	static const char suffixes[] = "KMGT";
	unsigned int shift = 0;
	const char *p;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end) {
		p = strchr(suffixes, *end & ~0x20);
		if (!p || !*p || end[1])
			return false;
		shift = 10 * (p - suffixes + 1);
	}
	if (*v > UINT64_MAX >> shift)
		return false;
	*v <<= shift;
	return true;
}

static const struct {
	const char *unit;
	uint64_t ns;
} duration_units[] = {
	{ "d", 86400 * NSEC_PER_SEC },
	{ "h", 3600 * NSEC_PER_SEC },
	{ "m", 60 * NSEC_PER_SEC },
	{ "s", NSEC_PER_SEC },
	{ "ms", NSEC_PER_MSEC },
	{ "us", NSEC_PER_USEC },
	{ "ns", 1 },
};

/* A duration: a number and a unit of duration_units, seconds without */
static bool parse_duration(const char *s, uint64_t *ns)
{
	uint64_t mult = NSEC_PER_SEC;
	size_t i;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*ns = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end) {
		for (i = 0; i < ARRAY_SIZE(duration_units); i++) {
			if (!strcmp(end, duration_units[i].unit))
				break;
		}
		if (i == ARRAY_SIZE(duration_units))
			return false;
		mult = duration_units[i].ns;
	}
	if (*ns > UINT64_MAX / mult)
		return false;
	*ns *= mult;
	return true;
}

/* A duration in the largest unit that states it exactly */
static void print_duration(FILE *f, uint64_t ns)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(duration_units) - 1; i++) {
		if (ns && !(ns % duration_units[i].ns))
			break;
	}
	fprintf(f, "%llu%s", (unsigned long long)(ns / duration_units[i].ns),
		duration_units[i].unit);
}

/*
 * --since: seconds since the epoch, with up to nine decimals, or a
 * duration before now with a leading '-' ("-10s", "-5m")
 */
static bool parse_since(const char *s, uint64_t *ns)
{
	uint64_t sec, frac = 0, ago, scale = NSEC_PER_SEC;
	struct timespec now;
	const char *dot;
	char buf[32];

	if (*s == '-') {
		if (!parse_duration(s + 1, &ago) ||
		    clock_gettime(CLOCK_REALTIME, &now))
			return false;
		*ns = (uint64_t)now.tv_sec * NSEC_PER_SEC + now.tv_nsec;
		*ns = ago < *ns ? *ns - ago : 0;
		return true;
	}
	dot = strchr(s, '.');
	if (!dot)
		return parse_u64(s, &sec) && sec <= UINT64_MAX / NSEC_PER_SEC &&
		       (*ns = sec * NSEC_PER_SEC, true);
	if ((size_t)(dot - s) >= sizeof(buf) || !dot[1] || strlen(dot + 1) > 9)
		return false;
	memcpy(buf, s, dot - s);
	buf[dot - s] = '\0';
	if (!parse_u64(buf, &sec) || !parse_u64(dot + 1, &frac) ||
	    sec > UINT64_MAX / NSEC_PER_SEC - 1)
		return false;
	for (dot++; *dot; dot++)
		scale /= 10;
	*ns = sec * NSEC_PER_SEC + frac * scale;
	return true;
}

static bool parse_mode(const char *s, uint32_t *mode)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '7')
		return false;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v > MODE_MASK)
		return false;
	*mode = v;
	return true;
}

static const char *role_name(unsigned int role)
{
	const char *name = cbm_role_name(role);

	return name ? name : "?";
}

/*
 * Options: each command passes its own long options; --json and --help
 * are everybody's. Returns the option, or -1 at the end; a usage error
 * comes back as '?' after getopt has printed it.
 */
#define COMMON_OPTIONS						\
	{ "json", no_argument, NULL, 'J' },			\
	{ "help", no_argument, NULL, 'h' }

static void command_help(const struct command *c, FILE *f)
{
	fprintf(f, "Usage: cbmctl %s %s\n%s", c->name, c->args, c->help);
}

/* The long option whose value is @val, or NULL */
static const struct option *find_long(const struct option *longopts, int val)
{
	for (; longopts->name; longopts++) {
		if (longopts->val == val)
			return longopts;
	}
	return NULL;
}

/*
 * The usage error for getopt_long()'s ':' (a missing value) or '?'. The
 * word at optind - 1 is the one that held the option, except for a short
 * option inside its group ("-xf"), where optind has not moved yet: optopt
 * names short options, the word long ones (optopt is 0 for an unknown
 * one, the option's value for one given a value it does not take).
 */
static int option_error(int opt, char **argv, const struct option *longopts)
{
	const struct option *o = find_long(longopts, optopt);
	const char *word = argv[optind - 1];
	bool is_long = !strncmp(word, "--", 2);

	if (opt == ':') {
		if (is_long && o)
			return usage_error("option --%s needs a value", o->name);
		return usage_error("option -%c needs a value", optopt);
	}
	if (!optopt)
		return usage_error("bad option '%s'", word);
	if (is_long && strchr(word, '=') && o && o->has_arg == no_argument)
		return usage_error("option --%s takes no value", o->name);
	return usage_error("bad option '-%c'", optopt);
}

/*
 * getopt_long() over a command's arguments: --json and --help (-h)
 * handled here. Returns the next option for the command, -1 at the end,
 * or a value above 255 that is the exit status to return (help or a usage
 * error).
 */
#define OPT_EXIT(status)	(256 + (status))

static int next_option(int argc, char **argv, const char *shortopts,
		       const struct option *longopts)
{
	char optstring[32];
	int opt;

	/* ':' first: a missing value comes back as ':', not as '?' */
	snprintf(optstring, sizeof(optstring), ":%sh", shortopts);
	opt = getopt_long(argc, argv, optstring, longopts, NULL);
	switch (opt) {
	case 'J':
		json = true;
		return next_option(argc, argv, shortopts, longopts);
	case 'h':
		command_help(find_command(cmd), stdout);
		return OPT_EXIT(EXIT_OK);
	case ':':
	case '?':
		return OPT_EXIT(option_error(opt, argv, longopts));
	}
	return opt;
}

/* The positional arguments left must number @min to @max */
static int check_args(int argc, char **argv, int min, int max)
{
	int n = argc - optind;

	if (n < min)
		return usage_error("missing argument");
	if (n > max)
		return usage_error("unexpected argument '%s'",
				   argv[optind + max]);
	return EXIT_OK;
}

/* plain_args() found the arguments fine: the command goes on */
#define ARGS_OK		(-1)

/*
 * For a command with no options of its own: parse the common ones and
 * check that @min to @max arguments are left. Returns ARGS_OK, or the
 * status to exit with (after --help, or a usage error).
 */
static int plain_args(int argc, char **argv, int min, int max)
{
	static const struct option opts[] = { COMMON_OPTIONS, { 0 } };
	int opt, ret;

	while ((opt = next_option(argc, argv, "", opts)) != -1) {
		if (opt > 255)
			return opt - 256;
	}
	ret = check_args(argc, argv, min, max);
	return ret ? ret : ARGS_OK;
}

static const char * const window_json_keys[] = {
	"flags", "max_msgs", "max_bytes", "max_tokens", "max_age_ns",
};

static void print_window_json(FILE *f, const struct cbm_window *w)
{
	fprintf(f, "{\"flags\":%u,\"max_msgs\":%llu,\"max_bytes\":%llu,"
		"\"max_tokens\":%llu,\"max_age_ns\":%llu}", w->flags,
		w->max_msgs, w->max_bytes, w->max_tokens, w->max_age_ns);
}

static void print_autoresize_json(FILE *f, const struct cbm_autoresize *a)
{
	fprintf(f, "{\"flags\":%u,\"min_capacity\":%llu,\"max_capacity\":%llu,"
		"\"high_pct\":%u,\"low_pct\":%u,\"period_ms\":%u}", a->flags,
		a->min_capacity, a->max_capacity, a->high_pct, a->low_pct,
		a->period_ms);
}

/* "4 turns, 1024 bytes, 100 tokens, age 10s", or "none" */
static void print_window_text(FILE *f, const struct cbm_window *w)
{
	const char *sep = "";

	if (w->max_msgs) {
		fprintf(f, "%llu %s", w->max_msgs,
			w->flags & CBM_WINDOW_TURNS ? "turns" : "msgs");
		sep = ", ";
	}
	if (w->max_bytes) {
		fprintf(f, "%s%llu bytes", sep, w->max_bytes);
		sep = ", ";
	}
	if (w->max_tokens) {
		fprintf(f, "%s%llu tokens", sep, w->max_tokens);
		sep = ", ";
	}
	if (w->max_age_ns) {
		fprintf(f, "%sage ", sep);
		print_duration(f, w->max_age_ns);
		sep = ", ";
	}
	if (!*sep)
		fputs("none", f);
}

static void print_stats_json(FILE *f, const struct cbm_stats *s)
{
	unsigned int i;

	fputs("{\"name\":", f);
	json_write_string(f, s->name, strlen(s->name));
	if (s->restricted) {
		/* Only the entry: the kernel withheld the rest */
		fprintf(f, ",\"flags\":%u,\"uid\":%u,\"gid\":%u,"
			"\"mode\":\"%04o\",\"capacity\":%llu,"
			"\"restricted\":true}", s->flags, s->uid, s->gid, s->mode,
			(unsigned long long)s->capacity);
		return;
	}
	fprintf(f, ",\"flags\":%u,\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\","
		"\"capacity\":%llu,\"used\":%llu,\"max_msg_size\":%u,"
		"\"msgs\":%llu,\"first_seq\":%llu,\"next_seq\":%llu,"
		"\"appended\":%llu,\"evicted\":%llu,\"expired\":%llu,"
		"\"lost\":%llu,\"resizes\":%llu,\"pinned\":%llu,"
		"\"pinned_bytes\":%llu,\"readers\":%u,\"window\":",
		s->flags, s->uid, s->gid, s->mode, (unsigned long long)s->capacity,
		(unsigned long long)s->used, s->max_msg_size,
		(unsigned long long)s->msgs, (unsigned long long)s->first_seq,
		(unsigned long long)s->next_seq,
		(unsigned long long)s->appended,
		(unsigned long long)s->evicted,
		(unsigned long long)s->expired, (unsigned long long)s->lost,
		(unsigned long long)s->resizes, (unsigned long long)s->pinned,
		(unsigned long long)s->pinned_bytes, s->readers);
	print_window_json(f, &s->window);
	fputs(",\"autoresize\":", f);
	print_autoresize_json(f, &s->autoresize);
	fputs(",\"reader_list\":[", f);
	for (i = 0; i < s->nr_reader_stats; i++) {
		const struct cbm_reader_stats *r = &s->reader_stats[i];

		fprintf(f, "%s{\"pid\":%u,\"flags\":%u,\"cursor\":%llu,"
			"\"lag\":%llu,\"lost\":%llu}", i ? "," : "", r->pid,
			r->flags, (unsigned long long)r->cursor,
			(unsigned long long)r->lag, (unsigned long long)r->lost);
	}
	fprintf(f, "],\"readers_truncated\":%s}", s->readers_truncated ?
		"true" : "false");
}

/* ls */

struct ls_list {
	struct cbm_stats *v;
	size_t n;
};

static int ls_add(const struct cbm_stats *stats, void *ctx)
{
	struct ls_list *list = ctx;
	struct cbm_stats *v;

	if (json) {
		print_stats_json(stdout, stats);
		putchar('\n');
		return 0;
	}
	v = realloc(list->v, (list->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	list->v = v;
	v[list->n] = *stats;
	/* Valid only during the callback, and ls shows only the count */
	v[list->n].reader_stats = NULL;
	v[list->n].nr_reader_stats = 0;
	list->n++;
	return 0;
}

static int cmd_ls(int argc, char **argv)
{
	struct ls_list list = { 0 };
	struct cbm_nl *nl;
	int ret, width = 4;
	size_t i;

	ret = plain_args(argc, argv, 0, 0);
	if (ret != ARGS_OK)
		return ret;
	ret = cbm_nl_open(&nl);
	if (ret)
		return fail(ret);
	ret = cbm_nl_dump(nl, ls_add, &list);
	cbm_nl_close(nl);
	if (ret) {
		free(list.v);
		return fail(ret);
	}
	for (i = 0; i < list.n; i++) {
		if ((int)strlen(list.v[i].name) > width)
			width = strlen(list.v[i].name);
	}
	if (!json)
		printf("%-*s %7s %4s %10s %10s %8s %7s %8s %8s\n", width,
		       "NAME", "OWNER", "MODE", "CAPACITY", "USED", "MSGS",
		       "READERS", "EVICTED", "LOST");
	for (i = 0; i < list.n; i++) {
		const struct cbm_stats *s = &list.v[i];

		if (s->restricted) {
			printf("%-*s %7u %04o %10llu %10s %8s %7s %8s %8s\n",
			       width, s->name, s->uid, s->mode,
			       (unsigned long long)s->capacity, "-", "-", "-",
			       "-", "-");
			continue;
		}
		printf("%-*s %7u %04o %10llu %10llu %8llu %7u %8llu %8llu\n",
		       width, s->name, s->uid, s->mode,
		       (unsigned long long)s->capacity,
		       (unsigned long long)s->used,
		       (unsigned long long)s->msgs, s->readers,
		       (unsigned long long)s->evicted,
		       (unsigned long long)s->lost);
	}
	free(list.v);
	return EXIT_OK;
}

/* stat */

static void print_stats_text(const struct cbm_stats *s)
{
	const struct cbm_autoresize *a = &s->autoresize;
	unsigned int i;

	printf("name:          %s\n", s->name);
	printf("owner:         uid %u, gid %u\n", s->uid, s->gid);
	printf("mode:          %04o\n", s->mode);
	printf("policy:        %s\n", s->flags & CBM_CONV_LOSSLESS ?
	       "lossless" : "lossy");
	printf("capacity:      %llu\n", (unsigned long long)s->capacity);
	if (s->restricted) {
		printf("details:       withheld (no permission to read it)\n");
		return;
	}
	printf("used:          %llu\n", (unsigned long long)s->used);
	printf("max_msg_size:  %u\n", s->max_msg_size);
	printf("msgs:          %llu\n", (unsigned long long)s->msgs);
	printf("first_seq:     %llu\n", (unsigned long long)s->first_seq);
	printf("next_seq:      %llu\n", (unsigned long long)s->next_seq);
	printf("appended:      %llu\n", (unsigned long long)s->appended);
	printf("evicted:       %llu\n", (unsigned long long)s->evicted);
	printf("expired:       %llu\n", (unsigned long long)s->expired);
	printf("lost:          %llu\n", (unsigned long long)s->lost);
	printf("resizes:       %llu\n", (unsigned long long)s->resizes);
	printf("pinned:        %llu (%llu bytes)\n",
	       (unsigned long long)s->pinned,
	       (unsigned long long)s->pinned_bytes);
	printf("window:        ");
	print_window_text(stdout, &s->window);
	printf("\nautoresize:    ");
	if (a->flags & CBM_AUTORESIZE_ON)
		printf("%llu to %llu bytes, grow at %u%%, shrink at %u%%, period %ums\n",
		       (unsigned long long)a->min_capacity,
		       (unsigned long long)a->max_capacity, a->high_pct,
		       a->low_pct, a->period_ms);
	else
		printf("off\n");
	printf("readers:       %u%s\n", s->readers,
	       s->readers_truncated ? " (not all listed)" : "");
	if (!s->nr_reader_stats)
		return;
	printf("  %8s %-8s %10s %10s %10s\n", "PID", "POLICY", "CURSOR", "LAG",
	       "LOST");
	for (i = 0; i < s->nr_reader_stats; i++) {
		const struct cbm_reader_stats *r = &s->reader_stats[i];

		printf("  %8u %-8s %10llu %10llu %10llu\n", r->pid,
		       r->flags & CBM_READER_LOSSLESS ? "lossless" : "lossy",
		       (unsigned long long)r->cursor,
		       (unsigned long long)r->lag, (unsigned long long)r->lost);
	}
}

static int get_stats(struct cbm_stats **statsp)
{
	struct cbm_nl *nl;
	int ret;

	ret = cbm_nl_open(&nl);
	if (ret)
		return ret;
	ret = cbm_nl_get(nl, target, statsp);
	cbm_nl_close(nl);
	return ret;
}

static int cmd_stat(int argc, char **argv)
{
	struct cbm_stats *stats;
	int ret;

	ret = plain_args(argc, argv, 1, 1);
	if (ret != ARGS_OK)
		return ret;
	target = argv[optind];
	ret = get_stats(&stats);
	if (ret)
		return fail(ret);
	if (json) {
		print_stats_json(stdout, stats);
		putchar('\n');
	} else {
		print_stats_text(stats);
	}
	cbm_stats_free(stats);
	return EXIT_OK;
}

/* create, rm */

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "capacity", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "lossless", no_argument, NULL, 'l' },
		COMMON_OPTIONS, { 0 }
	};
	LIBCBM_OPTS(cbm_open_opts, oo, .flags = CBM_OPEN_WRONLY);
	int opt, ret, status = EXIT_OK;
	struct cbm *c;

	while ((opt = next_option(argc, argv, "c:m:l", opts)) != -1) {
		switch (opt) {
		case 'c':
			if (!parse_size(optarg, &oo.capacity))
				return usage_error("bad capacity '%s'", optarg);
			break;
		case 'm':
			if (!parse_mode(optarg, &oo.mode))
				return usage_error("bad mode '%s': octal, 0777 at most",
						   optarg);
			/* Even 0: the mode asked for, not the default */
			oo.flags |= CBM_OPEN_MODE;
			break;
		case 'l':
			oo.conv_flags |= CBM_CONV_LOSSLESS;
			break;
		default:
			return opt - 256;
		}
	}
	ret = check_args(argc, argv, 1, INT_MAX);
	if (ret)
		return ret;
	for (; optind < argc; optind++) {
		target = argv[optind];
		ret = cbm_create(target, &oo, &c);
		if (ret) {
			status = fail(ret);
			continue;
		}
		cbm_close(c);
	}
	return status;
}

static int cmd_rm(int argc, char **argv)
{
	int ret, status = EXIT_OK;

	ret = plain_args(argc, argv, 1, INT_MAX);
	if (ret != ARGS_OK)
		return ret;
	for (; optind < argc; optind++) {
		target = argv[optind];
		ret = cbm_unlink(target);
		if (ret)
			status = fail(ret);
	}
	return status;
}

/* send */

/* The whole of stdin, one message */
static int read_stdin(char **bufp, size_t *lenp)
{
	size_t len = 0, size = 4096;
	char *buf = NULL, *nbuf;
	size_t n;

	for (;;) {
		if (!buf || len == size) {
			size = buf ? size * 2 : size;
			nbuf = realloc(buf, size);
			if (!nbuf) {
				free(buf);
				return -ENOMEM;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, size - len, stdin);
		len += n;
		if (n)
			continue;
		if (ferror(stdin)) {
			free(buf);
			return -EIO;
		}
		break;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int cmd_send(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "pin", no_argument, NULL, 'p' },
		{ "tokens", required_argument, NULL, 't' },
		{ "flags", required_argument, NULL, 'f' },
		COMMON_OPTIONS, { 0 }
	};
	LIBCBM_OPTS(cbm_open_opts, oo, .flags = CBM_OPEN_WRONLY);
	struct cbm_message msg = { .role = CBM_ROLE_USER };
	char *buf = NULL;
	int opt, ret, role;
	uint32_t bits;
	uint64_t seq;
	struct cbm *c;

	while ((opt = next_option(argc, argv, "r:pt:f:", opts)) != -1) {
		switch (opt) {
		case 'r':
			role = cbm_role_parse(optarg);
			if (role < 0)
				return usage_error("unknown role '%s'", optarg);
			msg.role = role;
			break;
		case 'p':
			msg.flags |= CBM_MSG_PINNED;
			break;
		case 't':
			if (!parse_u32(optarg, &msg.tokens))
				return usage_error("bad token count '%s'", optarg);
			break;
		case 'f':
			if (!parse_u32(optarg, &bits) ||
			    (bits & ~CBM_MSG_APP_MASK))
				return usage_error("bad flags '%s': application bits (0x%08x) only",
						   optarg, CBM_MSG_APP_MASK);
			msg.flags |= bits;
			break;
		default:
			return opt - 256;
		}
	}
	ret = check_args(argc, argv, 1, 2);
	if (ret)
		return ret;
	target = argv[optind];
	if (optind + 1 < argc) {
		msg.data = argv[optind + 1];
		msg.len = strlen(argv[optind + 1]);
	} else {
		ret = read_stdin(&buf, &msg.len);
		if (ret)
			return fail(ret);
		msg.data = buf;
	}
	ret = cbm_attach(target, &oo, &c);
	if (!ret) {
		ret = cbm_send(c, &msg, &seq);
		cbm_close(c);
	}
	free(buf);
	if (ret)
		return fail(ret);
	if (json)
		printf("{\"seq\":%llu}\n", (unsigned long long)seq);
	else
		printf("%llu\n", (unsigned long long)seq);
	return EXIT_OK;
}

/* Message lines of dump, tail and save */

static void print_message_json(FILE *f, const struct cbm_record *rec,
			       const void *payload)
{
	fprintf(f, "{\"seq\":%llu,\"ts_ns\":%llu,\"role\":\"%s\",\"flags\":%u,"
		"\"tokens\":%u,\"pid\":%u,\"uid\":%u,\"len\":%u,",
		rec->seq, rec->ts_ns, role_name(rec->role), rec->flags,
		rec->tokens, rec->pid, rec->uid, rec->len);
	if (utf8_valid(payload, rec->len)) {
		fputs("\"data\":", f);
		json_write_string(f, payload, rec->len);
	} else {
		fputs("\"data_b64\":", f);
		json_write_base64(f, payload, rec->len);
	}
	fputs("}\n", f);
}

/* "#SEQ DATE TIME.mmm ROLE pid=P uid=U [pinned] [flags=] [tokens=]: TEXT" */
static void print_message_text(FILE *f, const struct cbm_record *rec,
			       const void *payload)
{
	time_t sec = rec->ts_ns / NSEC_PER_SEC;
	char when[32] = "?";
	struct tm tm;

	if (localtime_r(&sec, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "#%llu %s.%03llu %s pid=%u uid=%u", rec->seq, when,
		rec->ts_ns % NSEC_PER_SEC / NSEC_PER_MSEC, role_name(rec->role),
		rec->pid, rec->uid);
	if (rec->flags & CBM_MSG_PINNED)
		fputs(" pinned", f);
	if (rec->flags & ~CBM_MSG_PINNED)
		fprintf(f, " flags=0x%x", rec->flags & ~CBM_MSG_PINNED);
	if (rec->tokens)
		fprintf(f, " tokens=%u", rec->tokens);
	fputs(": ", f);
	text_write(f, payload, rec->len);
	putc('\n', f);
}

static void print_record(FILE *f, const struct cbm_record *rec,
			 const void *payload)
{
	if (rec->type == CBM_RECORD_GAP) {
		if (json)
			fprintf(f, "{\"gap\":true,\"seq\":%llu,\"lost\":%llu}\n",
				rec->seq, rec->lost);
		else
			fprintf(f, "-- lost %llu messages from #%llu --\n",
				rec->lost, rec->seq);
	} else if (json) {
		print_message_json(f, rec, payload);
	} else {
		print_message_text(f, rec, payload);
	}
}

/* dump */

static int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "last", required_argument, NULL, 'n' },
		COMMON_OPTIONS, { 0 }
	};
	LIBCBM_OPTS(cbm_open_opts, oo,
		    .flags = CBM_OPEN_RDONLY | CBM_OPEN_LOSSY);
	const struct cbm_record *rec;
	uint64_t last = 0, count, i;
	void *buf;
	size_t len;
	struct cbm *c;
	int opt, ret;

	while ((opt = next_option(argc, argv, "n:", opts)) != -1) {
		if (opt != 'n')
			return opt - 256;
		if (!parse_u64(optarg, &last) || !last)
			return usage_error("bad count '%s'", optarg);
	}
	ret = check_args(argc, argv, 1, 1);
	if (ret)
		return ret;
	target = argv[optind];
	ret = cbm_attach(target, &oo, &c);
	if (ret)
		return fail(ret);
	ret = cbm_read_window(c, last, &buf, &len, &count);
	cbm_close(c);
	if (ret)
		return fail(ret);
	rec = buf;
	for (i = 0; i < count; i++, rec = cbm_record_next(rec))
		print_record(stdout, rec, cbm_record_payload(rec));
	free(buf);
	return EXIT_OK;
}

/* tail */

/*
 * Format the record in the map, then print it only if the map says it
 * stayed intact meanwhile: a torn record is never shown.
 * Return: 1 printed, 0 torn (peek again), or a negative errno.
 */
static int tail_show(struct cbm_map *map, const struct cbm_map_rec *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	f = open_memstream(&text, &len);
	if (!f)
		return -errno;
	print_record(f, &r->hdr, r->payload);
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	ret = cbm_map_release(map);
	if (!ret)
		fwrite(text, 1, len, stdout);
	free(text);
	return ret == -ESTALE ? 0 : ret ? ret : 1;
}

static int cmd_tail(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "from", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 't' },
		{ "last", required_argument, NULL, 'n' },
		COMMON_OPTIONS, { 0 }
	};
	LIBCBM_OPTS(cbm_open_opts, oo,
		    .flags = CBM_OPEN_RDONLY | CBM_OPEN_LOSSY);
	unsigned int whence = CBM_SEEK_LAST;
	uint64_t value = TAIL_DEFAULT_LAST, from;
	struct cbm_map_rec r;
	bool follow = false;
	int opt, ret, seek_opt = 0;
	struct cbm_map map;
	struct cbm *c;

	while ((opt = next_option(argc, argv, "fn:", opts)) != -1) {
		/* The same one again replaces its value, as options do */
		if ((opt == 's' || opt == 't' || opt == 'n') && seek_opt &&
		    opt != seek_opt)
			return usage_error("--from, --since and --last exclude each other");
		switch (opt) {
		case 'f':
			follow = true;
			break;
		case 's':
			whence = CBM_SEEK_SEQ;
			seek_opt = opt;
			if (!parse_u64(optarg, &value))
				return usage_error("bad sequence number '%s'", optarg);
			break;
		case 't':
			whence = CBM_SEEK_TIME;
			seek_opt = opt;
			if (!parse_since(optarg, &value))
				return usage_error("bad time '%s': seconds since the epoch, or -DURATION",
						   optarg);
			break;
		case 'n':
			whence = CBM_SEEK_LAST;
			seek_opt = opt;
			if (!parse_u64(optarg, &value))
				return usage_error("bad count '%s'", optarg);
			break;
		default:
			return opt - 256;
		}
	}
	ret = check_args(argc, argv, 1, 1);
	if (ret)
		return ret;
	target = argv[optind];
	if (follow && setvbuf(stdout, NULL, _IOLBF, 0))
		return failf("setvbuf failed");
	ret = cbm_attach(target, &oo, &c);
	if (ret)
		return fail(ret);
	/*
	 * The kernel finds where to start (by sequence number, time or
	 * count); the map reader starts at the oldest record and skips
	 * those before it.
	 */
	ret = cbm_seek(c, whence, value, &from);
	if (!ret)
		ret = cbm_map_attach(c, CBM_MAP_OLDEST, &map);
	if (ret) {
		cbm_close(c);
		return fail(ret);
	}
	for (;;) {
		ret = cbm_map_peek(&map, &r);
		if (ret < 0)
			break;
		if (ret) {
			if (r.hdr.type == CBM_RECORD_GAP &&
			    r.hdr.seq + r.hdr.lost > from && r.hdr.seq < from) {
				r.hdr.lost -= from - r.hdr.seq;
				r.hdr.seq = from;
			}
			if (r.hdr.seq < from) {
				ret = cbm_map_release(&map);
				if (ret && ret != -ESTALE)
					break;
				continue;
			}
			ret = tail_show(&map, &r);
			if (ret < 0)
				break;
			continue;
		}
		if (!follow || cbm_map_unlinked(&map))
			break;
		fflush(stdout);
		ret = cbm_map_wait(&map, -1);
		if (ret < 0)
			break;
	}
	cbm_map_close(&map);
	cbm_close(c);
	return ret < 0 ? fail(ret) : EXIT_OK;
}

/* window */

static int cmd_window(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "msgs", required_argument, NULL, 'm' },
		{ "turns", no_argument, NULL, 'T' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "tokens", required_argument, NULL, 't' },
		{ "age", required_argument, NULL, 'a' },
		{ "clear", no_argument, NULL, 'C' },
		COMMON_OPTIONS, { 0 }
	};
	LIBCBM_OPTS(cbm_open_opts, oo, .flags = CBM_OPEN_WRONLY);
	struct cbm_window win = { .size = sizeof(win) };
	struct cbm_stats *stats;
	bool set = false;
	struct cbm *c;
	int opt, ret;
	uint64_t v;

	while ((opt = next_option(argc, argv, "", opts)) != -1) {
		set = true;
		switch (opt) {
		case 'm':
			if (!parse_u64(optarg, &v))
				return usage_error("bad count '%s'", optarg);
			win.max_msgs = v;
			break;
		case 'T':
			win.flags |= CBM_WINDOW_TURNS;
			break;
		case 'b':
			if (!parse_size(optarg, &v))
				return usage_error("bad size '%s'", optarg);
			win.max_bytes = v;
			break;
		case 't':
			if (!parse_u64(optarg, &v))
				return usage_error("bad token count '%s'", optarg);
			win.max_tokens = v;
			break;
		case 'a':
			if (!parse_duration(optarg, &v))
				return usage_error("bad duration '%s'", optarg);
			win.max_age_ns = v;
			break;
		case 'C':
			break;
		default:
			return opt - 256;
		}
	}
	ret = check_args(argc, argv, 1, 1);
	if (ret)
		return ret;
	target = argv[optind];
	if (set) {
		if ((win.flags & CBM_WINDOW_TURNS) && !win.max_msgs)
			return usage_error("--turns needs --msgs");
		ret = cbm_attach(target, &oo, &c);
		if (ret)
			return fail(ret);
		ret = cbm_set_window(c, &win);
		cbm_close(c);
		return ret ? fail(ret) : EXIT_OK;
	}
	ret = get_stats(&stats);
	if (ret)
		return fail(ret);
	if (stats->restricted) {
		/* The kernel withheld it, as read() would be refused */
		cbm_stats_free(stats);
		return fail(-EACCES);
	}
	if (json) {
		print_window_json(stdout, &stats->window);
		putchar('\n');
	} else {
		print_window_text(stdout, &stats->window);
		putchar('\n');
	}
	cbm_stats_free(stats);
	return EXIT_OK;
}

/* resize */

static int cmd_resize(int argc, char **argv)
{
	LIBCBM_OPTS(cbm_open_opts, oo, .flags = CBM_OPEN_WRONLY);
	uint64_t capacity, evicted;
	struct cbm *c;
	int ret;

	ret = plain_args(argc, argv, 2, 2);
	if (ret != ARGS_OK)
		return ret;
	target = argv[optind];
	if (!parse_size(argv[optind + 1], &capacity))
		return usage_error("bad size '%s'", argv[optind + 1]);
	ret = cbm_attach(target, &oo, &c);
	if (ret)
		return fail(ret);
	ret = cbm_resize(c, capacity, &capacity, &evicted);
	cbm_close(c);
	if (ret)
		return fail(ret);
	if (json)
		printf("{\"capacity\":%llu,\"evicted\":%llu}\n",
		       (unsigned long long)capacity,
		       (unsigned long long)evicted);
	else
		printf("capacity %llu, %llu messages evicted\n",
		       (unsigned long long)capacity,
		       (unsigned long long)evicted);
	return EXIT_OK;
}

/* watch */

struct watch {
	const char *name;
	uint64_t left;
	bool counted;
};

static int watch_event(const struct cbm_event *ev, void *ctx)
{
	const char *type = cbm_event_name(ev->type);
	const struct cbm_stats *s = ev->stats;
	struct watch *w = ctx;

	if (w->name && strcmp(w->name, ev->name))
		return 0;
	if (json) {
		if (type)
			printf("{\"event\":\"%s\",\"name\":", type);
		else
			printf("{\"event\":%u,\"name\":", ev->type);
		json_write_string(stdout, ev->name, strlen(ev->name));
	} else {
		if (type)
			printf("%s %s", type, ev->name);
		else
			printf("event %u %s", ev->type, ev->name);
	}
	switch (ev->type) {
	case CBM_NL_EVENT_CREATED:
		if (json) {
			fputs(",\"conv\":", stdout);
			print_stats_json(stdout, s);
		} else {
			printf(" capacity=%llu mode=%04o uid=%u gid=%u %s",
			       (unsigned long long)s->capacity, s->mode, s->uid,
			       s->gid, s->flags & CBM_CONV_LOSSLESS ?
			       "lossless" : "lossy");
		}
		break;
	case CBM_NL_EVENT_RESIZED:
		printf(json ? ",\"capacity\":%llu,\"resizes\":%llu" :
		       " capacity=%llu resizes=%llu",
		       (unsigned long long)s->capacity,
		       (unsigned long long)s->resizes);
		break;
	case CBM_NL_EVENT_WINDOW:
		if (json) {
			fputs(",\"window\":", stdout);
			print_window_json(stdout, &s->window);
		} else {
			putchar(' ');
			print_window_text(stdout, &s->window);
		}
		break;
	case CBM_NL_EVENT_EVICTED:
		printf(json ? ",\"count\":%llu,\"evicted\":%llu" :
		       " count=%llu evicted=%llu",
		       (unsigned long long)ev->count,
		       (unsigned long long)s->evicted);
		break;
	}
	puts(json ? "}" : "");
	if (w->counted && !--w->left)
		return 1;
	return 0;
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		COMMON_OPTIONS, { 0 }
	};
	struct watch w = { 0 };
	bool quiet = false;
	struct cbm_nl *nl;
	int opt, ret;

	while ((opt = next_option(argc, argv, "n:q", opts)) != -1) {
		switch (opt) {
		case 'n':
			if (!parse_u64(optarg, &w.left) || !w.left)
				return usage_error("bad count '%s'", optarg);
			w.counted = true;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			return opt - 256;
		}
	}
	ret = check_args(argc, argv, 0, 1);
	if (ret)
		return ret;
	if (optind < argc)
		target = w.name = argv[optind];
	if (setvbuf(stdout, NULL, _IOLBF, 0))
		return failf("setvbuf failed");
	ret = cbm_nl_open(&nl);
	if (ret)
		return fail(ret);
	ret = cbm_nl_subscribe(nl);
	if (ret) {
		cbm_nl_close(nl);
		return fail(ret);
	}
	/* As inotifywait: a script starts acting once this line shows */
	if (!quiet)
		fprintf(stderr, "cbmctl: watch: watching events\n");
	for (;;) {
		ret = cbm_nl_events(nl, watch_event, &w, -1);
		if (ret == -ENOBUFS) {
			fprintf(stderr, "cbmctl: watch: events were lost: %s (ENOBUFS)\n",
				strerror(ENOBUFS));
			continue;
		}
		if (ret < 0 || (w.counted && !w.left))
			break;
		if (ferror(stdout)) {
			ret = -EIO;
			break;
		}
	}
	cbm_nl_close(nl);
	return ret < 0 ? fail(ret) : EXIT_OK;
}

/* save */

/*
 * The next_seq to save with a snapshot of @count records at @buf, given
 * @next_seq, the conversation's as cbm_info() read it after the snapshot.
 * A message appended in between raises that past the snapshot's, and load
 * would then ask for a hole after the last saved message, which the
 * kernel allows only if every message before it is pinned. The ring holds
 * consecutive numbers up to the newest message, so a snapshot with a
 * message that is not pinned (one in the ring) ends with the newest one
 * of its time: the last record's number + 1 is the snapshot's next_seq,
 * whichever of its records are pinned. A snapshot of pinned messages
 * only, or of none, may come after a ring that eviction emptied, whose
 * numbers went on past them: @next_seq then, a hole the kernel allows.
 */
static uint64_t save_next_seq(const void *buf, uint64_t count,
			      uint64_t next_seq)
{
	const struct cbm_record *rec = buf, *last = NULL;
	bool only_pinned = true;
	uint64_t i;

	for (i = 0; i < count; i++, rec = cbm_record_next(rec)) {
		only_pinned = only_pinned && (rec->flags & CBM_MSG_PINNED);
		last = rec;
	}
	return only_pinned ? next_seq : last->seq + 1;
}

static int save_write(FILE *f, struct cbm *c, const char *name)
{
	struct cbm_autoresize ar = { .size = sizeof(ar) };
	struct cbm_window win = { .size = sizeof(win) };
	struct cbm_info info = { .size = sizeof(info) };
	const struct cbm_record *rec;
	uint64_t count, i;
	void *buf;
	size_t len;
	int ret;

	/*
	 * The snapshot first: the state read after it has a next_seq above
	 * every message in it, from which save_next_seq() finds the
	 * snapshot's own.
	 */
	ret = cbm_read_window(c, 0, &buf, &len, &count);
	if (ret)
		return ret;
	ret = cbm_info(c, &info);
	if (!ret)
		ret = cbm_get_window(c, &win);
	if (!ret)
		ret = cbm_get_autoresize(c, &ar);
	if (ret)
		goto out;
	fputs("{\"cbm_save\":1,\"name\":", f);
	json_write_string(f, name, strlen(name));
	fprintf(f, ",\"capacity\":%llu,\"mode\":\"%04o\",\"flags\":%u,"
		"\"next_seq\":%llu,\"msgs\":%llu,\"window\":", info.capacity,
		info.mode, info.flags & CBM_CONV_LOSSLESS,
		(unsigned long long)save_next_seq(buf, count, info.next_seq),
		(unsigned long long)count);
	print_window_json(f, &win);
	fputs(",\"autoresize\":", f);
	print_autoresize_json(f, &ar);
	fputs("}\n", f);
	rec = buf;
	for (i = 0; i < count; i++, rec = cbm_record_next(rec))
		print_message_json(f, rec, cbm_record_payload(rec));
out:
	free(buf);
	return ret;
}

static int cmd_save(int argc, char **argv)
{
	LIBCBM_OPTS(cbm_open_opts, oo,
		    .flags = CBM_OPEN_RDONLY | CBM_OPEN_LOSSY);
	const char *path;
	char *tmp = NULL;
	struct cbm *c;
	FILE *f;
	int ret, fd;

	ret = plain_args(argc, argv, 2, 2);
	if (ret != ARGS_OK)
		return ret;
	target = argv[optind];
	path = argv[optind + 1];
	ret = cbm_attach(target, &oo, &c);
	if (ret)
		return fail(ret);
	if (!strcmp(path, "-")) {
		ret = save_write(stdout, c, target);
		cbm_close(c);
		return ret ? fail(ret) : EXIT_OK;
	}
	/* A new file under a temporary name, renamed when complete */
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		cbm_close(c);
		return fail(-ENOMEM);
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		target = path;
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		goto err_unlink;
	}
	ret = save_write(f, c, target);
	if (!ret && (fflush(f) || ferror(f) || fsync(fileno(f))))
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path)) {
		ret = -errno;
		target = path;
	}
err_unlink:
	if (ret)
		unlink(tmp);
out:
	free(tmp);
	cbm_close(c);
	return ret ? fail(ret) : EXIT_OK;
}

/* load */

struct saved {
	struct cbm_saved_message *msgs;
	size_t n;
	char *name;
	uint64_t capacity;
	uint32_t mode;
	uint32_t flags;
	uint64_t next_seq;
	uint64_t count;
	struct cbm_window win;
	struct cbm_autoresize ar;
};

struct field {
	const char *key;
	enum json_type type;
	void *dst;
	unsigned int size;
};

/*
 * Copy the members of @obj into @fields: every field must be there with
 * its type, and nothing else; numbers must fit. Strings go as their
 * struct json_value. Returns 0 or -EINVAL with @err written.
 */
static int take_fields(const struct json_value *obj,
		       const struct field *fields, size_t nfields, char *err,
		       size_t err_size)
{
	const struct json_value *v;
	size_t i, j;

	for (i = 0; i < obj->n; i++) {
		for (j = 0; j < nfields; j++) {
			if (!strcmp(obj->members[i].key, fields[j].key))
				break;
		}
		if (j == nfields) {
			snprintf(err, err_size, "unknown key \"%s\"",
				 obj->members[i].key);
			return -EINVAL;
		}
	}
	for (j = 0; j < nfields; j++) {
		v = json_get(obj, fields[j].key);
		if (!v || v->type != fields[j].type) {
			snprintf(err, err_size, "\"%s\" %s", fields[j].key,
				 v ? "has the wrong type" : "is missing");
			return -EINVAL;
		}
		switch (fields[j].size) {
		case 0:
			*(const struct json_value **)fields[j].dst = v;
			break;
		case sizeof(uint32_t):
			if (v->num > UINT32_MAX) {
				snprintf(err, err_size, "\"%s\" is out of range",
					 fields[j].key);
				return -EINVAL;
			}
			*(uint32_t *)fields[j].dst = v->num;
			break;
		default:
			*(uint64_t *)fields[j].dst = v->num;
		}
	}
	return 0;
}

#define FIELD(k, t, d)	{ k, t, d, sizeof(*(d)) }
#define FIELD_VALUE(k, t, d)	{ k, t, d, 0 }

static int parse_header(const struct json_value *obj, struct saved *s,
			char *err, size_t err_size)
{
	const struct json_value *name, *mode, *win, *ar;
	uint64_t version;
	const struct field fields[] = {
		FIELD("cbm_save", JSON_NUMBER, &version),
		FIELD_VALUE("name", JSON_STRING, &name),
		FIELD("capacity", JSON_NUMBER, &s->capacity),
		FIELD_VALUE("mode", JSON_STRING, &mode),
		FIELD("flags", JSON_NUMBER, &s->flags),
		FIELD("next_seq", JSON_NUMBER, &s->next_seq),
		FIELD("msgs", JSON_NUMBER, &s->count),
		FIELD_VALUE("window", JSON_OBJECT, &win),
		FIELD_VALUE("autoresize", JSON_OBJECT, &ar),
	};
	const struct field win_fields[] = {
		FIELD(window_json_keys[0], JSON_NUMBER, &s->win.flags),
		FIELD(window_json_keys[1], JSON_NUMBER, &s->win.max_msgs),
		FIELD(window_json_keys[2], JSON_NUMBER, &s->win.max_bytes),
		FIELD(window_json_keys[3], JSON_NUMBER, &s->win.max_tokens),
		FIELD(window_json_keys[4], JSON_NUMBER, &s->win.max_age_ns),
	};
	const struct field ar_fields[] = {
		FIELD("flags", JSON_NUMBER, &s->ar.flags),
		FIELD("min_capacity", JSON_NUMBER, &s->ar.min_capacity),
		FIELD("max_capacity", JSON_NUMBER, &s->ar.max_capacity),
		FIELD("high_pct", JSON_NUMBER, &s->ar.high_pct),
		FIELD("low_pct", JSON_NUMBER, &s->ar.low_pct),
		FIELD("period_ms", JSON_NUMBER, &s->ar.period_ms),
	};
	int ret;

	ret = take_fields(obj, fields, ARRAY_SIZE(fields), err, err_size);
	if (!ret)
		ret = take_fields(win, win_fields, ARRAY_SIZE(win_fields),
				  err, err_size);
	if (!ret)
		ret = take_fields(ar, ar_fields, ARRAY_SIZE(ar_fields), err,
				  err_size);
	if (ret)
		return ret;
	if (version != SAVE_VERSION) {
		snprintf(err, err_size, "format version %llu, this cbmctl reads %d",
			 (unsigned long long)version, SAVE_VERSION);
		return -EINVAL;
	}
	if (!parse_mode(mode->str, &s->mode) ||
	    name->len != strlen(name->str) || name->len >= CBM_NAME_MAX) {
		snprintf(err, err_size, "bad \"%s\"", name->len >= CBM_NAME_MAX ||
			 name->len != strlen(name->str) ? "name" : "mode");
		return -EINVAL;
	}
	s->name = strdup(name->str);
	s->win.size = sizeof(s->win);
	s->ar.size = sizeof(s->ar);
	return s->name ? 0 : -ENOMEM;
}

static int parse_message(const struct json_value *obj,
			 struct cbm_saved_message *m, char *err,
			 size_t err_size)
{
	const struct json_value *role, *data = json_get(obj, "data");
	uint32_t pid, uid, len;
	unsigned char *bytes;
	size_t nbytes;
	int ret, r;
	const struct field fields[] = {
		FIELD("seq", JSON_NUMBER, &m->seq),
		FIELD("ts_ns", JSON_NUMBER, &m->ts_ns),
		FIELD_VALUE("role", JSON_STRING, &role),
		FIELD("flags", JSON_NUMBER, &m->msg.flags),
		FIELD("tokens", JSON_NUMBER, &m->msg.tokens),
		FIELD("pid", JSON_NUMBER, &pid),
		FIELD("uid", JSON_NUMBER, &uid),
		FIELD("len", JSON_NUMBER, &len),
		FIELD_VALUE(data ? "data" : "data_b64", JSON_STRING, &data),
	};

	ret = take_fields(obj, fields, ARRAY_SIZE(fields), err, err_size);
	if (ret)
		return ret;
	r = cbm_role_parse(role->str);
	if (r < 0) {
		snprintf(err, err_size, "unknown role \"%s\"", role->str);
		return -EINVAL;
	}
	m->msg.role = r;
	if (json_get(obj, "data")) {
		bytes = malloc(data->len + 1);
		if (!bytes)
			return -ENOMEM;
		memcpy(bytes, data->str, data->len);
		nbytes = data->len;
	} else {
		ret = base64_decode(data->str, data->len, &bytes, &nbytes);
		if (ret == -EINVAL)
			snprintf(err, err_size, "bad \"data_b64\"");
		if (ret)
			return ret;
	}
	if (nbytes != len) {
		snprintf(err, err_size, "\"len\" is %u, the data %zu bytes",
			 len, nbytes);
		free(bytes);
		return -EINVAL;
	}
	m->msg.data = bytes;
	m->msg.len = nbytes;
	return 0;
}

static void saved_free(struct saved *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free((void *)s->msgs[i].msg.data);
	free(s->msgs);
	free(s->name);
}

/* Read a save file; a line that is wrong is reported with its number */
static int load_read(FILE *f, struct saved *s)
{
	struct cbm_saved_message *msgs, *m;
	struct json_value obj;
	size_t size = 0, lineno = 0;
	char *line = NULL, err[160];
	ssize_t len;
	int ret = 0;

	while ((len = getline(&line, &size, f)) >= 0) {
		lineno++;
		if (len && line[len - 1] == '\n')
			len--;
		err[0] = '\0';
		ret = json_parse_line(line, len, &obj, err, sizeof(err));
		if (ret)
			goto err_line;
		if (lineno == 1) {
			ret = parse_header(&obj, s, err, sizeof(err));
			json_free(&obj);
			if (ret)
				goto err_line;
			continue;
		}
		msgs = realloc(s->msgs, (s->n + 1) * sizeof(*msgs));
		if (!msgs) {
			json_free(&obj);
			ret = -ENOMEM;
			break;
		}
		s->msgs = msgs;
		m = &msgs[s->n];
		memset(m, 0, sizeof(*m));
		ret = parse_message(&obj, m, err, sizeof(err));
		json_free(&obj);
		if (ret)
			goto err_line;
		s->n++;
		if (s->n > 1 && (m->seq <= m[-1].seq || m->ts_ns < m[-1].ts_ns)) {
			snprintf(err, sizeof(err),
				 "sequence numbers must increase and timestamps not decrease");
			ret = -EINVAL;
			goto err_line;
		}
		if (m->seq >= s->next_seq) {
			snprintf(err, sizeof(err), "\"seq\" is not below the header's \"next_seq\"");
			ret = -EINVAL;
			goto err_line;
		}
	}
	free(line);
	if (ret)
		return fail(ret);
	if (ferror(f))
		return failf("read error");
	if (!lineno)
		return failf("empty file");
	if (s->n != s->count)
		return failf("the header says %llu messages, the file has %zu",
			     (unsigned long long)s->count, s->n);
	return EXIT_OK;

err_line:
	free(line);
	if (ret == -ENOMEM)
		return fail(ret);
	return failf("line %zu: %s", lineno, err);
}

static int load_restore(const struct saved *s, const char *name)
{
	LIBCBM_OPTS(cbm_open_opts, oo, .flags = CBM_OPEN_WRONLY | CBM_OPEN_MODE,
		    .mode = s->mode, .conv_flags = s->flags & CBM_CONV_LOSSLESS,
		    .capacity = s->capacity);
	struct cbm *c;
	int ret;

	/* Write-only: a reader of a lossless conversation would hold it */
	ret = cbm_create(name, &oo, &c);
	if (ret)
		return fail(ret);
	ret = cbm_restore(c, s->msgs, s->n, s->next_seq);
	if (ret >= 0 && (size_t)ret < s->n) {
		failf("only %d of %zu messages restored", ret, s->n);
		goto err_unlink;
	}
	ret = ret < 0 ? ret : 0;
	if (!ret && (s->win.flags || s->win.max_msgs || s->win.max_bytes ||
		     s->win.max_tokens || s->win.max_age_ns))
		ret = cbm_set_window(c, &s->win);
	if (!ret && (s->ar.flags & CBM_AUTORESIZE_ON))
		ret = cbm_set_autoresize(c, &s->ar);
	if (!ret) {
		cbm_close(c);
		return EXIT_OK;
	}
	fail(ret);
err_unlink:
	/* Leave no half-restored conversation behind: a retry must work */
	cbm_close(c);
	cbm_unlink(name);
	return EXIT_FAIL;
}

static int cmd_load(int argc, char **argv)
{
	struct saved s = { 0 };
	const char *path;
	FILE *f;
	int ret;

	ret = plain_args(argc, argv, 1, 2);
	if (ret != ARGS_OK)
		return ret;
	path = argv[optind];
	target = path;
	f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f)
		return fail(-errno);
	ret = load_read(f, &s);
	if (f != stdin)
		fclose(f);
	if (!ret) {
		target = optind + 1 < argc ? argv[optind + 1] : s.name;
		ret = load_restore(&s, target);
	}
	saved_free(&s);
	return ret;
}

static const struct command commands[] = {
	{ "ls", cmd_ls, "[--json]",
	  "List the named conversations: owner uid, mode, capacity and used\n"
	  "bytes, stored messages, readers, evicted and lost messages.\n" },
	{ "stat", cmd_stat, "NAME [--json]",
	  "Show a conversation's state, window, auto-resize settings and readers.\n" },
	{ "create", cmd_create,
	  "NAME... [--capacity SIZE] [--mode MODE] [--lossless]",
	  "Create conversations (SIZE in bytes, K/M/G/T suffixes; MODE octal,\n"
	  "0600 by default).\n" },
	{ "rm", cmd_rm, "NAME...", "Unlink conversations.\n" },
	{ "send", cmd_send,
	  "NAME [--role ROLE] [--pin] [--tokens N] [--flags BITS] [--json] [TEXT]",
	  "Append one message, TEXT or else the whole of standard input, and\n"
	  "print its sequence number. ROLE: system, user (the default),\n"
	  "assistant, tool or other. BITS: application flags (0xffff0000).\n" },
	{ "tail", cmd_tail,
	  "NAME [-f] [--from SEQ | --since TIME | --last N] [--json]",
	  "Print the newest messages in the ring (10 unless told), read in\n"
	  "place through mmap(); -f follows new ones until the conversation\n"
	  "is unlinked. TIME: seconds since the epoch (decimals allowed), or\n"
	  "-DURATION before now (-10s, -5m). Lost messages show as gaps.\n" },
	{ "dump", cmd_dump, "NAME [--last N] [--json]",
	  "Print the stored messages (the window, pinned ones included), one\n"
	  "a line; with --json as JSON Lines.\n" },
	{ "window", cmd_window,
	  "NAME [--msgs N [--turns]] [--bytes SIZE] [--tokens N] [--age DURATION] [--clear] [--json]",
	  "Without options, show the window. With any, set it: the limits not\n"
	  "given are removed (--clear alone removes all). DURATION: a number\n"
	  "and ns, us, ms, s, m, h or d (seconds without a unit).\n" },
	{ "resize", cmd_resize, "NAME SIZE [--json]",
	  "Change the capacity (K/M/G/T suffixes); shrinking evicts the oldest\n"
	  "messages.\n" },
	{ "watch", cmd_watch, "[NAME] [--count N] [--quiet] [--json]",
	  "Print events (created, resized, window, unlinked, evicted), one a\n"
	  "line, of every conversation or of NAME; stop after N events. Says\n"
	  "\"cbmctl: watch: watching events\" on stderr once subscribed,\n"
	  "unless --quiet.\n" },
	{ "save", cmd_save, "NAME FILE",
	  "Save a snapshot of the conversation, its settings and messages, to\n"
	  "FILE (JSON Lines; '-' for standard output), replacing FILE only\n"
	  "once complete.\n" },
	{ "load", cmd_load, "FILE [NAME]",
	  "Create a conversation (NAME, or the saved name) with the saved\n"
	  "settings and restore the saved messages with their sequence\n"
	  "numbers, timestamps, roles, flags and token counts. Fails if the\n"
	  "name exists.\n" },
};

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	}
	return NULL;
}

static void help(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: cbmctl COMMAND [ARGS]\n"
		"       cbmctl COMMAND --help | -h\n"
		"       cbmctl --help | -h | --version\n\n"
		"Commands:\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %s %s\n", commands[i].name, commands[i].args);
	fprintf(f, "\n--json prints JSON (one object a line) instead of text.\n\n"
		"Exit status: 0 success, 1 the operation failed (the error is\n"
		"printed as \"cbmctl: COMMAND NAME: strerror (ERRNO)\"), 2 usage\n"
		"error.\n\nSee Documentation/cbmctl.rst.\n");
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help(stdout);
		return finish_output(EXIT_OK);
	}
	if (!strcmp(argv[1], "--version")) {
		printf("cbmctl %s\n", cbm_version());
		return finish_output(EXIT_OK);
	}
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "cbmctl: unknown command '%s'\nTry 'cbmctl --help'.\n",
			argv[1]);
		return EXIT_USAGE;
	}
	cmd = c->name;
	/* Bad options are reported by next_option(), as cbmctl's */
	opterr = 0;
	return finish_output(c->run(argc - 1, argv + 1));
}
