// SPDX-License-Identifier: GPL-2.0
/*
 * json.c - JSON output and a strict parser of cbmctl's own JSON Lines
 *
 * The parser accepts only what cbmctl writes: an object per line; values
 * that are strings, unsigned decimal integers, true/false or objects of
 * the same; no arrays, no null, no fractions or exponents, no duplicate
 * keys, at most JSON_MAX_MEMBERS members an object, and text that is
 * valid UTF-8. A saved file that is anything else was not written by
 * cbmctl or was damaged, and loading it must fail rather than guess.
 *
 * Its cost is linear in the line: a string's buffer is sized to the
 * string, and the member limit bounds the duplicate-key check.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Objects nest this deep at most: a line, a window in it */
#define JSON_MAX_DEPTH	4

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	char *err;
	size_t err_size;
};

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * utf8_seq_len() - length of the UTF-8 sequence at @s
 * @s: bytes
 * @len: bytes at @s, at least 1
 *
 * Return: 1 to 4 for a well-formed sequence (no overlong forms, no
 * surrogates, nothing above U+10FFFF, as RFC 3629), 0 otherwise.
 */
size_t utf8_seq_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool utf8_valid(const void *buf, size_t len)
{
	const unsigned char *s = buf;
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq_len(s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/**
 * json_write_string() - write @buf as a quoted JSON string
 * @f: where to
 * @buf: valid UTF-8 (see utf8_valid())
 * @len: bytes at @buf
 *
 * Quotes, backslashes and control characters are escaped, DEL too so that
 * a terminal shows the line as it is; everything else is copied.
 */
void json_write_string(FILE *f, const void *buf, size_t len)
{
	const unsigned char *s = buf;
	size_t i;

	putc('"', f);
	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f)
				fprintf(f, "\\u%04x", s[i]);
			else
				putc(s[i], f);
		}
	}
	putc('"', f);
}

/* @buf as a quoted base64 string (RFC 4648, with padding) */
void json_write_base64(FILE *f, const void *buf, size_t len)
{
	const unsigned char *s = buf;
	uint32_t v;
	size_t i;

	putc('"', f);
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)s[i] << 16 | s[i + 1] << 8 | s[i + 2];
		putc(b64_chars[v >> 18], f);
		putc(b64_chars[v >> 12 & 63], f);
		putc(b64_chars[v >> 6 & 63], f);
		putc(b64_chars[v & 63], f);
	}
	if (len - i == 1) {
		v = (uint32_t)s[i] << 16;
		fprintf(f, "%c%c==", b64_chars[v >> 18], b64_chars[v >> 12 & 63]);
	} else if (len - i == 2) {
		v = (uint32_t)s[i] << 16 | s[i + 1] << 8;
		fprintf(f, "%c%c%c=", b64_chars[v >> 18],
			b64_chars[v >> 12 & 63], b64_chars[v >> 6 & 63]);
	}
	putc('"', f);
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

/**
 * base64_decode() - decode canonical base64
 * @in: the text
 * @len: bytes at @in, a multiple of 4
 * @outp: set to a malloc()ed buffer of the bytes
 * @lenp: set to their number
 *
 * Padding only at the end, no whitespace, and the bits padding leaves
 * over must be zero, so every byte string has exactly one encoding.
 *
 * Return: 0, -EINVAL for anything else, -ENOMEM.
 */
int base64_decode(const char *in, size_t len, unsigned char **outp,
		  size_t *lenp)
{
	unsigned char *out;
	size_t i, n = 0;
	int v[4], j, pad;

	if (len % 4)
		return -EINVAL;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			v[j] = b64_value(in[i + j]);
			if (v[j] < 0 || pad)
				goto err_free;
		}
		if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
			goto err_free;
		out[n++] = v[0] << 2 | v[1] >> 4;
		if (pad < 2)
			out[n++] = (v[1] & 15) << 4 | v[2] >> 2;
		if (pad < 1)
			out[n++] = (v[2] & 3) << 6 | v[3];
	}
	*outp = out;
	*lenp = n;
	return 0;

err_free:
	free(out);
	return -EINVAL;
}

