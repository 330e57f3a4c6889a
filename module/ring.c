// SPDX-License-Identifier: GPL-2.0
/*
 * cbm ring core: records in a double-mapped byte ring.
 *
 * The layout follows the BPF ring buffer (kernel/bpf/ringbuf.c): positions
 * run free and are masked by size - 1, and the data pages are mapped twice
 * in a row so that a record never has to be split at the end of the ring.
 * The same pages, twice, can be mapped into userspace read-only, where
 * readers follow the positions published in a struct cbm_map_header
 * without any lock: the barriers below are half of that protocol, and
 * userspace/lib/cbm_map.h (cbm_map_peek(), cbm_map_intact()) the other.
 */
#include <linux/gfp.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "ring.h"

/**
 * cbm_ring_init() - allocate and map an empty ring
 * @ring: the ring to set up
 * @size: bytes, a power of two of at least PAGE_SIZE
 * @gfp: allocation flags for the pages, e.g. GFP_KERNEL_ACCOUNT to charge
 *       the caller's memory cgroup
 *
 * The pages are zeroed so that nothing stale can ever be read back.
 *
 * Return: 0 or a negative errno (-ENOMEM).
 */
int cbm_ring_init(struct cbm_ring *ring, unsigned long size, gfp_t gfp)
{
	unsigned long nr_pages = size >> PAGE_SHIFT;
	unsigned long i;

	if (WARN_ON_ONCE(!is_power_of_2(size) || size < PAGE_SIZE))
		return -EINVAL;

	ring->pages = kvmalloc_array(2 * nr_pages, sizeof(*ring->pages),
				     gfp | __GFP_NOWARN);
	if (!ring->pages)
		return -ENOMEM;

	for (i = 0; i < nr_pages; i++) {
		/* A ring too big for memory fails instead of waking the OOM killer */
		ring->pages[i] = alloc_page(gfp | __GFP_ZERO | __GFP_NOWARN |
					    __GFP_RETRY_MAYFAIL);
		if (!ring->pages[i])
			goto err_free_pages;
		ring->pages[nr_pages + i] = ring->pages[i];
	}

	ring->data = vmap(ring->pages, 2 * nr_pages, VM_MAP, PAGE_KERNEL);
	if (!ring->data)
		goto err_free_pages;

	ring->size = size;
	ring->head = 0;
	ring->tail = 0;
	ring->first_seq = 0;
	ring->next_seq = 0;
	ring->skipped = 0;
	ring->pub = NULL;
	return 0;

err_free_pages:
	while (i--)
		__free_page(ring->pages[i]);
	kvfree(ring->pages);
	ring->pages = NULL;
	return -ENOMEM;
}

/**
 * cbm_ring_destroy() - unmap and free a ring set up by cbm_ring_init()
 * @ring: the ring
 */
void cbm_ring_destroy(struct cbm_ring *ring)
{
	unsigned long nr_pages = ring->size >> PAGE_SHIFT;
	unsigned long i;

	vunmap(ring->data);
	for (i = 0; i < nr_pages; i++)
		__free_page(ring->pages[i]);
	kvfree(ring->pages);
	ring->data = NULL;
	ring->pages = NULL;
}

/**
 * cbm_ring_move() - copy every record into another ring
 * @dst: an empty ring from cbm_ring_init(), at least cbm_ring_used(@src)
 *       bytes in size
 * @src: the ring whose records to copy; unchanged
 *
 * The records keep their positions and sequence numbers, and the
 * numbering its total of skipped numbers, so positions and totals taken
 * in @src stay valid in @dst: both rings mask the same free-running
 * positions, and the double mappings make the copy one memcpy() whatever
 * the offsets.
 */
void cbm_ring_move(struct cbm_ring *dst, const struct cbm_ring *src)
{
	u64 used = cbm_ring_used(src);

	if (WARN_ON_ONCE(used > dst->size))
		return;
	memcpy(cbm_ring_rec(dst, src->tail), cbm_ring_rec(src, src->tail),
	       used);
	dst->head = src->head;
	dst->tail = src->tail;
	dst->first_seq = src->first_seq;
	WRITE_ONCE(dst->next_seq, src->next_seq);
	dst->skipped = src->skipped;
}

