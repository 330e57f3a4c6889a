// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Host unit tests of the map reader in cbm_map.h: its decisions, driven by
 * a writer simulated in this process. The kernel's side of the protocol
 * is tested in the VM by selftests/cbm_mmap_test.c; here every state the
 * reader can meet (torn record, lap, resize, bad data) is made on purpose
 * and exactly. Prints TAP.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>

#include "cbm_map.h"
#include "host_test.h"

#define RING_SIZE	4096UL

/* A fake mapping: header, then the ring's bytes twice, as the kernel lays it */
struct fake {
	struct cbm_map_header *hdr;
	unsigned char *data;
	uint64_t next_seq;
	uint64_t first_seq;
	uint64_t skipped;
};

/* The header page and the ring's pages mapped twice, back to back */
static void fake_init(struct fake *f, struct cbm_map *m)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *base;
	int fd;

	memset(f, 0, sizeof(*f));
	fd = memfd_create("cbm_map_test", 0);
	if (fd < 0 || ftruncate(fd, RING_SIZE)) {
		perror("memfd");
		exit(1);
	}
	base = mmap(NULL, page + 2 * RING_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED ||
	    mmap(base + page, RING_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + page + RING_SIZE, RING_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	close(fd);
	f->hdr = (struct cbm_map_header *)base;
	f->data = base + page;
	f->hdr->hdr_size = sizeof(*f->hdr);
	f->hdr->generation = 1;
	f->hdr->capacity = RING_SIZE;

	/* What cbm_map_open() would have set up, without the ioctl */
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->base = base;
	m->len = page + 2 * RING_SIZE;
	m->hdr = f->hdr;
	m->data = f->data;
	m->capacity = RING_SIZE;
	m->gen = 1;
}

static void fake_fini(struct fake *f)
{
	munmap(f->hdr, sysconf(_SC_PAGESIZE) + 2 * RING_SIZE);
}

static void fake_evict(struct fake *f)
{
	struct cbm_map_header *h = f->hdr;
	struct cbm_record *rec;

	rec = (void *)(f->data + (h->tail & (RING_SIZE - 1)));
	h->tail += CBM_RECORD_SPACE(rec->len);
	f->first_seq++;
}

/*
 * Evict until @len more bytes fit, then append a record of @len bytes,
 * carrying the total of restore holes below it as the kernel stamps it
 */
static void fake_append(struct fake *f, uint32_t len, unsigned char fill)
{
	struct cbm_map_header *h = f->hdr;
	struct cbm_record *rec;

	while (RING_SIZE - (h->head - h->tail) < CBM_RECORD_SPACE(len))
		fake_evict(f);
	rec = (void *)(f->data + (h->head & (RING_SIZE - 1)));
	memset(rec, 0, sizeof(*rec));
	rec->hdr_len = sizeof(*rec);
	rec->type = CBM_RECORD_MSG;
	rec->len = len;
	rec->seq = f->next_seq++;
	rec->lost = f->skipped;
	memset(rec + 1, fill, len);
	h->head += CBM_RECORD_SPACE(len);
}

/*
 * A restore's hole, as cbm_conv_skip_to() makes it: the ring's (pinned)
 * records leave it, and the numbering jumps to @seq
 */
static void fake_skip(struct fake *f, uint64_t seq)
{
	while (f->hdr->tail != f->hdr->head)
		fake_evict(f);
	f->skipped += seq - f->next_seq;
	f->next_seq = seq;
	f->first_seq = seq;
}

static void test_empty(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;

	fake_init(&f, &m);
	CHECK_EQ(0, cbm_map_peek(&m, &r));
	CHECK_EQ(0, cbm_map_release(&m));
	CHECK(!cbm_map_unlinked(&m));
	f.hdr->flags = CBM_MAP_UNLINKED;
	CHECK(cbm_map_unlinked(&m));
	fake_fini(&f);
}

/* Records come in order, in place, and across the end of the ring */
static void test_in_order_and_wrap(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;
	uint64_t i;

	fake_init(&f, &m);
	for (i = 0; i < 200; i++) {
		fake_append(&f, 100 + i % 7, (unsigned char)i);
		CHECK_EQ(1, cbm_map_peek(&m, &r));
		CHECK_EQ(CBM_RECORD_MSG, r.hdr.type);
		CHECK_EQ(i, r.hdr.seq);
		CHECK_EQ(100 + i % 7, r.hdr.len);
		CHECK_EQ((unsigned char)i,
			 ((const unsigned char *)r.payload)[r.hdr.len - 1]);
		/* Peeking again without releasing hands out the same record */
		CHECK_EQ(1, cbm_map_peek(&m, &r));
		CHECK_EQ(i, r.hdr.seq);
		CHECK_EQ(0, cbm_map_release(&m));
		CHECK_EQ(0, cbm_map_peek(&m, &r));
	}
	CHECK_EQ(200, m.seq);
	CHECK_EQ(0, m.lost);
	fake_fini(&f);
}

/* A lap while a record is in use: -ESTALE, then an exact gap */
static void test_overwritten_while_used(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;
	int i;

	fake_init(&f, &m);
	fake_append(&f, 500, 1);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	for (i = 0; i < 20; i++)
		fake_append(&f, 500, 2);
	CHECK_EQ(-ESTALE, cbm_map_release(&m));
	CHECK_EQ(0, m.seq);

	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_GAP, r.hdr.type);
	CHECK_EQ(0, r.hdr.seq);
	CHECK_EQ(f.first_seq, r.hdr.lost);
	CHECK(r.payload == NULL);
	CHECK_EQ(f.first_seq, m.lost);
	/* A gap is consumed at once */
	CHECK_EQ(0, cbm_map_release(&m));

	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_MSG, r.hdr.type);
	CHECK_EQ(f.first_seq, r.hdr.seq);
	CHECK_EQ(0, cbm_map_release(&m));
	fake_fini(&f);
}

