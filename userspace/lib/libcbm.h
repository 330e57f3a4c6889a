/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * libcbm - a thin C library over /dev/cbm and the "cbm" generic netlink
 * family.
 *
 * Conventions, as libbpf and liburing:
 *
 * - every function that can fail returns 0 (or a count) on success and a
 *   negative errno on failure; none leaves errno for the caller to read.
 *   Netlink errors (libnl's NLE_*) are translated to errnos at the
 *   boundary;
 * - handles are opaque; structs the caller fills start with their size
 *   (use LIBCBM_OPTS()), so later versions can add fields;
 * - structs the library fills and hands out (struct cbm_stats,
 *   struct cbm_event) are owned by the library, so fields can be appended;
 * - the zero-copy reader is inline in cbm_map.h: its hot path makes no
 *   call into the library.
 *
 * The kernel ABI these wrap is documented in <linux/cbm.h> and
 * Documentation/userspace-api.rst.
 */
#ifndef LIBCBM_H
#define LIBCBM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <linux/cbm.h>

#include "cbm_map.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LIBCBM_MAJOR_VERSION	0
#define LIBCBM_MINOR_VERSION	1

/*
 * LIBCBM_OPTS(cbm_open_opts, opts, .flags = CBM_OPEN_CREATE) declares
 * struct cbm_open_opts opts with .sz set and every other byte zero, as
 * libbpf's LIBBPF_OPTS().
 */
#define LIBCBM_OPTS(TYPE, NAME, ...)					\
	struct TYPE NAME = ({						\
		memset(&NAME, 0, sizeof(struct TYPE));			\
		(struct TYPE) {						\
			.sz = sizeof(struct TYPE),			\
			__VA_ARGS__					\
		};							\
	})

/* One open file of /dev/cbm, bound to a conversation */
struct cbm;

/* struct cbm_open_opts.flags */
#define CBM_OPEN_CREATE		0x01U	/* create the conversation if missing */
#define CBM_OPEN_EXCL		0x02U	/* with CREATE: -EEXIST if it exists */
#define CBM_OPEN_ANON		0x04U	/* a new anonymous conversation */
#define CBM_OPEN_MODE		0x08U	/* @mode is meant as given, even 0 */
#define CBM_OPEN_RDONLY		0x10U	/* open for reading only */
#define CBM_OPEN_WRONLY		0x20U	/* open for writing only */
#define CBM_OPEN_NONBLOCK	0x40U	/* O_NONBLOCK: -EAGAIN, never wait */
#define CBM_OPEN_LOSSY		0x80U	/* CBM_FD_LOSSY: never hold writers */

/**
 * struct cbm_open_opts - how cbm_open() opens and binds
 * @sz: sizeof(struct cbm_open_opts)
 * @flags: CBM_OPEN_* flags; neither RDONLY nor WRONLY opens read-write
 * @mode: permission bits of a conversation created now; 0 means 0600
 *        unless %CBM_OPEN_MODE is set
 * @conv_flags: %CBM_CONV_LOSSLESS or 0, for a conversation created now
 * @capacity: ring size of a conversation created now, 0 for the default
 * @dev: device path, NULL for "/dev/cbm"
 */
struct cbm_open_opts {
	size_t sz;
	unsigned int flags;
	unsigned int mode;
	unsigned int conv_flags;
	uint64_t capacity;
	const char *dev;
};

int cbm_open(const char *name, const struct cbm_open_opts *opts,
	     struct cbm **cbmp);
int cbm_create(const char *name, const struct cbm_open_opts *opts,
	       struct cbm **cbmp);
int cbm_attach(const char *name, const struct cbm_open_opts *opts,
	       struct cbm **cbmp);
void cbm_close(struct cbm *cbm);
int cbm_fd(const struct cbm *cbm);
int cbm_unlink(const char *name);

/**
 * struct cbm_message - a message to append
 * @role: an enum cbm_role
 * @flags: message flags (%CBM_MSG_PINNED, %CBM_MSG_APP_MASK bits)
 * @tokens: token count for &cbm_window.max_tokens, 0 if unknown
 * @data: the payload
 * @len: bytes at @data
 */
struct cbm_message {
	unsigned int role;
	unsigned int flags;
	unsigned int tokens;
	const void *data;
	size_t len;
};

/**
 * struct cbm_saved_message - a message to restore, with its history
 * @msg: the message
 * @seq: its sequence number
 * @ts_ns: its timestamp, CLOCK_REALTIME nanoseconds
 */
struct cbm_saved_message {
	struct cbm_message msg;
	uint64_t seq;
	uint64_t ts_ns;
};

int cbm_send(struct cbm *cbm, const struct cbm_message *msg, uint64_t *seq);
int cbm_send_batch(struct cbm *cbm, const struct cbm_message *msgs,
		   unsigned int n, uint64_t *first_seq);
int cbm_restore(struct cbm *cbm, const struct cbm_saved_message *msgs,
		size_t n, uint64_t next_seq);
int cbm_recv(struct cbm *cbm, struct cbm_record *rec, void *buf,
	     size_t size);
int cbm_wait(struct cbm *cbm, int timeout_ms);
int cbm_seek(struct cbm *cbm, unsigned int whence, uint64_t value,
	     uint64_t *cursor);
int cbm_read_window(struct cbm *cbm, uint64_t last, void **bufp,
		    size_t *lenp, uint64_t *countp);
int cbm_map_attach(struct cbm *cbm, enum cbm_map_start start,
		   struct cbm_map *map);

int cbm_info(struct cbm *cbm, struct cbm_info *info);
int cbm_reader_info(struct cbm *cbm, struct cbm_reader_info *info);
int cbm_set_window(struct cbm *cbm, const struct cbm_window *win);
int cbm_get_window(struct cbm *cbm, struct cbm_window *win);
int cbm_resize(struct cbm *cbm, uint64_t capacity, uint64_t *new_capacity,
	       uint64_t *evicted);
int cbm_set_autoresize(struct cbm *cbm, const struct cbm_autoresize *cfg);
int cbm_get_autoresize(struct cbm *cbm, struct cbm_autoresize *cfg);
int cbm_unpin(struct cbm *cbm, uint64_t seq);

/**
 * cbm_record_payload() - the payload of a record in a cbm_read_window()
 * buffer
 * @rec: a record
 *
 * Return: a pointer to &rec->len bytes, @rec->hdr_len bytes after @rec.
 */
static inline const void *cbm_record_payload(const struct cbm_record *rec)
{
	return (const char *)rec + rec->hdr_len;
}

/**
 * cbm_record_next() - the record after @rec in a cbm_read_window() buffer
 * @rec: a record
 *
 * A record takes its header, @rec->hdr_len bytes, and its payload, padded
 * to %CBM_RECORD_ALIGN: the header's own length, not sizeof(struct
 * cbm_record), as a newer kernel's header may be longer than the one
 * compiled in here.
 *
 * Return: the address of the next record; the caller counts records
 * against the count cbm_read_window() returned.
 */
static inline const struct cbm_record *
cbm_record_next(const struct cbm_record *rec)
{
	size_t space = (size_t)rec->hdr_len + rec->len + CBM_RECORD_ALIGN - 1;

	space &= ~(size_t)(CBM_RECORD_ALIGN - 1);

	return (const struct cbm_record *)((const char *)rec + space);
}

const char *cbm_role_name(unsigned int role);
int cbm_role_parse(const char *name);
const char *cbm_version(void);

/* A generic netlink socket to the "cbm" family */
struct cbm_nl;

/**
 * struct cbm_reader_stats - one reader of a conversation
 * @pid: tgid of the task that bound it, in the caller's pid namespace
 * @flags: %CBM_READER_LOSSLESS
 * @cursor: next sequence number it reads
 * @lag: messages appended that it has not read
 * @lost: messages it lost to eviction
 */
struct cbm_reader_stats {
	uint32_t pid;
	uint32_t flags;
	uint64_t cursor;
	uint64_t lag;
	uint64_t lost;
};

/**
 * struct cbm_stats - a conversation as generic netlink reports it; owned
 * by the library (fields may be appended)
 * @name: the name
 * @flags: CBM_CONV_* flags
 * @uid: owner's uid
 * @gid: owner's gid
 * @mode: permission bits
 * @readers: attached readers
 * @max_msg_size: largest payload a message may have now
 * @capacity: ring size in bytes
 * @used: bytes of the ring in use
 * @msgs: stored messages
 * @first_seq: oldest stored sequence number
 * @next_seq: sequence number of the next message
 * @appended: messages appended or restored since creation
 * @evicted: messages evicted
 * @expired: messages of @evicted that expired
 * @lost: messages lost by readers, summed
 * @resizes: capacity changes
 * @pinned: pinned messages
 * @pinned_bytes: record space of the pinned messages
 * @window: the window (its @size is 0)
 * @autoresize: the auto-resize settings (its @size is 0)
 * @nr_reader_stats: entries in @reader_stats
 * @readers_truncated: not every reader fit in the kernel's report
 * @reader_stats: the readers
 * @restricted: the caller may not read the conversation: only @name,
 *              @flags, @uid, @gid, @mode and @capacity are known, the
 *              rest is 0
 */
struct cbm_stats {
	char name[CBM_NAME_MAX];
	uint32_t flags;
	uint32_t uid;
	uint32_t gid;
	uint32_t mode;
	uint32_t readers;
	uint32_t max_msg_size;
	uint64_t capacity;
	uint64_t used;
	uint64_t msgs;
	uint64_t first_seq;
	uint64_t next_seq;
	uint64_t appended;
	uint64_t evicted;
	uint64_t expired;
	uint64_t lost;
	uint64_t resizes;
	uint64_t pinned;
	uint64_t pinned_bytes;
	struct cbm_window window;
	struct cbm_autoresize autoresize;
	unsigned int nr_reader_stats;
	bool readers_truncated;
	struct cbm_reader_stats *reader_stats;
	bool restricted;
};

/**
 * struct cbm_event - an event of the "events" multicast group; owned by
 * the library
 * @type: an enum cbm_nl_event
 * @name: the conversation
 * @count: %CBM_NL_EVENT_EVICTED: messages evicted since the previous one
 * @stats: what the event carried, as a struct cbm_stats: every field for
 *         %CBM_NL_EVENT_CREATED; @stats.capacity and @stats.resizes for
 *         %CBM_NL_EVENT_RESIZED, @stats.window for %CBM_NL_EVENT_WINDOW,
 *         @stats.evicted for %CBM_NL_EVENT_EVICTED; fields the event does
 *         not carry are 0
 */
struct cbm_event {
	unsigned int type;
	char name[CBM_NAME_MAX];
	uint64_t count;
	const struct cbm_stats *stats;
};

typedef int (*cbm_stats_cb)(const struct cbm_stats *stats, void *ctx);
typedef int (*cbm_event_cb)(const struct cbm_event *event, void *ctx);

int cbm_nl_open(struct cbm_nl **nlp);
void cbm_nl_close(struct cbm_nl *nl);
int cbm_nl_get(struct cbm_nl *nl, const char *name, struct cbm_stats **statsp);
void cbm_stats_free(struct cbm_stats *stats);
int cbm_nl_dump(struct cbm_nl *nl, cbm_stats_cb cb, void *ctx);
int cbm_nl_unlink(struct cbm_nl *nl, const char *name);
int cbm_nl_set_window(struct cbm_nl *nl, const char *name,
		      const struct cbm_window *win);
int cbm_nl_resize(struct cbm_nl *nl, const char *name, uint64_t capacity,
		  uint64_t *new_capacity);
int cbm_nl_subscribe(struct cbm_nl *nl);
int cbm_nl_event_fd(const struct cbm_nl *nl);
int cbm_nl_events(struct cbm_nl *nl, cbm_event_cb cb, void *ctx,
		  int timeout_ms);
const char *cbm_event_name(unsigned int type);

#ifdef __cplusplus
}
#endif

#endif /* LIBCBM_H */
