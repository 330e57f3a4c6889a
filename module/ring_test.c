// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the cbm ring core and name rules. Built into cbm.ko when
 * the kernel has CONFIG_KUNIT; the suites run when the module is loaded.
 */
#include <kunit/test.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "conv.h"
#include "ring.h"

#define CBM_TEST_RING_SIZE	PAGE_SIZE

static int cbm_ring_test_init(struct kunit *test)
{
	struct cbm_ring *ring;

	ring = kunit_kzalloc(test, sizeof(*ring), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ring);
	KUNIT_ASSERT_EQ(test, 0,
			cbm_ring_init(ring, CBM_TEST_RING_SIZE, GFP_KERNEL));
	test->priv = ring;
	return 0;
}

static void cbm_ring_test_exit(struct kunit *test)
{
	cbm_ring_destroy(test->priv);
}

/* Append a record whose payload bytes are @fill; returns its position */
static u64 cbm_test_append(struct cbm_ring *ring, u32 len, u8 fill)
{
	u64 pos = ring->head;
	struct cbm_record *rec = cbm_ring_reserve(ring, len);

	memset(rec + 1, fill, len);
	rec->type = CBM_RECORD_MSG;
	cbm_ring_commit(ring, rec);
	return pos;
}

static void cbm_record_layout_test(struct kunit *test)
{
	/* The layout is ABI: read() copies it and mmap() will expose it */
	KUNIT_EXPECT_EQ(test, 56, sizeof(struct cbm_record));
	KUNIT_EXPECT_EQ(test, 0, offsetof(struct cbm_record, hdr_len));
	KUNIT_EXPECT_EQ(test, 2, offsetof(struct cbm_record, type));
	KUNIT_EXPECT_EQ(test, 4, offsetof(struct cbm_record, len));
	KUNIT_EXPECT_EQ(test, 8, offsetof(struct cbm_record, seq));
	KUNIT_EXPECT_EQ(test, 16, offsetof(struct cbm_record, ts_ns));
	KUNIT_EXPECT_EQ(test, 24, offsetof(struct cbm_record, lost));
	KUNIT_EXPECT_EQ(test, 32, offsetof(struct cbm_record, pid));
	KUNIT_EXPECT_EQ(test, 36, offsetof(struct cbm_record, uid));
	KUNIT_EXPECT_EQ(test, 40, offsetof(struct cbm_record, flags));
	KUNIT_EXPECT_EQ(test, 44, offsetof(struct cbm_record, tokens));
	KUNIT_EXPECT_EQ(test, 48, offsetof(struct cbm_record, role));

	KUNIT_EXPECT_EQ(test, 56, CBM_RECORD_SPACE(0));
	KUNIT_EXPECT_EQ(test, 64, CBM_RECORD_SPACE(1));
	KUNIT_EXPECT_EQ(test, 64, CBM_RECORD_SPACE(8));
	KUNIT_EXPECT_EQ(test, 72, CBM_RECORD_SPACE(9));
	KUNIT_EXPECT_EQ(test, (u64)U32_MAX + 57,
			CBM_RECORD_SPACE((u64)U32_MAX));
}

static void cbm_ring_empty_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;

	KUNIT_EXPECT_EQ(test, CBM_TEST_RING_SIZE, ring->size);
	KUNIT_EXPECT_EQ(test, 0, cbm_ring_used(ring));
	KUNIT_EXPECT_EQ(test, 0, ring->first_seq);
	KUNIT_EXPECT_EQ(test, 0, cbm_ring_next_seq(ring));
	KUNIT_EXPECT_EQ(test, ring->head, cbm_ring_pos(ring, 0, 0, 0));
	/* Fresh pages are zeroed: nothing stale can be read back */
	KUNIT_EXPECT_TRUE(test, !memchr_inv(ring->data, 0, 2 * ring->size));
}

static void cbm_ring_seq_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	struct cbm_record *rec;
	u64 used = 0;
	u32 len;

	for (len = 0; len < 20; len++) {
		u64 pos = cbm_test_append(ring, len, len);

		rec = cbm_ring_rec(ring, pos);
		KUNIT_EXPECT_EQ(test, len, rec->seq);
		KUNIT_EXPECT_EQ(test, len, rec->len);
		KUNIT_EXPECT_EQ(test, sizeof(*rec), rec->hdr_len);
		KUNIT_EXPECT_EQ(test, 0, pos % CBM_RECORD_ALIGN);
		used += CBM_RECORD_SPACE(len);
	}
	KUNIT_EXPECT_EQ(test, 20, cbm_ring_next_seq(ring));
	KUNIT_EXPECT_EQ(test, 0, ring->first_seq);
	KUNIT_EXPECT_EQ(test, used, cbm_ring_used(ring));
}