/* A reader that fell behind before peeking resyncs to the tail */
static void test_behind_before_peek(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;
	uint64_t seen = 0, lost = 0;
	int i, ret;

	fake_init(&f, &m);
	for (i = 0; i < 100; i++)
		fake_append(&f, 200, (unsigned char)i);
	while ((ret = cbm_map_peek(&m, &r)) > 0) {
		if (r.hdr.type == CBM_RECORD_GAP) {
			lost += r.hdr.lost;
			continue;
		}
		CHECK_EQ(seen + lost, r.hdr.seq);
		CHECK_EQ((unsigned char)r.hdr.seq,
			 ((const unsigned char *)r.payload)[0]);
		CHECK_EQ(0, cbm_map_release(&m));
		seen++;
	}
	CHECK_EQ(0, ret);
	CHECK_EQ(100, seen + lost);
	CHECK_EQ(f.first_seq, lost);
	CHECK_EQ(f.next_seq - f.first_seq, seen);
	fake_fini(&f);
}

/* cbm_map_read(): copies, and leaves a record a buffer cannot hold */
static void test_read_copy(void)
{
	struct cbm_record hdr = { 0 };
	struct cbm_map m;
	unsigned char buf[300];
	struct fake f;

	fake_init(&f, &m);
	fake_append(&f, 250, 7);
	fake_append(&f, 10, 8);
	CHECK_EQ(-EMSGSIZE, cbm_map_read(&m, &hdr, buf, 249));
	CHECK_EQ(250, hdr.len);
	CHECK_EQ(0, m.seq);
	CHECK_EQ(1, cbm_map_read(&m, &hdr, buf, sizeof(buf)));
	CHECK_EQ(0, hdr.seq);
	CHECK_EQ(7, buf[249]);
	CHECK_EQ(1, cbm_map_read(&m, &hdr, buf, sizeof(buf)));
	CHECK_EQ(1, hdr.seq);
	CHECK_EQ(8, buf[9]);
	CHECK_EQ(0, cbm_map_read(&m, &hdr, buf, sizeof(buf)));
	fake_fini(&f);
}

/* Data that contradicts the protocol is reported, never handed out */
static void test_bad_data(void)
{
	struct cbm_record *rec;
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;

	fake_init(&f, &m);
	fake_append(&f, 10, 1);
	rec = (void *)f.data;
	rec->seq = 5;
	CHECK_EQ(-EIO, cbm_map_peek(&m, &r));
	rec->seq = 0;
	rec->len = RING_SIZE;
	CHECK_EQ(-EIO, cbm_map_peek(&m, &r));
	rec->len = 10;
	rec->type = CBM_RECORD_GAP;
	CHECK_EQ(-EIO, cbm_map_peek(&m, &r));
	rec->type = CBM_RECORD_MSG;
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	fake_fini(&f);
}

/*
 * A restore's hole: every record counts the numbers below it that never
 * existed, a running total in its lost field. What the total grew by is
 * skipped without a gap, in order and after a restart at the tail, where
 * only the rest is lost; a jump larger than the total's growth without a
 * restart, a growth larger than the jump, or a total that shrinks, is an
 * error. (The kernel skips only with the ring empty; this ring keeps
 * record 0, to show what the reader does with the total alone.)
 */
