/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * cbm_map.h - zero-copy reading of a cbm conversation through mmap()
 *
 * The read protocol of the uapi header's "Zero-copy reading" section, as
 * inline functions: the hot path (cbm_map_peek(), cbm_map_release()) makes
 * no system call; mapping and remapping after a resize do.
 *
 *	struct cbm_map m;
 *	struct cbm_map_rec r;
 *
 *	cbm_map_open(&m, fd, CBM_MAP_OLDEST);
 *	while (cbm_map_peek(&m, &r) > 0) {
 *		if (r.hdr.type == CBM_RECORD_GAP) {
 *			lost r.hdr.lost messages from r.hdr.seq on;
 *			continue;
 *		}
 *		use r.hdr and r.payload (r.hdr.len bytes, in the map);
 *		if (cbm_map_release(&m) < 0)
 *			undo: the record was overwritten meanwhile;
 *	}
 *	cbm_map_close(&m);
 *
 * Every function returns 0 (or a count) on success and a negative errno
 * on failure; none sets errno for the caller to look at.
 */
#ifndef CBM_MAP_H
#define CBM_MAP_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/cbm.h>

/* A resize racing cbm_map_open() makes it retry; this many times at most */
#define CBM_MAP_SETUP_TRIES	64

/**
 * enum cbm_map_start - where a new map reader starts
 * @CBM_MAP_OLDEST: at the oldest record in the ring
 * @CBM_MAP_NEWEST: after the newest one: only messages appended later
 */
enum cbm_map_start {
	CBM_MAP_OLDEST,
	CBM_MAP_NEWEST,
};

/**
 * struct cbm_map - a mapped conversation and a reader's place in it
 * @fd: the file, bound and opened for reading
 * @base: the mapping, @len bytes
 * @len: the mapping's length
 * @hdr: the header page, written by the kernel
 * @data: the first copy of the ring's bytes
 * @capacity: ring size of the mapped generation
 * @gen: the mapped generation
 * @pos: position of the next record to read
 * @seq: sequence number expected at @pos
 * @skipped: sequence numbers below @seq that restores skipped, the total
 *           records carry in &cbm_record.lost (see "Zero-copy reading")
 * @lost: messages lost since cbm_map_open()
 * @resync: @pos was moved to the tail; the record there tells the gap
 * @cur_space: bytes of the record handed out by cbm_map_peek(), 0 if none
 */
struct cbm_map {
	int fd;
	void *base;
	size_t len;
	const struct cbm_map_header *hdr;
	const unsigned char *data;
	uint64_t capacity;
	uint64_t gen;
	uint64_t pos;
	uint64_t seq;
	uint64_t skipped;
	uint64_t lost;
	bool resync;
	uint64_t cur_space;
};

/**
 * struct cbm_map_rec - what cbm_map_peek() hands out
 * @hdr: a copy of the record's header, checked intact, with @hdr.lost 0;
 *       for a gap, a %CBM_RECORD_GAP header made by the reader (@hdr.seq
 *       the first sequence number it did not see, @hdr.lost how many
 *       messages it lost from there to the next record: restore holes in
 *       between are not counted, and may come before, after or between
 *       the lost messages)
 * @payload: @hdr.len bytes in the map, or NULL for a gap. Until
 *           cbm_map_release() says otherwise they may be overwritten
 *           underneath: parse them defensively.
 */
struct cbm_map_rec {
	struct cbm_record hdr;
	const void *payload;
};

/* Pairs with smp_store_release() in the kernel: what it published before */
#define cbm_map_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define cbm_map_load(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
/* smp_rmb(): loads before it are done before loads after it */
#define cbm_map_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)

static inline int cbm_map_get_info(int fd, struct cbm_map_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ioctl(fd, CBM_IOC_MAP_INFO, info) ? -errno : 0;
}

/* Map the current generation; keeps @m->pos and @m->seq */
static inline int cbm_map_setup(struct cbm_map *m, struct cbm_map_info *info)
{
	struct cbm_map_info now;
	int tries, err;
	void *base;

	for (tries = 0; tries < CBM_MAP_SETUP_TRIES; tries++) {
		err = cbm_map_get_info(m->fd, info);
		if (err)
			return err;
		base = mmap(NULL, info->map_size, PROT_READ, MAP_SHARED, m->fd,
			    0);
		if (base == MAP_FAILED) {
			err = -errno;
			/* Only a resize since the snapshot is worth a retry */
			if (err != -EINVAL || cbm_map_get_info(m->fd, &now) ||
			    now.generation == info->generation)
				return err;
			continue;
		}
		/* The pages are of the snapshot's generation if it still holds */
		if (cbm_map_load_acquire(&((const struct cbm_map_header *)
					   base)->generation) != info->generation) {
			munmap(base, info->map_size);
			continue;
		}
		m->base = base;
		m->len = info->map_size;
		m->hdr = base;
		m->data = (const unsigned char *)base + info->data_offset;
		m->capacity = info->capacity;
		m->gen = info->generation;
		return 0;
	}
	return -EAGAIN;
}