/**
 * cbm_ring_publish() - publish a ring's positions to mapped readers
 * @ring: the ring, whose pages the mappings made from now on show
 * @hdr: the header page that mapped readers watch
 *
 * Called for a new ring and for the ring that replaces another one (a
 * resize). Mappings of the old pages see @hdr change generation: their
 * pages are no longer written, and what they read from them must be
 * checked against the new generation.
 */
void cbm_ring_publish(struct cbm_ring *ring, struct cbm_map_header *hdr)
{
	ring->pub = hdr;
	WRITE_ONCE(hdr->capacity, ring->size);
	WRITE_ONCE(hdr->tail, ring->tail);
	/*
	 * Readers check the generation after reading a record
	 * (cbm_map_intact()); the release orders it before the head
	 * stores of this ring, so a reader that saw a head of the new ring
	 * sees the new generation too and drops what it read from old pages.
	 */
	smp_store_release(&hdr->generation, hdr->generation + 1);
	/* Pairs with smp_load_acquire() of head in cbm_map_peek() */
	smp_store_release(&hdr->head, ring->head);
}

/**
 * cbm_ring_map() - insert the ring's pages, twice, into a mapping
 * @ring: the ring
 * @vma: a mapping being set up, with room for 2 * @ring->size bytes at
 *       @addr
 * @addr: where the first copy starts
 *
 * The mapping takes its own reference on every page, so the pages outlive
 * cbm_ring_destroy() until it is unmapped.
 *
 * Return: 0 or a negative errno from vm_insert_pages().
 */
int cbm_ring_map(const struct cbm_ring *ring, struct vm_area_struct *vma,
		 unsigned long addr)
{
	unsigned long num = 2 * (ring->size >> PAGE_SHIFT);

	return vm_insert_pages(vma, addr, ring->pages, &num);
}

/**
 * cbm_ring_reserve() - place for a new record at the head
 * @ring: the ring
 * @len: payload length
 *
 * The caller has made room: @ring->size - cbm_ring_used() is at least
 * CBM_RECORD_SPACE(@len). The record is not visible until
 * cbm_ring_commit(); the caller fills the header fields it owns (all but
 * @seq and @len) and the payload in between.
 *
 * Return: the record, with @len and @hdr_len set.
 */
struct cbm_record *cbm_ring_reserve(struct cbm_ring *ring, u32 len)
{
	struct cbm_record *rec = cbm_ring_rec(ring, ring->head);

	WARN_ON_ONCE(ring->size - cbm_ring_used(ring) < CBM_RECORD_SPACE(len));
	/*
	 * The evictions that made room were published (cbm_ring_evict())
	 * before the caller overwrites their bytes; pairs with the smp_rmb()
	 * a mapped reader does before it checks the tail (cbm_map_intact()).
	 */
	smp_wmb();
	rec->hdr_len = sizeof(*rec);
	rec->len = len;
	return rec;
}

/*
 * Copies between the ring and user memory go page by page, through the
 * pages rather than the vmap() alias: hardened usercopy checks a copy
 * from or to vmalloc space by looking the area up under the global
 * vmap_area_lock, which every writer and reader would take per message.
 * @copy is copy_page_to_iter() or copy_page_from_iter(); inlined, the
 * call is direct.
 */
static __always_inline size_t
cbm_ring_copy(const struct cbm_ring *ring, u64 pos, size_t len,
	      struct iov_iter *iter,
	      size_t (*copy)(struct page *page, size_t offset, size_t bytes,
			     struct iov_iter *i))
{
	size_t done = 0, chunk, offset, n;
	unsigned long off;

	while (done < len) {
		off = (pos + done) & (ring->size - 1);
		offset = offset_in_page(off);
		chunk = min_t(size_t, len - done, PAGE_SIZE - offset);
		n = copy(ring->pages[off >> PAGE_SHIFT], offset, chunk, iter);
		done += n;
		if (n != chunk)
			break;
	}
	return done;
}

/**
 * cbm_ring_copy_to_iter() - copy bytes of the ring out
 * @ring: the ring
 * @pos: position of the first byte, within the stored records
 * @len: bytes to copy
 * @to: the destination
 *
 * Return: bytes copied, less than @len only on a fault.
 */
size_t cbm_ring_copy_to_iter(const struct cbm_ring *ring, u64 pos, size_t len,
			     struct iov_iter *to)
{
	return cbm_ring_copy(ring, pos, len, to, copy_page_to_iter);
}

