/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json.h - the JSON cbmctl writes, and a strict parser of just that: one
 * object per line whose values are strings, unsigned integers, booleans
 * or objects of the same, of at most JSON_MAX_MEMBERS members each.
 */
#ifndef CBMCTL_JSON_H
#define CBMCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Members an object may have: cbmctl writes 12 at most (a save file's
 * header), so this leaves room for growth and is still cheap to check
 * for duplicates.
 */
#define JSON_MAX_MEMBERS	32

enum json_type {
	JSON_STRING,
	JSON_NUMBER,
	JSON_BOOL,
	JSON_OBJECT,
};

struct json_member;

/**
 * struct json_value - a parsed value
 * @type: an enum json_type
 * @num: %JSON_NUMBER: the number; %JSON_BOOL: 0 or 1
 * @str: %JSON_STRING: the decoded bytes, NUL-terminated (they may hold
 *       NULs of their own: use @len)
 * @len: %JSON_STRING: bytes at @str
 * @members: %JSON_OBJECT: @n members in the order of the text
 * @n: %JSON_OBJECT: number of members
 */
struct json_value {
	enum json_type type;
	uint64_t num;
	char *str;
	size_t len;
	struct json_member *members;
	size_t n;
};

struct json_member {
	char *key;
	struct json_value val;
};

int json_parse_line(const char *text, size_t len, struct json_value *obj,
		    char *err, size_t err_size);
void json_free(struct json_value *val);
const struct json_value *json_get(const struct json_value *obj,
				  const char *key);

size_t utf8_seq_len(const unsigned char *s, size_t len);
bool utf8_valid(const void *buf, size_t len);
void json_write_string(FILE *f, const void *buf, size_t len);
void json_write_base64(FILE *f, const void *buf, size_t len);
int base64_decode(const char *in, size_t len, unsigned char **outp,
		  size_t *lenp);
void text_write(FILE *f, const void *buf, size_t len);

#endif /* CBMCTL_JSON_H */