static void test_hole(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;

	fake_init(&f, &m);
	fake_append(&f, 10, 1);
	f.next_seq += 4;
	f.skipped += 4;
	fake_append(&f, 10, 2);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(0, r.hdr.seq);
	CHECK_EQ(0, cbm_map_release(&m));
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_MSG, r.hdr.type);
	CHECK_EQ(5, r.hdr.seq);
	CHECK_EQ(0, r.hdr.lost);
	CHECK_EQ(0, cbm_map_release(&m));
	CHECK_EQ(6, m.seq);
	CHECK_EQ(0, m.lost);

	CHECK_EQ(4, m.skipped);

	/* Restarted at the tail: record 0 was lost, the hole was not */
	m.pos = 0;
	m.seq = 0;
	m.skipped = 0;
	f.hdr->tail = CBM_RECORD_SPACE(10);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_GAP, r.hdr.type);
	CHECK_EQ(0, r.hdr.seq);
	CHECK_EQ(1, r.hdr.lost);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(5, r.hdr.seq);
	CHECK_EQ(1, m.lost);

	/* More than the hole without a restart contradicts the protocol */
	m.pos = CBM_RECORD_SPACE(10);
	m.seq = 0;
	m.skipped = 0;
	m.cur_space = 0;
	CHECK_EQ(-EIO, cbm_map_peek(&m, &r));
	/* So does a hole larger than the jump, or a total that shrank */
	m.seq = 2;
	CHECK_EQ(-EIO, cbm_map_peek(&m, &r));
	m.seq = 5;
	m.skipped = 5;
	CHECK_EQ(-EIO, cbm_map_peek(&m, &r));
	fake_fini(&f);
}

/*
 * The record right after a hole may leave the ring before the reader
 * sees it. Restoring pinned 10, pinned 20 and 30 pushes each pinned record
 * out of the ring as the numbering jumps past it, so only 30 is left,
 * after holes 6-9, 11-19 and 21-29. A reader that had read 5 (after an
 * earlier hole of 5) lost exactly 10 and 20: 24 numbers from 6 to 29, less
 * the 22 the total grew by. A reader that starts at the tail, with the
 * total the kernel reports there, loses nothing.
 */
static void test_hole_left_ring(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;

	fake_init(&f, &m);
	fake_skip(&f, 5);
	fake_append(&f, 10, 5);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_MSG, r.hdr.type);
	CHECK_EQ(5, r.hdr.seq);
	CHECK_EQ(0, cbm_map_release(&m));

	fake_skip(&f, 10);
	fake_append(&f, 10, 10);
	fake_skip(&f, 20);
	fake_append(&f, 10, 20);
	fake_skip(&f, 30);
	fake_append(&f, 10, 30);
	CHECK_EQ(27, f.skipped);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_GAP, r.hdr.type);
	CHECK_EQ(6, r.hdr.seq);
	CHECK_EQ(2, r.hdr.lost);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_MSG, r.hdr.type);
	CHECK_EQ(30, r.hdr.seq);
	CHECK_EQ(0, r.hdr.lost);
	CHECK_EQ(30, ((const unsigned char *)r.payload)[0]);
	CHECK_EQ(0, cbm_map_release(&m));
	CHECK_EQ(2, m.lost);
	CHECK_EQ(0, cbm_map_peek(&m, &r));

	/* As cbm_map_open(CBM_MAP_OLDEST) starts now: at the tail */
	m.pos = f.hdr->tail;
	m.seq = f.first_seq;
	m.skipped = f.skipped;
	m.lost = 0;
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	CHECK_EQ(CBM_RECORD_MSG, r.hdr.type);
	CHECK_EQ(30, r.hdr.seq);
	CHECK_EQ(0, cbm_map_release(&m));
	CHECK_EQ(0, m.lost);
	fake_fini(&f);
}

/*
 * A new generation: a record in use is stale, and the reader remaps by
 * itself, here failing with the error of CBM_IOC_MAP_INFO on a file that
 * is not /dev/cbm. Unmapped after that, it must not touch the old
 * mapping again, and tries to map anew on the next peek.
 */
static void test_generation_change(void)
{
	struct cbm_map_rec r;
	struct cbm_map m;
	struct fake f;

	fake_init(&f, &m);
	fake_append(&f, 10, 1);
	CHECK_EQ(1, cbm_map_peek(&m, &r));
	f.hdr->generation = 2;
	CHECK_EQ(-ESTALE, cbm_map_release(&m));
	CHECK_EQ(0, m.seq);
	m.fd = memfd_create("not_cbm", 0);
	CHECK(m.fd >= 0);
	CHECK_EQ(-ENOTTY, cbm_map_peek(&m, &r));
	CHECK(m.base == NULL);
	CHECK(!cbm_map_unlinked(&m));
	CHECK_EQ(0, cbm_map_release(&m));
	CHECK_EQ(-ENOTTY, cbm_map_peek(&m, &r));
	CHECK_EQ(0, m.seq);
	close(m.fd);
}

static const struct host_test tests[] = {
	{ "empty", test_empty },
	{ "in_order_and_wrap", test_in_order_and_wrap },
	{ "overwritten_while_used", test_overwritten_while_used },
	{ "behind_before_peek", test_behind_before_peek },
	{ "read_copy", test_read_copy },
	{ "bad_data", test_bad_data },
	{ "generation_change", test_generation_change },
	{ "hole", test_hole },
	{ "hole_left_ring", test_hole_left_ring },
};

int main(void)
{
	return host_test_run(tests, sizeof(tests) / sizeof(tests[0]));
}