/* The code point of the well-formed UTF-8 sequence of @n bytes at @s */
static uint32_t utf8_code_point(const unsigned char *s, size_t n)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = s[0] & lead_mask[n];
	size_t i;

	for (i = 1; i < n; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

/*
 * Characters beyond ASCII that a terminal acts on rather than shows: the
 * C1 controls (8-bit escape sequences), and the bidirectional embeddings,
 * overrides and isolates, which reorder the text after them.
 */
static bool text_hidden(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/**
 * text_write() - write a payload for people, on one line
 * @f: where to
 * @buf: the payload
 * @len: bytes at @buf
 *
 * Valid UTF-8 is copied; backslash, newline, carriage return and tab are
 * escaped as in C, other control characters and bytes that are not UTF-8
 * as \xHH, and C1 controls and bidirectional overrides as \u00HH or
 * \uHHHH, so that a message cannot break the line, drive the terminal or
 * reorder what follows it.
 */
void text_write(FILE *f, const void *buf, size_t len)
{
	const unsigned char *s = buf;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = utf8_seq_len(s + i, len - i);
		cp = n ? utf8_code_point(s + i, n) : 0;
		if (n == 1 && s[i] == '\\')
			fputs("\\\\", f);
		else if (n == 1 && s[i] == '\n')
			fputs("\\n", f);
		else if (n == 1 && s[i] == '\r')
			fputs("\\r", f);
		else if (n == 1 && s[i] == '\t')
			fputs("\\t", f);
		else if (!n || (n == 1 && (s[i] < 0x20 || s[i] == 0x7f)))
			fprintf(f, "\\x%02x", s[i]);
		else if (text_hidden(cp))
			fprintf(f, "\\u%04x", cp);
		else
			fwrite(s + i, 1, n, f);
		i += n ? n : 1;
	}
}

static int __attribute__((format(printf, 2, 3)))
parse_error(struct parser *p, const char *fmt, ...)
{
	char msg[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->err_size, "column %zu: %s", p->pos + 1, msg);
	return -EINVAL;
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
		p->pos++;
}

static int parse_hex4(struct parser *p, uint32_t *v)
{
	size_t i;
	char c;

	*v = 0;
	for (i = 0; i < 4; i++) {
		if (p->pos >= p->len)
			return parse_error(p, "truncated \\u escape");
		c = p->s[p->pos++];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*v |= c - 'A' + 10;
		else
			return parse_error(p, "bad \\u escape");
	}
	return 0;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = 0xc0 | cp >> 6;
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = 0xe0 | cp >> 12;
		out[1] = 0x80 | (cp >> 6 & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	out[0] = 0xf0 | cp >> 18;
	out[1] = 0x80 | (cp >> 12 & 0x3f);
	out[2] = 0x80 | (cp >> 6 & 0x3f);
	out[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* A string at p->pos (its opening quote), decoded into @val */
static int parse_string(struct parser *p, struct json_value *val)
{
	uint32_t cp, lo;
	size_t n = 0, end;
	char *out;
	char c;
	int err;

	/*
	 * Escapes only shrink the text, so the text up to the closing quote
	 * bounds the result; the rest of the line would make a line of many
	 * short strings cost its length squared.
	 */
	end = p->pos + 1;
	while (end < p->len && p->s[end] != '"')
		end += p->s[end] == '\\' ? 2 : 1;
	out = malloc((end < p->len ? end : p->len) - p->pos);
	if (!out)
		return -ENOMEM;
	p->pos++;
	for (;;) {
		if (p->pos >= p->len) {
			err = parse_error(p, "unterminated string");
			goto err_free;
		}
		c = p->s[p->pos++];
		if (c == '"')
			break;
		if ((unsigned char)c < 0x20) {
			p->pos--;
			err = parse_error(p, "control character in a string");
			goto err_free;
		}
		if (c != '\\') {
			out[n++] = c;
			continue;
		}
		if (p->pos >= p->len) {
			err = parse_error(p, "unterminated string");
			goto err_free;
		}
		c = p->s[p->pos++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			out[n++] = c;
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u':
			err = parse_hex4(p, &cp);
			if (err)
				goto err_free;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				err = parse_error(p, "lone low surrogate");
				goto err_free;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->pos + 2 > p->len ||
				    p->s[p->pos] != '\\' ||
				    p->s[p->pos + 1] != 'u') {
					err = parse_error(p, "lone high surrogate");
					goto err_free;
				}
				p->pos += 2;
				err = parse_hex4(p, &lo);
				if (err)
					goto err_free;
				if (lo < 0xdc00 || lo > 0xdfff) {
					err = parse_error(p, "bad surrogate pair");
					goto err_free;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			n += put_utf8(out + n, cp);
			break;
		default:
			p->pos--;
			err = parse_error(p, "bad escape \\%c", c);
			goto err_free;
		}
	}
	out[n] = '\0';
	val->type = JSON_STRING;
	val->str = out;
	val->len = n;
	return 0;

err_free:
	free(out);
	return err;
}

static int parse_number(struct parser *p, struct json_value *val)
{
	size_t start = p->pos;
	uint64_t v = 0;
	unsigned int d;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		d = p->s[p->pos] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return parse_error(p, "number out of range");
		v = v * 10 + d;
		p->pos++;
	}
	if (p->pos - start > 1 && p->s[start] == '0') {
		p->pos = start;
		return parse_error(p, "number with a leading zero");
	}
	if (p->pos < p->len && strchr(".eE", p->s[p->pos]))
		return parse_error(p, "not an unsigned integer");
	val->type = JSON_NUMBER;
	val->num = v;
	return 0;
}

static int parse_object(struct parser *p, struct json_value *obj, int depth);

static int parse_value(struct parser *p, struct json_value *val, int depth)
{
	const char *s = p->s + p->pos;
	size_t left = p->len - p->pos;

	if (!left)
		return parse_error(p, "value expected");
	if (*s == '"')
		return parse_string(p, val);
	if (*s == '{')
		return parse_object(p, val, depth + 1);
	if (*s >= '0' && *s <= '9')
		return parse_number(p, val);
	if (left >= 4 && !memcmp(s, "true", 4)) {
		val->type = JSON_BOOL;
		val->num = 1;
		p->pos += 4;
		return 0;
	}
	if (left >= 5 && !memcmp(s, "false", 5)) {
		val->type = JSON_BOOL;
		val->num = 0;
		p->pos += 5;
		return 0;
	}
	return parse_error(p, "a string, an unsigned integer, true, false or an object expected");
}

static int parse_object(struct parser *p, struct json_value *obj, int depth)
{
	struct json_member *m;
	struct json_value key;
	int err;

	if (depth > JSON_MAX_DEPTH)
		return parse_error(p, "objects nested too deep");
	memset(obj, 0, sizeof(*obj));
	obj->type = JSON_OBJECT;
	p->pos++;
	skip_space(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		return 0;
	}
	for (;;) {
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != '"') {
			err = parse_error(p, "a key expected");
			goto err_free;
		}
		if (obj->n == JSON_MAX_MEMBERS) {
			err = parse_error(p, "more than %d members in an object",
					  JSON_MAX_MEMBERS);
			goto err_free;
		}
		err = parse_string(p, &key);
		if (err)
			goto err_free;
		if (json_get(obj, key.str) || strlen(key.str) != key.len) {
			free(key.str);
			err = parse_error(p, "duplicate or malformed key");
			goto err_free;
		}
		m = realloc(obj->members, (obj->n + 1) * sizeof(*m));
		if (!m) {
			free(key.str);
			err = -ENOMEM;
			goto err_free;
		}
		obj->members = m;
		m += obj->n;
		m->key = key.str;
		memset(&m->val, 0, sizeof(m->val));
		m->val.type = JSON_NUMBER;
		obj->n++;
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			err = parse_error(p, "':' expected");
			goto err_free;
		}
		p->pos++;
		skip_space(p);
		err = parse_value(p, &m->val, depth);
		if (err)
			goto err_free;
		skip_space(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			return 0;
		}
		err = parse_error(p, "',' or '}' expected");
		goto err_free;
	}

err_free:
	json_free(obj);
	return err;
}

/**
 * json_parse_line() - parse one line holding one object
 * @text: the line, without its newline
 * @len: bytes at @text
 * @obj: filled in with the object; json_free() it
 * @err: where a description of what is wrong goes, with its column
 * @err_size: bytes at @err
 *
 * Return: 0, -EINVAL with @err written, or -ENOMEM.
 */
int json_parse_line(const char *text, size_t len, struct json_value *obj,
		    char *err, size_t err_size)
{
	struct parser p = {
		.s = text,
		.len = len,
		.err = err,
		.err_size = err_size,
	};
	int ret;

	if (!utf8_valid(text, len))
		return parse_error(&p, "the line is not valid UTF-8");
	skip_space(&p);
	if (p.pos >= p.len || p.s[p.pos] != '{')
		return parse_error(&p, "an object expected");
	ret = parse_object(&p, obj, 1);
	if (ret)
		return ret;
	skip_space(&p);
	if (p.pos != p.len) {
		json_free(obj);
		return parse_error(&p, "text after the object");
	}
	return 0;
}

void json_free(struct json_value *val)
{
	size_t i;

	if (val->type == JSON_STRING)
		free(val->str);
	if (val->type != JSON_OBJECT)
		return;
	for (i = 0; i < val->n; i++) {
		free(val->members[i].key);
		json_free(&val->members[i].val);
	}
	free(val->members);
	val->members = NULL;
	val->n = 0;
}

/* The value of @key in @obj, or NULL */
const struct json_value *json_get(const struct json_value *obj,
				  const char *key)
{
	size_t i;

	for (i = 0; i < obj->n; i++) {
		if (!strcmp(obj->members[i].key, key))
			return &obj->members[i].val;
	}
	return NULL;
}
