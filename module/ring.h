/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm ring core: a byte ring of variable-size records.
 *
 * The ring knows nothing about files, readers or policies: it stores
 * records, hands out positions and evicts the oldest record when told to.
 * Callers serialize every call on one ring.
 */
#ifndef _CBM_RING_H
#define _CBM_RING_H

#include <linux/compiler.h>
#include <linux/mm_types.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/cbm.h>

/**
 * struct cbm_ring - a ring of records
 * @data: @size bytes of pages mapped twice back to back, so a record that
 *        starts near the end of the ring continues past it without wrapping
 * @pages: the pages behind @data, each listed twice (2 * @size / PAGE_SIZE
 *         entries), in the order vmap() mapped them
 * @size: bytes in the ring, a power of two of at least PAGE_SIZE
 * @head: free-running position where the next record will start
 * @tail: free-running position of the oldest record
 * @first_seq: sequence number of the record at @tail
 * @next_seq: sequence number the next record will get
 * @skipped: sequence numbers cbm_ring_skip() has skipped since the
 *           numbering began, a running total that every record carries in
 *           @lost as it was when the record was committed; see
 *           cbm_ring_skip()
 * @pub: where @head and @tail are published to lockless readers that map
 *       the pages, or NULL; see cbm_ring_publish()
 *
 * Positions only grow; ``pos & (size - 1)`` is the offset in @data. The
 * ring holds the records from @tail to @head; every record takes
 * CBM_RECORD_SPACE(len) bytes.
 *
 * ::
 *
 *	 data:  +---------- size ----------+---------- size ----------+
 *	        | ..rec 7| free | rec 5 | re|c 6 | ..rec 7| free | rec 5|
 *	        +--------------------------+--------------------------+
 *	        pages 0..n-1                pages 0..n-1 again
 *
 *	rec 6 starts near the end of the first copy and is read in one
 *	piece because the same pages follow.
 */
struct cbm_ring {
	void *data;
	struct page **pages;
	unsigned long size;
	u64 head;
	u64 tail;
	u64 first_seq;
	u64 next_seq;
	u64 skipped;
	struct cbm_map_header *pub;
};

int cbm_ring_init(struct cbm_ring *ring, unsigned long size, gfp_t gfp);
void cbm_ring_destroy(struct cbm_ring *ring);
void cbm_ring_move(struct cbm_ring *dst, const struct cbm_ring *src);
void cbm_ring_publish(struct cbm_ring *ring, struct cbm_map_header *hdr);
int cbm_ring_map(const struct cbm_ring *ring, struct vm_area_struct *vma,
		 unsigned long addr);
struct cbm_record *cbm_ring_reserve(struct cbm_ring *ring, u32 len);
void cbm_ring_commit(struct cbm_ring *ring, struct cbm_record *rec);
u64 cbm_ring_evict(struct cbm_ring *ring);
void cbm_ring_skip(struct cbm_ring *ring, u64 seq);
u64 cbm_ring_pos(const struct cbm_ring *ring, u64 seq, u64 hint_seq,
		 u64 hint_pos);
size_t cbm_ring_copy_to_iter(const struct cbm_ring *ring, u64 pos, size_t len,
			     struct iov_iter *to);
size_t cbm_ring_copy_from_iter(struct cbm_ring *ring, u64 pos, size_t len,
			       struct iov_iter *from);

/**
 * cbm_ring_rec() - the record at a position
 * @ring: the ring
 * @pos: a position between @ring->tail and @ring->head
 *
 * Return: the record, contiguous in memory thanks to the double mapping.
 */
static inline struct cbm_record *cbm_ring_rec(const struct cbm_ring *ring,
					      u64 pos)
{
	return ring->data + (pos & (ring->size - 1));
}

/**
 * cbm_ring_used() - bytes held by stored records
 * @ring: the ring
 *
 * Return: bytes from the oldest record to the end of the newest.
 */
static inline u64 cbm_ring_used(const struct cbm_ring *ring)
{
	return ring->head - ring->tail;
}

/**
 * cbm_ring_next_seq() - sequence number the next record will get
 * @ring: the ring
 *
 * May be called without the caller's lock, to decide whether to sleep;
 * cbm_ring_commit() publishes the value with WRITE_ONCE().
 *
 * Return: the next sequence number.
 */
static inline u64 cbm_ring_next_seq(const struct cbm_ring *ring)
{
	return READ_ONCE(ring->next_seq);
}

#endif /* _CBM_RING_H */