/**
 * cbm_map_open() - map a conversation and place a reader in it
 * @m: the reader to set up
 * @fd: a file bound to the conversation (or to be bound to ``default``),
 *      opened for reading
 * @start: an enum cbm_map_start
 *
 * Returns 0 or a negative errno: those of %CBM_IOC_MAP_INFO and mmap()
 * (an mmap() ``EINVAL`` is retried only if a resize explains it), -EAGAIN
 * if resizes kept racing the mapping.
 */
static inline int cbm_map_open(struct cbm_map *m, int fd,
			       enum cbm_map_start start)
{
	struct cbm_map_info info;
	int err;

	memset(m, 0, sizeof(*m));
	m->fd = fd;
	err = cbm_map_setup(m, &info);
	if (err)
		return err;
	m->pos = start == CBM_MAP_NEWEST ? info.head : info.tail;
	m->seq = start == CBM_MAP_NEWEST ? info.next_seq : info.first_seq;
	/* Every record from tail to head carries this total, as does head */
	m->skipped = info.skipped;
	return 0;
}

/**
 * cbm_map_close() - unmap
 * @m: a reader set up by cbm_map_open(); the file stays open
 */
static inline void cbm_map_close(struct cbm_map *m)
{
	if (m->base)
		munmap(m->base, m->len);
	m->base = NULL;
	m->hdr = NULL;
	m->data = NULL;
	m->len = 0;
}

/**
 * cbm_map_remap() - map the current generation after a resize
 * @m: the reader; its position and sequence number are kept
 *
 * cbm_map_peek() calls this by itself when the generation changes, and
 * again on the next call after a remap failed.
 *
 * Returns 0 or a negative errno, as cbm_map_open(); the old mapping is
 * gone either way.
 */
static inline int cbm_map_remap(struct cbm_map *m)
{
	struct cbm_map_info info;

	cbm_map_close(m);
	m->cur_space = 0;
	return cbm_map_setup(m, &info);
}

static inline bool cbm_map_gen_changed(const struct cbm_map *m)
{
	return cbm_map_load(&m->hdr->generation) != m->gen;
}

/**
 * cbm_map_peek() - the next record, in place
 * @m: the reader
 * @r: filled in: the record's checked header and its payload in the map,
 *     or a gap
 *
 * A message stays handed out until cbm_map_release(); peeking again
 * without releasing returns the same one. A gap is consumed at once.
 *
 * Returns 1 with @r filled in, 0 when there is nothing new, or a negative
 * errno (-EIO if the map contradicts the protocol, errors of
 * cbm_map_remap()).
 */
static inline int cbm_map_peek(struct cbm_map *m, struct cbm_map_rec *r)
{
	const struct cbm_record *rec;
	uint64_t head, hole, gap, seq;
	int err;

	for (;;) {
		/* Unmapped: a remap failed before; try again */
		if (!m->base || cbm_map_gen_changed(m)) {
			err = cbm_map_remap(m);
			if (err)
				return err;
			continue;
		}
		/* Pairs with smp_store_release() of head in cbm_ring_commit() */
		head = cbm_map_load_acquire(&m->hdr->head);
		if (m->pos == head)
			return 0;
		rec = (const void *)(m->data + (m->pos & (m->capacity - 1)));
		memcpy(&r->hdr, rec, sizeof(r->hdr));
		/* Pairs with smp_wmb() in cbm_ring_reserve(): tail moves first */
		cbm_map_rmb();
		if (cbm_map_gen_changed(m))
			continue;
		if (m->pos < cbm_map_load(&m->hdr->tail)) {
			/* Overwritten: restart at the oldest valid record */
			m->pos = cbm_map_load(&m->hdr->tail);
			m->resync = true;
			continue;
		}
		if (r->hdr.type != CBM_RECORD_MSG ||
		    r->hdr.len > m->capacity - sizeof(*rec) ||
		    r->hdr.seq < m->seq || r->hdr.lost < m->skipped)
			return -EIO;
		/*
		 * Numbers since @m->seq that never existed, restore holes: what
		 * the running total grew by. The rest were messages.
		 */
		hole = r->hdr.lost - m->skipped;
		if (hole > r->hdr.seq - m->seq)
			return -EIO;
		gap = r->hdr.seq - m->seq - hole;
		if (gap && !m->resync)
			return -EIO;
		m->resync = false;
		m->skipped = r->hdr.lost;
		seq = m->seq;
		m->seq = r->hdr.seq;
		if (gap) {
			memset(&r->hdr, 0, sizeof(r->hdr));
			r->hdr.hdr_len = sizeof(r->hdr);
			r->hdr.type = CBM_RECORD_GAP;
			r->hdr.seq = seq;
			r->hdr.lost = gap;
			r->payload = NULL;
			m->lost += gap;
			m->cur_space = 0;
			return 1;
		}
		r->hdr.lost = 0;
		r->payload = (const unsigned char *)rec + r->hdr.hdr_len;
		m->cur_space = CBM_RECORD_SPACE(r->hdr.len);
		return 1;
	}
}