static void cbm_ring_evict_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	u64 used;

	cbm_test_append(ring, 10, 1);
	cbm_test_append(ring, 0, 2);
	cbm_test_append(ring, 100, 3);
	used = cbm_ring_used(ring);

	KUNIT_EXPECT_EQ(test, CBM_RECORD_SPACE(10), cbm_ring_evict(ring));
	KUNIT_EXPECT_EQ(test, 1, ring->first_seq);
	KUNIT_EXPECT_EQ(test, used - CBM_RECORD_SPACE(10), cbm_ring_used(ring));
	KUNIT_EXPECT_EQ(test, 1, cbm_ring_rec(ring, ring->tail)->seq);

	KUNIT_EXPECT_EQ(test, CBM_RECORD_SPACE(0), cbm_ring_evict(ring));
	KUNIT_EXPECT_EQ(test, CBM_RECORD_SPACE(100), cbm_ring_evict(ring));
	KUNIT_EXPECT_EQ(test, 0, cbm_ring_used(ring));
	KUNIT_EXPECT_EQ(test, 3, ring->first_seq);
	/* Sequence numbers are never reused, even when the ring empties */
	KUNIT_EXPECT_EQ(test, 3, cbm_ring_next_seq(ring));
	KUNIT_EXPECT_EQ(test, ring->tail, ring->head);
}

/*
 * Records of an odd size wrap many times; the one that straddles the end
 * of the ring must read back whole through the second mapping, and its
 * bytes past the end must be the very bytes at the start of the ring.
 */
static void cbm_ring_wrap_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	/* Its space must not divide the ring, or no record would wrap */
	u32 len = 201;
	u64 space = CBM_RECORD_SPACE(len);
	unsigned int wraps = 0;
	u64 pos, off;
	u8 fill;

	for (fill = 1; wraps < 3; fill++) {
		while (ring->size - cbm_ring_used(ring) < space)
			cbm_ring_evict(ring);
		pos = cbm_test_append(ring, len, fill);
		if ((pos & (ring->size - 1)) + space <= ring->size)
			continue;
		wraps++;
		for (off = sizeof(struct cbm_record);
		     off < sizeof(struct cbm_record) + len; off++) {
			u8 *direct = (u8 *)cbm_ring_rec(ring, pos) + off;
			u8 *alias = ring->data + ((pos + off) & (ring->size - 1));

			KUNIT_ASSERT_EQ(test, fill, *direct);
			KUNIT_ASSERT_EQ(test, fill, *alias);
		}
	}
	KUNIT_EXPECT_GT(test, ring->head, (u64)3 * ring->size);
	KUNIT_EXPECT_LE(test, cbm_ring_used(ring), (u64)ring->size);
	KUNIT_EXPECT_EQ(test, ring->first_seq,
			cbm_ring_rec(ring, ring->tail)->seq);
}

static void cbm_ring_boundary_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	u32 max = ring->size - sizeof(struct cbm_record);

	/* The largest payload fills the ring exactly, at any offset */
	cbm_test_append(ring, 5, 1);
	cbm_ring_evict(ring);
	cbm_test_append(ring, max, 2);
	KUNIT_EXPECT_EQ(test, ring->size, cbm_ring_used(ring));
	KUNIT_EXPECT_EQ(test, max, cbm_ring_rec(ring, ring->tail)->len);
	KUNIT_EXPECT_EQ(test, ring->size, cbm_ring_evict(ring));
	KUNIT_EXPECT_EQ(test, 0, cbm_ring_used(ring));

	/* As many empty records as fit: each takes just a header */
	while (ring->size - cbm_ring_used(ring) >= CBM_RECORD_SPACE(0))
		cbm_test_append(ring, 0, 0);
	KUNIT_EXPECT_EQ(test, ring->size / CBM_RECORD_SPACE(0) *
			CBM_RECORD_SPACE(0), cbm_ring_used(ring));
	KUNIT_EXPECT_EQ(test, 2 + ring->size / CBM_RECORD_SPACE(0),
			cbm_ring_next_seq(ring));
}