/**
 * cbm_ring_copy_from_iter() - copy bytes into the ring
 * @ring: the ring
 * @pos: position of the first byte, within a reserved record
 * @len: bytes to copy
 * @from: the source
 *
 * Return: bytes copied, less than @len only on a fault.
 */
size_t cbm_ring_copy_from_iter(struct cbm_ring *ring, u64 pos, size_t len,
			       struct iov_iter *from)
{
	return cbm_ring_copy(ring, pos, len, from, copy_page_from_iter);
}

/**
 * cbm_ring_commit() - make a reserved record the newest one
 * @ring: the ring
 * @rec: the record returned by the last cbm_ring_reserve()
 *
 * Stamps the record with the next sequence number, and with the total of
 * numbers skipped below it (see cbm_ring_skip()).
 */
void cbm_ring_commit(struct cbm_ring *ring, struct cbm_record *rec)
{
	rec->seq = ring->next_seq;
	rec->lost = ring->skipped;
	ring->head += CBM_RECORD_SPACE(rec->len);
	/* Lockless waiters in cbm_ring_next_seq() only need a fresh value */
	WRITE_ONCE(ring->next_seq, ring->next_seq + 1);
	if (ring->pub)
		/*
		 * The record is written before mapped readers may see it;
		 * pairs with smp_load_acquire() of head in cbm_map_peek().
		 */
		smp_store_release(&ring->pub->head, ring->head);
}

/**
 * cbm_ring_evict() - drop the oldest record
 * @ring: a ring holding at least one record
 *
 * Return: bytes freed.
 */
u64 cbm_ring_evict(struct cbm_ring *ring)
{
	u64 space = CBM_RECORD_SPACE(cbm_ring_rec(ring, ring->tail)->len);

	ring->tail += space;
	ring->first_seq++;
	/* Ordered before the bytes are reused by the smp_wmb() in reserve */
	if (ring->pub)
		WRITE_ONCE(ring->pub->tail, ring->tail);
	return space;
}

/**
 * cbm_ring_skip() - continue the numbering at a later sequence number
 * @ring: an empty ring
 * @seq: the sequence number the next record gets, at least
 *       @ring->next_seq
 *
 * The numbers skipped never belonged to a record (a restored
 * conversation's holes). A mapped reader cannot ask what happened to
 * them, so every record carries in &cbm_record.lost the total of numbers
 * skipped below it, and the reader (cbm_map_peek()) tells holes from lost
 * messages by how much the total grew since the record it read last, or
 * since its start (&cbm_map_info.skipped). A running total, not the size
 * of the one hole before a record, because that record may leave the ring
 * before the reader sees it: a restore skips only with the ring empty, its
 * pinned records pushed out. The positions do not move: a reader waiting
 * at the head reads the next record there.
 */
void cbm_ring_skip(struct cbm_ring *ring, u64 seq)
{
	if (WARN_ON_ONCE(ring->head != ring->tail || seq < ring->next_seq))
		return;
	ring->skipped += seq - ring->next_seq;
	ring->first_seq = seq;
	/* Lockless waiters in cbm_ring_next_seq() only need a fresh value */
	WRITE_ONCE(ring->next_seq, seq);
}

/**
 * cbm_ring_pos() - position of a record by sequence number
 * @ring: the ring
 * @seq: a sequence number from @ring->first_seq to @ring->next_seq (the
 *       latter gives @ring->head)
 * @hint_seq: a stored sequence number whose position is known, or any value
 *            outside the stored range
 * @hint_pos: the position of @hint_seq
 *
 * Records have variable sizes, so this walks forward from the oldest
 * record or from the hint, whichever is closer below @seq.
 *
 * Return: the position of @seq.
 */
u64 cbm_ring_pos(const struct cbm_ring *ring, u64 seq, u64 hint_seq,
		 u64 hint_pos)
{
	u64 cur = ring->first_seq;
	u64 pos = ring->tail;

	if (seq == ring->next_seq)
		return ring->head;
	if (hint_seq >= ring->first_seq && hint_seq <= seq) {
		cur = hint_seq;
		pos = hint_pos;
	}
	for (; cur < seq; cur++)
		pos += CBM_RECORD_SPACE(cbm_ring_rec(ring, pos)->len);
	return pos;
}