/* Whether the record handed out is still intact, after it was used */
static inline bool cbm_map_intact(const struct cbm_map *m)
{
	if (!m->base)
		return false;
	/* Pairs with smp_wmb() in cbm_ring_reserve(), as in cbm_map_peek() */
	cbm_map_rmb();
	return !cbm_map_gen_changed(m) &&
	       m->pos >= cbm_map_load(&m->hdr->tail);
}

/**
 * cbm_map_release() - finish with the record cbm_map_peek() handed out
 * @m: the reader
 *
 * Returns 0 if the record stayed intact while it was used (the reader
 * moves past it), or -ESTALE if it may have been overwritten or the ring
 * was replaced: whatever was made of it must be dropped, and the next
 * cbm_map_peek() returns it again or the gap that swallowed it. Returns 0
 * when nothing is handed out.
 */
static inline int cbm_map_release(struct cbm_map *m)
{
	uint64_t space = m->cur_space;

	if (!space)
		return 0;
	m->cur_space = 0;
	if (!cbm_map_intact(m))
		return -ESTALE;
	m->pos += space;
	m->seq++;
	return 0;
}

/**
 * cbm_map_read() - copy the next record out of the map
 * @m: the reader
 * @hdr: filled in with the record's header (or a gap's)
 * @buf: where the payload goes
 * @size: bytes at @buf
 *
 * Returns 1 with a record copied, 0 when there is nothing new, or a
 * negative errno: -EMSGSIZE if @size is smaller than the payload (nothing
 * is consumed; @hdr->len says what is needed), or one of cbm_map_peek().
 */
static inline int cbm_map_read(struct cbm_map *m, struct cbm_record *hdr,
			       void *buf, size_t size)
{
	struct cbm_map_rec r;
	int ret;

	for (;;) {
		ret = cbm_map_peek(m, &r);
		if (ret <= 0)
			return ret;
		*hdr = r.hdr;
		if (r.hdr.type == CBM_RECORD_GAP)
			return 1;
		if (r.hdr.len > size) {
			/* Leave it for the next peek, if the size was true */
			m->cur_space = 0;
			if (!cbm_map_intact(m))
				continue;
			return -EMSGSIZE;
		}
		memcpy(buf, r.payload, r.hdr.len);
		if (!cbm_map_release(m))
			return 1;
	}
}

/**
 * cbm_map_unlinked() - whether the conversation was unlinked
 * @m: the reader
 *
 * Returns true once it was: nothing more will be appended. False while
 * unmapped after a failed remap.
 */
static inline bool cbm_map_unlinked(const struct cbm_map *m)
{
	return m->base && (cbm_map_load(&m->hdr->flags) & CBM_MAP_UNLINKED);
}

/**
 * cbm_map_wait() - sleep until a message after the reader's is appended
 * @m: the reader
 * @timeout_ms: as for poll(): -1 to wait forever
 *
 * Moves the file's read() cursor to the reader's sequence number, which
 * also tells a lossless conversation that everything before it was
 * consumed, then polls for ``EPOLLIN``.
 *
 * Returns 1 when something may be there (or the conversation was
 * unlinked), 0 on timeout, or a negative errno.
 */
static inline int cbm_map_wait(struct cbm_map *m, int timeout_ms)
{
	struct pollfd pfd = { .fd = m->fd, .events = POLLIN };
	int ret;

	if (lseek(m->fd, (off_t)m->seq, SEEK_SET) < 0)
		return -errno;
	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	return ret;
}

#endif /* CBM_MAP_H */