static void cbm_ring_pos_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	u64 pos[40];
	u64 seq;

	for (seq = 0; seq < ARRAY_SIZE(pos); seq++) {
		u32 len = (seq * 37) % 150;

		while (ring->size - cbm_ring_used(ring) < CBM_RECORD_SPACE(len))
			cbm_ring_evict(ring);
		pos[seq] = cbm_test_append(ring, len, seq);
	}
	KUNIT_ASSERT_GT(test, ring->first_seq, 0);

	for (seq = ring->first_seq; seq < ring->next_seq; seq++) {
		/* From the oldest record, and from every hint at or below */
		KUNIT_EXPECT_EQ(test, pos[seq], cbm_ring_pos(ring, seq, 0, 0));
		KUNIT_EXPECT_EQ(test, pos[seq],
				cbm_ring_pos(ring, seq, ring->first_seq,
					     ring->tail));
		KUNIT_EXPECT_EQ(test, pos[seq],
				cbm_ring_pos(ring, seq, seq, pos[seq]));
		/* A hint above the target is not used */
		if (seq + 1 < ring->next_seq)
			KUNIT_EXPECT_EQ(test, pos[seq],
					cbm_ring_pos(ring, seq, seq + 1,
						     pos[seq + 1]));
	}
	KUNIT_EXPECT_EQ(test, ring->head,
			cbm_ring_pos(ring, ring->next_seq, 0, 0));
}

static void cbm_name_test(struct kunit *test)
{
	static const char * const good[] = {
		"a", "default", "chat-1", "A_b.c", "0", "x.",
	};
	static const char * const bad[] = {
		"", ".", "..", ".a", "-a", "a/b", "a b", "a\n", "caf\xc3\xa9",
		"\xe9", "a:b",
	};
	char name[CBM_NAME_MAX];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		strscpy_pad(name, good[i], sizeof(name));
		KUNIT_EXPECT_TRUE_MSG(test, cbm_conv_name_valid(name), "%s",
				      good[i]);
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		strscpy_pad(name, bad[i], sizeof(name));
		KUNIT_EXPECT_FALSE_MSG(test, cbm_conv_name_valid(name), "%s",
				       bad[i]);
	}

	/* CBM_NAME_MAX - 1 characters fit; without a NUL the name is bad */
	memset(name, 'n', sizeof(name));
	name[CBM_NAME_MAX - 1] = '\0';
	KUNIT_EXPECT_TRUE(test, cbm_conv_name_valid(name));
	name[CBM_NAME_MAX - 1] = 'n';
	KUNIT_EXPECT_FALSE(test, cbm_conv_name_valid(name));
}

/* A moved ring keeps positions, sequence numbers and bytes, both ways */
static void cbm_ring_move_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	struct cbm_ring big, small;
	u64 pos[8], seq;

	/* Wrap the small ring first, so the copy crosses its end */
	for (seq = 0; seq < 60; seq++) {
		while (ring->size - cbm_ring_used(ring) < CBM_RECORD_SPACE(100))
			cbm_ring_evict(ring);
		cbm_test_append(ring, 100, seq);
	}
	while (cbm_ring_used(ring) > 4 * CBM_RECORD_SPACE(100))
		cbm_ring_evict(ring);
	for (seq = 0; seq < 4; seq++)
		pos[seq] = cbm_ring_pos(ring, ring->first_seq + seq, 0, 0);

	KUNIT_ASSERT_EQ(test, 0, cbm_ring_init(&big, 4 * ring->size,
					       GFP_KERNEL));
	cbm_ring_move(&big, ring);
	KUNIT_EXPECT_EQ(test, ring->head, big.head);
	KUNIT_EXPECT_EQ(test, ring->tail, big.tail);
	KUNIT_EXPECT_EQ(test, ring->first_seq, big.first_seq);
	KUNIT_EXPECT_EQ(test, ring->next_seq, big.next_seq);
	for (seq = 0; seq < 4; seq++)
		KUNIT_EXPECT_EQ(test, 0,
				memcmp(cbm_ring_rec(ring, pos[seq]),
				       cbm_ring_rec(&big, pos[seq]),
				       CBM_RECORD_SPACE(100)));

	KUNIT_ASSERT_EQ(test, 0, cbm_ring_init(&small, ring->size,
					       GFP_KERNEL));
	cbm_ring_move(&small, &big);
	for (seq = 0; seq < 4; seq++)
		KUNIT_EXPECT_EQ(test, ring->first_seq + seq,
				cbm_ring_rec(&small, pos[seq])->seq);
	cbm_ring_destroy(&small);
	cbm_ring_destroy(&big);
}

/*
 * Skipped numbers add up: every record carries the total below it, not
 * just the hole right before it, and a move keeps counting on.
 */
static void cbm_ring_skip_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	struct cbm_ring big;
	u64 pos;

	cbm_test_append(ring, 8, 0);
	KUNIT_EXPECT_EQ(test, 0, cbm_ring_rec(ring, 0)->lost);
	cbm_ring_evict(ring);
	cbm_ring_skip(ring, 10);
	KUNIT_EXPECT_EQ(test, 10, ring->first_seq);
	KUNIT_EXPECT_EQ(test, ring->head, ring->tail);
	pos = cbm_test_append(ring, 8, 10);
	KUNIT_EXPECT_EQ(test, 10, cbm_ring_rec(ring, pos)->seq);
	KUNIT_EXPECT_EQ(test, 9, cbm_ring_rec(ring, pos)->lost);
	cbm_ring_evict(ring);
	cbm_ring_skip(ring, 20);
	cbm_test_append(ring, 8, 20);
	pos = cbm_test_append(ring, 8, 21);
	KUNIT_EXPECT_EQ(test, 21, cbm_ring_rec(ring, pos)->seq);
	KUNIT_EXPECT_EQ(test, 18, cbm_ring_rec(ring, pos)->lost);
	KUNIT_EXPECT_EQ(test, 18, ring->skipped);

	KUNIT_ASSERT_EQ(test, 0, cbm_ring_init(&big, 2 * ring->size,
					       GFP_KERNEL));
	cbm_ring_move(&big, ring);
	KUNIT_EXPECT_EQ(test, 18, big.skipped);
	pos = cbm_test_append(&big, 8, 22);
	KUNIT_EXPECT_EQ(test, 18, cbm_ring_rec(&big, pos)->lost);
	cbm_ring_destroy(&big);
}

/*
 * Mapped readers see every commit and eviction in the header, and a
 * replacing ring as a new generation with the same positions.
 */
static void cbm_ring_publish_test(struct kunit *test)
{
	struct cbm_ring *ring = test->priv;
	struct cbm_map_header *hdr;
	struct cbm_ring big;
	u64 seq;

	/* The header layout is ABI too */
	KUNIT_EXPECT_EQ(test, 40, sizeof(*hdr));
	KUNIT_EXPECT_EQ(test, 8, offsetof(struct cbm_map_header, generation));
	KUNIT_EXPECT_EQ(test, 24, offsetof(struct cbm_map_header, head));
	KUNIT_EXPECT_EQ(test, 32, offsetof(struct cbm_map_header, tail));

	hdr = kunit_kzalloc(test, sizeof(*hdr), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, hdr);
	cbm_ring_publish(ring, hdr);
	KUNIT_EXPECT_EQ(test, 1, hdr->generation);
	KUNIT_EXPECT_EQ(test, ring->size, hdr->capacity);

	for (seq = 0; seq < 60; seq++) {
		while (ring->size - cbm_ring_used(ring) < CBM_RECORD_SPACE(100))
			cbm_ring_evict(ring);
		KUNIT_EXPECT_EQ(test, ring->tail, hdr->tail);
		cbm_test_append(ring, 100, seq);
		KUNIT_EXPECT_EQ(test, ring->head, hdr->head);
	}

	KUNIT_ASSERT_EQ(test, 0, cbm_ring_init(&big, 2 * ring->size,
					       GFP_KERNEL));
	KUNIT_EXPECT_NULL(test, big.pub);
	cbm_ring_move(&big, ring);
	cbm_ring_publish(&big, hdr);
	KUNIT_EXPECT_EQ(test, 2, hdr->generation);
	KUNIT_EXPECT_EQ(test, big.size, hdr->capacity);
	KUNIT_EXPECT_EQ(test, ring->head, hdr->head);
	KUNIT_EXPECT_EQ(test, ring->tail, hdr->tail);
	cbm_test_append(&big, 100, 0);
	KUNIT_EXPECT_EQ(test, big.head, hdr->head);
	cbm_ring_destroy(&big);
}

static struct kunit_case cbm_ring_cases[] = {
	KUNIT_CASE(cbm_record_layout_test),
	KUNIT_CASE(cbm_ring_empty_test),
	KUNIT_CASE(cbm_ring_seq_test),
	KUNIT_CASE(cbm_ring_evict_test),
	KUNIT_CASE(cbm_ring_wrap_test),
	KUNIT_CASE(cbm_ring_boundary_test),
	KUNIT_CASE(cbm_ring_pos_test),
	KUNIT_CASE(cbm_ring_move_test),
	KUNIT_CASE(cbm_ring_skip_test),
	KUNIT_CASE(cbm_ring_publish_test),
	{}
};

static struct kunit_suite cbm_ring_suite = {
	.name = "cbm_ring",
	.init = cbm_ring_test_init,
	.exit = cbm_ring_test_exit,
	.test_cases = cbm_ring_cases,
};

static struct kunit_case cbm_name_cases[] = {
	KUNIT_CASE(cbm_name_test),
	{}
};

static struct kunit_suite cbm_name_suite = {
	.name = "cbm_name",
	.test_cases = cbm_name_cases,
};

kunit_test_suites(&cbm_ring_suite, &cbm_name_suite);
