/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cbm - conversation buffer memory: ordered, windowed message logs kept in
 * kernel memory behind /dev/cbm.
 *
 * This header is the single source of truth for the cbm ABI.
 */
#ifndef _UAPI_LINUX_CBM_H
#define _UAPI_LINUX_CBM_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: Overview
 *
 * ``/dev/cbm`` keeps *conversations*: append-only logs of *messages* in a
 * bounded ring of kernel memory. One write() appends one message (writev()
 * gathers its vectors into one message, as on a SOCK_SEQPACKET socket); the
 * kernel stamps each message with a header (struct cbm_record) carrying a
 * sequence number, a CLOCK_REALTIME timestamp, the sender's tgid and
 * effective uid, a role and flags.
 *
 * Every open file description has its own read cursor, so many readers each
 * see every message (log semantics, like ``/dev/kmsg``). A new file starts
 * reading at the oldest message still stored. read() returns one message per
 * call, in one of two formats chosen per file with %CBM_IOC_SET_CONFIG:
 *
 * - payload format (the default): the payload bytes only, so ``cat`` and
 *   ``echo`` work;
 * - record format (%CBM_FD_RECORDS): a struct cbm_record followed by the
 *   payload.
 *
 * A file that is never bound with %CBM_IOC_BIND uses the conversation named
 * ``default``, created when the module is loaded. The first operation that
 * needs a conversation (read, write, poll, lseek, and every ioctl but
 * %CBM_IOC_BIND, %CBM_IOC_UNLINK, %CBM_IOC_SET_CONFIG and
 * %CBM_IOC_GET_CONFIG) binds an unbound file to ``default``; after that
 * %CBM_IOC_BIND fails with ``EBUSY``. mmap() does not bind: on an unbound
 * file it fails with ``EINVAL``.
 */

/**
 * DOC: Reading
 *
 * read() returns exactly one record. If the buffer is smaller than the
 * record, read() fails with ``EMSGSIZE`` and consumes nothing; ``FIONREAD``
 * and &cbm_reader_info.next_len give the size needed. When the cursor
 * reaches the newest message, a blocking read() waits for the next one (a
 * signal interrupts it with ``EINTR``, or restarts it under ``SA_RESTART``)
 * and a non-blocking read() fails with ``EAGAIN``. Once the conversation is
 * unlinked and drained, read() returns 0.
 *
 * In a lossy conversation a writer evicts the oldest messages to make room.
 * A reader whose cursor pointed at an evicted message is told once, then
 * resumes at the next message still stored (a pinned one, see "Windows",
 * or the oldest in the ring):
 *
 * - in payload format read() fails with ``EPIPE`` once (as ``/dev/kmsg``);
 * - in record format read() returns a record of type %CBM_RECORD_GAP whose
 *   @seq is the first lost sequence number and @lost the number of lost
 *   messages (as perf's ``LOST`` record).
 *
 * The exact number of lost messages is always available through
 * %CBM_IOC_READER_INFO. Nothing is ever lost silently.
 *
 * lseek() moves the cursor by sequence number: ``SEEK_SET`` to a sequence
 * number, ``SEEK_CUR`` relative to the cursor, ``SEEK_END`` relative to the
 * sequence number the next message will get (so ``lseek(fd, -N, SEEK_END)``
 * positions at the last N messages). Valid targets run from the oldest
 * stored message to &cbm_info.next_seq (just after the newest one). A
 * target that is no longer stored moves on to the next stored message,
 * without a gap; a target after the
 * newest message, a negative ``SEEK_SET`` target or an unknown whence fail
 * with ``EINVAL``. lseek() drops a pending gap (its messages are
 * counted in &cbm_reader_info.lost but not reported by read()) and returns
 * the new cursor. lseek() on a file that cannot read
 * fails with ``EBADF``. pread() and pwrite() fail with ``ESPIPE``.
 */

/**
 * DOC: Overflow policy
 *
 * A conversation is *lossy* (the default) or *lossless*
 * (%CBM_CONV_LOSSLESS, chosen at creation). In a lossless conversation a
 * message is not evicted until every lossless reader has read it. Every
 * file bound to a lossless conversation and opened for reading is a
 * lossless reader unless it sets %CBM_FD_LOSSY. A writer that needs room
 * held by a lossless reader blocks (interruptibly), or fails with
 * ``EAGAIN`` if the file is non-blocking. A message that can never fit
 * (larger than the capacity allows) fails with ``EMSGSIZE``.
 *
 * A writer faults its payload in before it evicts anything, so a bad
 * buffer fails with ``EFAULT`` at no cost. Only if the buffer is unmapped
 * by another thread between that check and the copy does a failed write
 * leave messages evicted; readers are told of them as of any other loss.
 */

/**
 * DOC: Windows
 *
 * A conversation may have a *window* (struct cbm_window): limits on what
 * it keeps, enforced on every append and whenever something changes (a
 * new window, an unpin, a lossless reader moving on), not only when
 * someone reads. Every limit is optional and they combine: a message
 * stays only while all of them allow it. The window always evicts the
 * oldest unpinned message first:
 *
 * - @max_msgs: at most that many unpinned messages. With
 *   %CBM_WINDOW_TURNS it counts *turns* instead: a turn starts at each
 *   unpinned %CBM_ROLE_USER message and runs to the next one, so k turns
 *   keep the messages from the k-th newest user message on, and anything
 *   older (such as a greeting before the first user message) goes once k
 *   turns exist. LangChain's ConversationBufferWindowMemory(k) is
 *   %CBM_WINDOW_TURNS with @max_msgs = k over user/assistant pairs.
 * - @max_bytes, @max_tokens: the newest unpinned messages whose payload
 *   lengths, or token counts, sum to at most the limit.
 * - @max_age_ns: unpinned messages expire when their timestamp is that
 *   old, even if nobody writes or reads: a timer frees them on time (to a
 *   few milliseconds) and wakes pollers. The age is measured against
 *   CLOCK_REALTIME, as &cbm_record.ts_ns is, so setting the clock moves
 *   expiry.
 *
 * *Pinned* messages (%CBM_MSG_PINNED, e.g. the system prompt) are outside
 * the window: no limit counts them and the window never evicts them. They
 * stay, even after the ring has reused their place (the kernel keeps a
 * copy), until %CBM_IOC_UNPIN. Their total CBM_RECORD_SPACE() per
 * conversation is bounded by the ``max_pinned`` module parameter
 * (``ENOSPC`` beyond it).
 *
 * Messages the window evicts are lost like messages evicted for room: a
 * reader that had not read them gets a gap. In a lossless conversation the
 * window, too, waits for every lossless reader: a message beyond the
 * window (or expired) goes as soon as they have read it.
 *
 * Readers see pinned messages in sequence order with the others. A
 * conversation's stored messages (what %CBM_IOC_READ_WINDOW returns, what
 * &cbm_info.msgs counts, where a new reader starts) are the pinned
 * messages plus the messages in the ring. Between pinned messages there
 * may be holes; a reader gets a gap only for messages that were evicted
 * after it was bound or last moved its cursor with lseek() or
 * %CBM_IOC_SEEK, and skips older holes silently (those messages were
 * never its to lose).
 *
 * Example: a window of 2 turns over "system (pinned), user 1, assistant 1,
 * ..., user 5, assistant 5" keeps the system prompt and user 4,
 * assistant 4, user 5, assistant 5.
 */

/**
 * DOC: Resizing
 *
 * %CBM_IOC_RESIZE changes the capacity at any time, with writers, readers
 * and pollers active: growing keeps every message, shrinking evicts the
 * oldest ones (see struct cbm_resize). With %CBM_IOC_SET_AUTORESIZE the
 * kernel does it by itself, doubling or halving the ring between two
 * bounds when usage stays above a high-water or below a low-water mark
 * (see struct cbm_autoresize). Every change is counted in
 * &cbm_info.resizes and bumps &cbm_info.config_gen.
 *
 * %CBM_IOC_SET_WINDOW, %CBM_IOC_UNPIN, %CBM_IOC_RESIZE and
 * %CBM_IOC_SET_AUTORESIZE change the conversation for everybody: they need
 * a file opened for writing (``EBADF``) and a caller that owns the
 * conversation or has ``CAP_SYS_ADMIN`` (``EPERM``).
 */

/**
 * DOC: Limits
 *
 * Module parameters bound what any user can make the kernel hold:
 * ``max_conversations`` (``ENOSPC``), ``max_capacity`` per ring
 * (``E2BIG``), ``max_msg_size`` per message (``EMSGSIZE``),
 * ``max_pinned`` bytes of pinned messages per conversation (``ENOSPC``),
 * and two memory caps, checked when a conversation is created or grows and
 * when a message is pinned: ``max_total_bytes`` for all conversations
 * together and ``max_user_bytes`` for the conversations one uid owns (as
 * ``RLIMIT_MSGQUEUE`` does for POSIX message queues). A cap counts ring
 * capacity plus pinned copies; hitting one fails with ``ENOSPC``. An
 * automatic grow that would pass a cap does not happen.
 *
 * The memory is charged to the memory cgroup of the task that created the
 * conversation, whoever makes it grow later; a cgroup at its limit fails
 * the allocation with ``ENOMEM`` and never invokes the OOM killer.
 */

/**
 * DOC: Zero-copy reading
 *
 * mmap() of a bound file (opened for reading) maps the conversation's ring
 * read-only, so a reader takes messages in place, without a system call
 * or a copy per message. %CBM_IOC_MAP_INFO publishes the layout; nothing
 * in it is a constant userspace may assume:
 *
 * ::
 *
 *	offset 0                  data_offset                data_offset
 *	                                                     + capacity
 *	+------------------------+--------------------------+--------------------------+
 *	| struct cbm_map_header  | ring bytes               | the same bytes again     |
 *	| (one page)             | 0 .. capacity - 1        | 0 .. capacity - 1        |
 *	+------------------------+--------------------------+--------------------------+
 *	                         <------------------- data_size ---------------------->
 *	<------------------------------- map_size ------------------------------------>
 *
 * The data pages are mapped twice in a row (as in the BPF ring buffer), so
 * the record at position ``pos`` starts at ``data_offset + (pos &
 * (capacity - 1))`` and is contiguous even where it crosses the end of the
 * ring: a record never wraps. Records are struct cbm_record headers (as
 * the kernel stored them, see below) followed by the payload, every one
 * CBM_RECORD_SPACE(len) bytes after the previous one. Positions run free
 * (they only grow) and are kept across resizes.
 *
 * The header page holds the producer position &cbm_map_header.head (where
 * the next record will start), the oldest valid position
 * &cbm_map_header.tail, the capacity and a generation. Records from tail to
 * head are complete and immutable until evicted.
 *
 * The mapping must start at offset 0 and be either exactly one page (the
 * header alone, to watch the positions) or exactly
 * &cbm_map_info.map_size; anything else fails with ``EINVAL``. Writable
 * or executable mappings fail with ``EPERM`` (``EACCES`` from mmap()
 * itself for a file not opened for reading), and mprotect() cannot add
 * ``PROT_WRITE`` or ``PROT_EXEC`` later (``EACCES``). A mapping cannot be
 * grown with mremap(). Because records cannot be translated in place,
 * &cbm_record.pid and &cbm_record.uid in the map are the numbers the kernel
 * recorded (initial pid and user namespaces), and mmap() fails with
 * ``EPERM`` for a caller in another pid or user namespace; such readers
 * use read().
 *
 * Read protocol (userspace/lib/cbm_map.h implements it). The reader keeps
 * its own position ``pos``, the sequence number ``seq`` it expects there
 * and the hole total ``skipped`` that goes with it (see below), first
 * taken from one %CBM_IOC_MAP_INFO snapshot (@tail and @first_seq for the
 * oldest message, @head and @next_seq for the newest, and @skipped for
 * either):
 *
 * 1. ``head = smp_load_acquire(&hdr->head)``; ``pos == head`` means
 *    nothing new. The kernel publishes head with smp_store_release()
 *    after writing the record, so everything before head is written.
 * 2. Take the record at ``pos``: read its header and use (copy, parse)
 *    the payload in place. Clamp &cbm_record.len to the capacity before
 *    using it: the bytes may be changing underneath.
 * 3. ``smp_rmb()``, then read &cbm_map_header.generation and
 *    &cbm_map_header.tail. The kernel advances tail *before* it overwrites
 *    the bytes of an evicted record, with smp_wmb() in between, so if the
 *    reader saw any overwritten byte in step 2 it sees ``tail > pos``
 *    here. Then the record is discarded (never use a torn record) and the
 *    reader restarts at tail; the first record there has a sequence number
 *    above ``seq``, and the difference, less any restore holes (below),
 *    is the number of messages lost.
 * 4. If the generation changed, the ring was replaced by a resize: the
 *    mapped data pages are the old ring's, still valid memory but no
 *    longer written. Discard the record, unmap, take a new
 *    %CBM_IOC_MAP_INFO and map again; ``pos`` and ``seq`` stay valid
 *    (positions are kept), and a shrink that evicted ``pos`` shows up in
 *    step 3.
 * 5. Otherwise the record was intact: ``pos += CBM_RECORD_SPACE(len)``,
 *    ``seq++``.
 *
 * A restore (%CBM_IOC_RESTORE) may leave holes: sequence numbers that
 * never existed. In the map, and only there, &cbm_record.lost of a
 * message record is the running total of such numbers below its sequence
 * number, over the conversation's whole life; &cbm_map_info.skipped is
 * the total below @next_seq. The ring numbers its records consecutively,
 * so every record from tail to head carries that same total. A reader
 * that expected ``seq`` with the total ``skipped`` and finds a record with
 * a higher sequence number subtracts what the total grew by, the holes in
 * between, and counts only the rest as lost::
 *
 *	lost = (rec.seq - seq) - (rec.lost - skipped)
 *
 * then takes ``rec.lost`` as its ``skipped``. Without a restart at tail a
 * non-zero ``lost`` is an error, and so is a total that shrinks or grows
 * by more than ``rec.seq - seq``. The count is a running total, not the
 * size of the hole right before one record, because that record may leave
 * the ring before a reader sees it (each hole a restore makes pushes the
 * pinned records before it out of the ring); every later record still
 * counts the hole. A gap a reader reports can therefore say how many
 * messages it lost between two sequence numbers, not which ones.
 *
 * A mapping never blocks writers: mapped readers are always lossy, and in
 * a lossless conversation only the file's read() cursor holds back
 * eviction. A reader that wants the kernel to wait for it moves that
 * cursor along with lseek(fd, seq, ``SEEK_SET``) as it consumes (a
 * consumer position, as in the BPF ring buffer); the same lseek() before
 * poll() makes ``EPOLLIN`` mean "a message after ``seq``".
 *
 * Only the ring is mapped: a pinned message is seen while it is in the
 * ring; once the ring has reused its place, its kept copy is read with
 * read() or %CBM_IOC_READ_WINDOW, and in the map it counts as lost like
 * any message that left the ring. Unpinning clears %CBM_MSG_PINNED in
 * the stored header, the one change the kernel makes to a published
 * record.
 *
 * Eviction does not erase: an evicted message's bytes stay in the ring's
 * free space, visible to mappings, until new records overwrite them (or,
 * for a ring replaced by a resize, until its last mapping goes). Only
 * readers the conversation's mode admits can map it, and they could read
 * those messages before; do not rely on a window to wipe data.
 *
 * The mapping holds its pages: after a resize the old data pages stay
 * allocated (charged to the memory cgroup, not to the module's caps) until
 * the last mapping of them goes away, and the mapping stays valid after
 * unlink (%CBM_MAP_UNLINKED is set in the header and poll() reports
 * ``EPOLLHUP``) and after the conversation itself is freed. A child
 * inherits the mapping across fork() as any shared mapping.
 */

/**
 * DOC: Batched appends
 *
 * %CBM_IOC_SEND_BATCH appends up to %CBM_BATCH_MAX messages (struct
 * cbm_batch_msg, each with its own role, flags, token count and payload)
 * in one system call, as sendmmsg() sends datagrams:
 *
 * - The whole batch is checked first: unknown flags or roles (``EINVAL``),
 *   a payload larger than the conversation accepts or than the window's
 *   budgets (``EMSGSIZE``), pinned messages beyond ``max_pinned``
 *   (``ENOSPC``) or an inaccessible payload (``EFAULT``) fail the call
 *   with nothing appended.
 * - The messages are then appended in order, with consecutive sequence
 *   numbers, one timestamp for all (&cbm_record.ts_ns: the clock is read
 *   once per call) and no other writer's message in between. Only the
 *   first one may wait for room (in a lossless conversation, unless the
 *   file is non-blocking). If a later one would have to wait, or fails
 *   for lack of memory (``ENOMEM``, or ``ENOSPC`` from the memory caps),
 *   or its payload faults, the batch stops there.
 * - The call returns the number of messages appended. It fails with the
 *   first message's errno only if none was appended; the rest of a short
 *   batch is the caller's to resubmit.
 *
 * writev() is not a batch: it gathers its vectors into one message.
 */

/**
 * DOC: poll
 *
 * - ``EPOLLIN``: this file has unread messages (or an unreported gap).
 * - ``EPOLLOUT``: a write of the largest message the conversation accepts
 *   would not block (always true in a lossy conversation).
 * - ``EPOLLPRI``: the conversation's configuration (window, auto-resize
 *   settings, capacity) changed since this file was bound or last called
 *   %CBM_IOC_INFO, which clears it.
 * - ``EPOLLHUP``: the conversation was unlinked. Writes then fail with
 *   ``EPIPE``; readers drain what is left, then read() returns 0.
 * - ``EPOLLERR``: an unbound file could not be bound to ``default`` (its
 *   mode denies the file's access).
 */

/**
 * DOC: Restoring a saved conversation
 *
 * Kernel memory dies with the machine, so a conversation can be saved
 * (%CBM_IOC_READ_WINDOW gives an atomic snapshot) and put back later with
 * %CBM_IOC_RESTORE, keeping each message's sequence number, timestamp,
 * role, flags and token count. ``cbmctl save`` and ``cbmctl load`` do this
 * with a JSON Lines file.
 *
 * Restoring is appending with the history given by the caller instead of
 * stamped by the kernel, so it is allowed only where it cannot rewrite
 * anyone's history:
 *
 * - the file must be opened for writing (``EBADF``) and the caller must
 *   own the conversation or have ``CAP_SYS_ADMIN`` (``EPERM``), as for a
 *   configuration change;
 * - the conversation must never have had a message appended by write(),
 *   %CBM_IOC_SEND or %CBM_IOC_SEND_BATCH (``EBUSY``): restore into a
 *   conversation created for the purpose. Several %CBM_IOC_RESTORE calls
 *   may follow one another, to restore more than %CBM_BATCH_MAX messages;
 * - sequence numbers must increase strictly, the first one at or above
 *   &cbm_info.next_seq, and stay below %CBM_SEQ_LIMIT, as must
 *   &cbm_restore.next_seq (``EINVAL``): so far below 2^64, the numbering
 *   can never run out, and every sequence number is a valid lseek()
 *   offset;
 * - timestamps must not decrease, the first one not below the newest
 *   timestamp the conversation ever stored (even if that message is gone
 *   since), none may be 0 (which only gap records carry) and none may be
 *   in the future, after CLOCK_REALTIME at the
 *   time of the call (``EINVAL``): messages appended later are stamped
 *   with the time of their append, and a future timestamp before them
 *   would put them out of order and hold back &cbm_window.max_age_ns
 *   expiry, which takes the oldest messages first;
 * - a hole (a sequence number above the next one, or a &cbm_restore.next_seq
 *   above the one after the last message) may only follow pinned
 *   messages: every message stored when the call starts and every message
 *   of the call before the hole must be pinned (``EINVAL``). The ring
 *   numbers its records consecutively, so only pinned messages, which
 *   are kept outside it, can have holes between them; every snapshot
 *   meets this rule.
 *
 * Holes between restored sequence numbers are messages the saved
 * conversation no longer held: no reader is told of them as lost. A
 * reader's losses not yet reported when a hole is restored are counted in
 * &cbm_reader_info.lost at once, without a gap record. Mapped readers
 * learn of holes from the running total that every record in the map
 * carries (see "Zero-copy reading"). A restored message carries the pid
 * and uid of the task that restores it, not the original sender's: the
 * kernel vouches only for what it saw (a saved file keeps the original
 * ones for the record). The window, the overflow policy and the memory
 * limits apply to restored messages as to appended ones, except that a
 * restore never waits for room: a message that would have to wait ends
 * the call (``EAGAIN`` if it is the first).
 */

/**
 * DOC: Generic netlink
 *
 * The generic netlink family %CBM_GENL_NAME (version %CBM_GENL_VERSION;
 * spec in ``Documentation/netlink/specs/cbm.yaml``) reports named
 * conversations to anyone and changes them for their owners:
 *
 * ============================ ================================================
 * command                      what it does
 * ============================ ================================================
 * %CBM_NL_CMD_CONV_GET         ``do`` with %CBM_NL_A_NAME: one conversation;
 *                              ``dump``: every named conversation, in as many
 *                              messages as it takes, in name order. Needs no
 *                              privilege, but see below.
 * %CBM_NL_CMD_CONV_UNLINK      %CBM_NL_A_NAME: as %CBM_IOC_UNLINK
 * %CBM_NL_CMD_CONV_SET_WINDOW  %CBM_NL_A_NAME and a nested %CBM_NL_A_WINDOW
 *                              (absent limits are 0): as %CBM_IOC_SET_WINDOW
 * %CBM_NL_CMD_CONV_RESIZE      %CBM_NL_A_NAME and %CBM_NL_A_CAPACITY: as
 *                              %CBM_IOC_RESIZE; the reply carries the new
 *                              conversation state
 * %CBM_NL_CMD_EVENT            multicast only, to the group
 *                              %CBM_GENL_MCGRP_EVENTS
 * ============================ ================================================
 *
 * Mutating commands need the caller to own the conversation or to have
 * ``CAP_SYS_ADMIN`` (``EPERM``, and ``EACCES`` for an unlink, as
 * %CBM_IOC_UNLINK and mq_unlink() fail); they fail as their ioctls do
 * otherwise, and with ``ENOENT`` for an unknown name. Attributes are validated
 * strictly: an unknown attribute, a wrong type or length, or a name that
 * is not a valid conversation name fails with ``EINVAL`` and an extended
 * ack naming the attribute.
 *
 * Anybody may list the conversations: their name, flags, owner, group,
 * mode and capacity, as anybody may list ``/dev/mqueue``. The rest (the
 * counters, the window, the auto-resize settings and the readers, whose
 * pids tell which processes use the conversation) is reported only to a
 * caller that owns the conversation, may read it (its mode, as for
 * %CBM_IOC_BIND) or has ``CAP_SYS_ADMIN``; others get
 * %CBM_NL_A_RESTRICTED instead.
 *
 * A conversation is reported as a flat set of ``conv`` attributes (the
 * counters are u64, aligned with %CBM_NL_A_PAD) with nested
 * %CBM_NL_A_WINDOW, %CBM_NL_A_AUTORESIZE and one %CBM_NL_A_READER per
 * reader. If one conversation's readers do not fit in a netlink message,
 * the first ones that fit are reported and %CBM_NL_A_READERS_TRUNCATED is
 * set. Anonymous conversations belong to one open file and are not
 * reported. Numbers are translated into the caller's namespaces as
 * %CBM_IOC_INFO does; a reader pid not visible there is 0.
 *
 * Events carry %CBM_NL_A_EVENT (an enum cbm_nl_event), %CBM_NL_A_NAME and
 * what changed. They tell of every conversation, private ones included,
 * so joining the group needs ``CAP_SYS_ADMIN`` (``EPERM``), and their uids
 * and pids are those of the initial namespaces. The kernel builds no event
 * while nobody listens. The events of one name arrive in the order they
 * happened, from %CBM_NL_EVENT_CREATED to %CBM_NL_EVENT_UNLINKED, after
 * which a conversation that is still open sends none (the name may be
 * somebody else's by then). Eviction events are rate limited to one per
 * conversation per %CBM_NL_EVICT_INTERVAL_MS milliseconds, each carrying
 * in %CBM_NL_A_EVENT_COUNT the messages evicted since the previous one,
 * so that, while somebody listens (and the listener's socket does not
 * overrun), the counts add up to the evictions of that time; a count
 * still pending when the conversation is unlinked is sent before the
 * unlink event.
 */

/**
 * DOC: Errors
 *
 * ============ ===========================================================
 * errno        meaning
 * ============ ===========================================================
 * EACCES       the conversation's owner, group and mode deny the access
 *              the file was opened with (checked as for mq_open()); or
 *              %CBM_IOC_UNLINK or %CBM_NL_CMD_CONV_UNLINK by a caller that
 *              is neither the owner nor has ``CAP_SYS_ADMIN``; mmap() of a file not opened for
 *              reading; mprotect() adding write or execute to a mapping
 * EAGAIN       non-blocking read with nothing to read; non-blocking write
 *              to a lossless conversation that is full
 * EBADF        read, lseek, ``FIONREAD``, %CBM_IOC_READER_INFO,
 *              %CBM_IOC_READ_WINDOW, %CBM_IOC_SEEK or %CBM_IOC_MAP_INFO on
 *              a file opened write-only; write, %CBM_IOC_SEND,
 *              %CBM_IOC_SEND_BATCH, %CBM_IOC_RESTORE or a configuration
 *              change (see "Resizing") on a file opened read-only
 * EBUSY        %CBM_IOC_BIND on a file that is already bound (explicitly
 *              or implicitly to ``default``); %CBM_IOC_UNLINK of
 *              ``default``; %CBM_IOC_RESIZE that would evict a message a
 *              lossless reader has not read; %CBM_IOC_RESTORE into a
 *              conversation that had messages appended
 * EEXIST       %CBM_IOC_BIND with %CBM_BIND_CREATE | %CBM_BIND_EXCL and
 *              the name exists
 * EFAULT       a pointer (the ioctl argument, &cbm_send.data, the
 *              read/write buffer) is not accessible
 * EINVAL       unknown flags or role, a non-zero reserved field, a
 *              malformed name, a struct size smaller than the first
 *              published version, an impossible flag combination, a seek
 *              target after the newest message or an unknown whence; an
 *              mmap() not at offset 0 or of a length other than one page
 *              or &cbm_map_info.map_size; restored sequence numbers or
 *              timestamps out of order; a netlink attribute that fails
 *              validation; a restored sequence number at or above
 *              %CBM_SEQ_LIMIT, or a restored timestamp of 0 or in the
 *              future
 * E2BIG        an ioctl struct larger than the kernel knows, whose unknown
 *              tail is not zero; a capacity (creation, resize, auto-resize
 *              bounds) above the ``max_capacity`` module parameter; a
 *              batch of more than %CBM_BATCH_MAX messages
 * EMSGSIZE     a message larger than ``max_msg_size`` or than the
 *              conversation can ever hold, or an unpinned one larger than
 *              the window's byte or token budget; a read buffer smaller
 *              than the next record; a %CBM_IOC_READ_WINDOW buffer smaller
 *              than the window
 * EINTR        a blocking read or write was interrupted by a signal
 * ENOENT       %CBM_IOC_BIND without %CBM_BIND_CREATE, or
 *              %CBM_IOC_UNLINK, of a name that does not exist;
 *              %CBM_IOC_UNPIN of a sequence number that is not pinned
 * ENOMEM       the ring or a pinned copy could not be allocated (memory
 *              or memory cgroup)
 * ENOSPC       creating a conversation beyond ``max_conversations``;
 *              creating, growing or pinning beyond ``max_total_bytes`` or
 *              ``max_user_bytes``; pinning beyond ``max_pinned``
 * ENOTTY       an unknown ioctl
 * EPERM        a configuration change (see "Resizing"), %CBM_IOC_RESTORE
 *              or a netlink set-window or resize by a caller that neither
 *              owns the conversation nor has ``CAP_SYS_ADMIN``; a
 *              writable or executable mmap(), or mmap() by a caller outside
 *              the initial pid or user namespace; joining the netlink
 *              events group without ``CAP_SYS_ADMIN``
 * EPIPE        payload-format read after messages were lost (reported
 *              once); write to an unlinked conversation
 * ESPIPE       pread() or pwrite()
 * ============ ===========================================================
 */

/*
 * Each stored message occupies CBM_RECORD_SPACE(len) bytes of the
 * conversation's capacity: its header and payload, padded to
 * CBM_RECORD_ALIGN bytes.
 */
#define CBM_RECORD_ALIGN	8
#define CBM_RECORD_SPACE(len) \
	((sizeof(struct cbm_record) + (len) + CBM_RECORD_ALIGN - 1) & \
	 ~(__u64)(CBM_RECORD_ALIGN - 1))

/* ioctl type byte, commands 0x40-0x5f (0x00-0x1f belong to another user) */
#define CBM_IOC_MAGIC		0xCB

/* Name of the conversation used by files that are never bound */
#define CBM_DEFAULT_NAME	"default"

/*
 * Bytes in a conversation name including the terminating NUL. A name is 1
 * to CBM_NAME_MAX - 1 characters from [A-Za-z0-9_.-] and does not start
 * with '.' or '-'.
 */
#define CBM_NAME_MAX		64

/**
 * enum cbm_role - who a message is from, as LLM chat APIs count it
 * @CBM_ROLE_OTHER: none of the roles below
 * @CBM_ROLE_SYSTEM: system prompt or instructions
 * @CBM_ROLE_USER: the user; the default role of write()
 * @CBM_ROLE_ASSISTANT: the model
 * @CBM_ROLE_TOOL: a tool's result
 * @__CBM_ROLE_MAX: number of roles; any value at or above it is invalid
 */
enum cbm_role {
	CBM_ROLE_OTHER		= 0,
	CBM_ROLE_SYSTEM		= 1,
	CBM_ROLE_USER		= 2,
	CBM_ROLE_ASSISTANT	= 3,
	CBM_ROLE_TOOL		= 4,
	__CBM_ROLE_MAX,
};

/**
 * enum cbm_record_type - what a struct cbm_record describes
 * @CBM_RECORD_MSG: a message; the payload follows the header
 * @CBM_RECORD_GAP: messages this reader lost to eviction; no payload
 */
enum cbm_record_type {
	CBM_RECORD_MSG		= 1,
	CBM_RECORD_GAP		= 2,
};

/*
 * Message flags. The low 16 bits are defined by the kernel (an undefined
 * one fails with EINVAL); the high 16 bits belong to the application and
 * are stored and returned unchanged.
 *
 * CBM_MSG_PINNED: the window never evicts the message (see "Windows").
 */
#define CBM_MSG_PINNED		0x1U
#define CBM_MSG_KERNEL_MASK	0x0000ffffU
#define CBM_MSG_APP_MASK	0xffff0000U

/**
 * struct cbm_record - header of a record returned by a record-format read
 * @hdr_len: size of this header in bytes; the payload starts at this offset.
 *           Later kernels may append fields, so skip @hdr_len bytes rather
 *           than sizeof(struct cbm_record).
 * @type: an enum cbm_record_type
 * @len: payload length in bytes (0 for %CBM_RECORD_GAP)
 * @seq: %CBM_RECORD_MSG: the message's sequence number, unique and
 *       increasing per conversation, starting at 0, never reused.
 *       %CBM_RECORD_GAP: the first lost sequence number.
 * @ts_ns: CLOCK_REALTIME in nanoseconds when the message was appended
 *         (0 for %CBM_RECORD_GAP)
 * @lost: %CBM_RECORD_GAP: number of messages lost, @seq to @seq + @lost - 1;
 *        0 for %CBM_RECORD_MSG, except in a mapped ring, where it is the
 *        running total of the sequence numbers below @seq that restores
 *        skipped, holes that never held a message (see "Zero-copy
 *        reading")
 * @pid: the sender's thread-group id as seen from the reader's pid
 *       namespace. A reader in the initial pid namespace gets the number
 *       the kernel recorded; a reader in another one gets it translated at
 *       the time of the read, 0 if the sender is not visible there or has
 *       exited (see Documentation/userspace-api.rst)
 * @uid: the sender's effective uid in the reader's user namespace, the
 *       overflow uid if it has no mapping there
 * @flags: message flags: %CBM_MSG_APP_MASK bits as sent, and
 *         %CBM_MSG_PINNED while the message is pinned
 * @tokens: the token count the sender attached (&cbm_send.tokens), 0 if
 *          none; counted against &cbm_window.max_tokens
 * @role: an enum cbm_role
 * @__reserved: zero
 *
 * The kernel sets every field; a writer cannot forge @seq, @ts_ns, @pid or
 * @uid.
 */
struct cbm_record {
	__u16 hdr_len;
	__u16 type;
	__u32 len;
	__aligned_u64 seq;
	__aligned_u64 ts_ns;
	__aligned_u64 lost;
	__u32 pid;
	__u32 uid;
	__u32 flags;
	__u32 tokens;
	__u8 role;
	__u8 __reserved[7];
};

/*
 * Conversation flags (struct cbm_info.flags). CBM_CONV_LOSSLESS may be
 * requested at creation (struct cbm_bind.conv_flags); the others report
 * state.
 */
#define CBM_CONV_LOSSLESS	0x1U
#define CBM_CONV_ANON		0x100U
#define CBM_CONV_UNLINKED	0x200U
#define CBM_CONV_DEFAULT	0x400U

/* struct cbm_bind.flags */
#define CBM_BIND_CREATE		0x1U
#define CBM_BIND_EXCL		0x2U
#define CBM_BIND_ANON		0x4U

/**
 * struct cbm_bind - argument of %CBM_IOC_BIND
 * @size: sizeof(struct cbm_bind)
 * @flags: 0 to attach to an existing named conversation;
 *         %CBM_BIND_CREATE to create it if it does not exist, adding
 *         %CBM_BIND_EXCL to fail with ``EEXIST`` if it does (as O_CREAT and
 *         O_EXCL for mq_open(); %CBM_BIND_EXCL without %CBM_BIND_CREATE is
 *         ``EINVAL``); %CBM_BIND_ANON alone to create an anonymous
 *         conversation (@name must be empty). Nobody can attach to an
 *         anonymous conversation later: it belongs to this one open file
 *         description and its single cursor, shared by whoever shares the
 *         file (fork(), SCM_RIGHTS), and is freed when the file is closed.
 * @mode: permission bits (0777 at most) of a conversation this call
 *        creates; the umask does not apply, and the creating file is bound
 *        whatever the mode, as with mq_open(). Unused when attaching, but
 *        still validated.
 * @conv_flags: %CBM_CONV_LOSSLESS or 0, for a conversation this call
 *              creates; unused when attaching, but still validated
 * @capacity: ring size in bytes for a conversation this call creates; 0
 *            selects the ``default_capacity`` module parameter. Rounded up
 *            to a power of two of at least one page; the rounded size must
 *            not exceed ``max_capacity``. Unused when attaching.
 * @name: NUL-terminated conversation name (see %CBM_NAME_MAX)
 *
 * Names form one namespace for the whole machine. The owner of a new
 * conversation is the caller's filesystem uid and gid (normally its
 * effective ones). Attaching checks read permission if the file was opened for reading and
 * write permission if it was opened for writing.
 */
struct cbm_bind {
	__u32 size;
	__u32 flags;
	__u32 mode;
	__u32 conv_flags;
	__aligned_u64 capacity;
	char name[CBM_NAME_MAX];
};

/**
 * struct cbm_unlink - argument of %CBM_IOC_UNLINK
 * @size: sizeof(struct cbm_unlink)
 * @flags: must be 0
 * @name: NUL-terminated name of the conversation to remove
 *
 * The name disappears at once; files bound to the conversation keep it
 * until they are closed, see ``EPOLLHUP``. Only the owner or a caller with
 * ``CAP_SYS_ADMIN`` may unlink.
 */
struct cbm_unlink {
	__u32 size;
	__u32 flags;
	char name[CBM_NAME_MAX];
};

/**
 * struct cbm_send - argument of %CBM_IOC_SEND
 * @size: sizeof(struct cbm_send)
 * @flags: message flags: %CBM_MSG_APP_MASK bits and %CBM_MSG_PINNED
 * @role: an enum cbm_role
 * @len: payload length in bytes
 * @data: pointer to the payload
 * @seq: out: sequence number given to the message
 * @tokens: the message's token count, as the application's tokenizer
 *          counts it, for &cbm_window.max_tokens; the kernel stores it and
 *          never checks it against the payload
 * @__reserved: must be 0
 *
 * Appends one message with an explicit role, flags and token count. It
 * blocks, fails or evicts exactly as write() does. A pinned message
 * (%CBM_MSG_PINNED) fails with ``ENOSPC`` if it would take the
 * conversation's pinned messages past the ``max_pinned`` module parameter.
 * An unpinned message that alone exceeds &cbm_window.max_bytes or
 * &cbm_window.max_tokens fails with ``EMSGSIZE``: the window could never
 * hold it.
 */
struct cbm_send {
	__u32 size;
	__u32 flags;
	__u32 role;
	__u32 len;
	__aligned_u64 data;
	__aligned_u64 seq;
	__u32 tokens;
	__u32 __reserved;
};

/* struct cbm_fd_config.flags */
#define CBM_FD_RECORDS		0x1U
#define CBM_FD_LOSSY		0x2U

/**
 * struct cbm_fd_config - per-file settings, %CBM_IOC_SET_CONFIG and
 * %CBM_IOC_GET_CONFIG
 * @size: sizeof(struct cbm_fd_config); for %CBM_IOC_GET_CONFIG the kernel
 *        fills that many bytes (zeroing what it does not know) and reads
 *        nothing else
 * @flags: %CBM_FD_RECORDS: read() returns struct cbm_record + payload.
 *         %CBM_FD_LOSSY: this reader does not hold back eviction in a
 *         lossless conversation (it sees gaps instead).
 * @role: role of messages appended with write(), an enum cbm_role;
 *        %CBM_ROLE_USER for a new file
 * @__reserved: must be 0
 *
 * The settings belong to the open file description, not to the
 * conversation, and may be changed at any time, bound or not.
 */
struct cbm_fd_config {
	__u32 size;
	__u32 flags;
	__u32 role;
	__u32 __reserved;
};

/**
 * struct cbm_info - conversation state, %CBM_IOC_INFO
 * @size: in: the size of the caller's struct; the kernel fills that many
 *        bytes (zeroing what it does not know)
 * @flags: CBM_CONV_* flags
 * @capacity: ring size in bytes
 * @used: bytes of the ring in use, headers and padding included
 * @first_seq: sequence number of the oldest stored message
 * @next_seq: sequence number the next message will get; the newest stored
 *            message is @next_seq - 1 when @msgs is not 0
 * @msgs: number of stored messages, pinned ones included
 * @evicted: messages evicted since creation
 * @readers: files bound to the conversation and opened for reading
 * @uid: owner's uid in the caller's user namespace
 * @gid: owner's gid in the caller's user namespace
 * @mode: permission bits
 * @max_msg_size: largest payload a message may have now, the smaller of
 *                the ``max_msg_size`` module parameter and what the
 *                capacity can hold
 * @__reserved: zero
 * @name: the name, empty for an anonymous conversation
 * @expired: messages evicted because they were older than
 *           &cbm_window.max_age_ns (also counted in @evicted)
 * @resizes: capacity changes since creation, by %CBM_IOC_RESIZE or
 *           automatic
 * @pinned: pinned messages (counted in @msgs)
 * @pinned_bytes: CBM_RECORD_SPACE() of the pinned messages, counted
 *                against the ``max_pinned`` module parameter
 * @win_msgs: unpinned messages, as &cbm_window.max_msgs counts them
 * @win_turns: unpinned %CBM_ROLE_USER messages (turns started)
 * @win_bytes: payload bytes of the unpinned messages, as
 *             &cbm_window.max_bytes counts them
 * @win_tokens: token counts of the unpinned messages summed, as
 *              &cbm_window.max_tokens counts them
 * @config_gen: bumped by every change of the window, the auto-resize
 *              settings or the capacity; ``EPOLLPRI`` tells a file it
 *              differs from the value its last %CBM_IOC_INFO returned
 */
struct cbm_info {
	__u32 size;
	__u32 flags;
	__aligned_u64 capacity;
	__aligned_u64 used;
	__aligned_u64 first_seq;
	__aligned_u64 next_seq;
	__aligned_u64 msgs;
	__aligned_u64 evicted;
	__u32 readers;
	__u32 uid;
	__u32 gid;
	__u32 mode;
	__u32 max_msg_size;
	__u32 __reserved;
	char name[CBM_NAME_MAX];
	__aligned_u64 expired;
	__aligned_u64 resizes;
	__aligned_u64 pinned;
	__aligned_u64 pinned_bytes;
	__aligned_u64 win_msgs;
	__aligned_u64 win_turns;
	__aligned_u64 win_bytes;
	__aligned_u64 win_tokens;
	__aligned_u64 config_gen;
};

/* struct cbm_reader_info.flags */
#define CBM_READER_LOSSLESS	0x1U

/**
 * struct cbm_reader_info - this file's reader state, %CBM_IOC_READER_INFO
 * @size: in: the size of the caller's struct; the kernel fills that many
 *        bytes (zeroing what it does not know)
 * @flags: %CBM_READER_LOSSLESS if this file holds back eviction
 * @cursor: sequence number the next read() returns (or the first lost one
 *          while a gap is pending)
 * @lost: messages this file has lost to eviction since it was bound,
 *        including a gap not yet reported by read()
 * @gap: messages lost and not yet reported by read()
 * @unread: stored messages after the cursor
 * @next_len: bytes the next read() in this file's format returns: 0 when
 *            there is nothing to read, when the next message is empty, or,
 *            in payload format, when a gap is pending (read() then fails
 *            with ``EPIPE``); @unread and @gap tell these apart
 * @__reserved: zero
 */
struct cbm_reader_info {
	__u32 size;
	__u32 flags;
	__aligned_u64 cursor;
	__aligned_u64 lost;
	__aligned_u64 gap;
	__aligned_u64 unread;
	__u32 next_len;
	__u32 __reserved;
};

/* struct cbm_window.flags */
#define CBM_WINDOW_TURNS	0x1U

/**
 * struct cbm_window - the conversation's window, %CBM_IOC_SET_WINDOW and
 * %CBM_IOC_GET_WINDOW
 * @size: sizeof(struct cbm_window); for %CBM_IOC_GET_WINDOW the kernel
 *        fills that many bytes (zeroing what it does not know)
 * @flags: %CBM_WINDOW_TURNS: @max_msgs counts turns, not messages
 * @max_msgs: keep at most this many unpinned messages, or with
 *            %CBM_WINDOW_TURNS the messages of the last @max_msgs turns;
 *            0 for no limit
 * @max_bytes: keep unpinned messages whose payloads sum to at most this
 *             many bytes (headers not counted); 0 for no limit
 * @max_tokens: keep unpinned messages whose &cbm_record.tokens sum to at
 *              most this; 0 for no limit
 * @max_age_ns: expire unpinned messages whose &cbm_record.ts_ns is this
 *              many nanoseconds old; 0 for no limit
 *
 * A new conversation has no window (all zero). See "Windows" for the
 * rules; %CBM_IOC_SET_WINDOW applies the new window at once.
 */
struct cbm_window {
	__u32 size;
	__u32 flags;
	__aligned_u64 max_msgs;
	__aligned_u64 max_bytes;
	__aligned_u64 max_tokens;
	__aligned_u64 max_age_ns;
};

/**
 * struct cbm_pin - argument of %CBM_IOC_UNPIN
 * @size: sizeof(struct cbm_pin)
 * @flags: must be 0
 * @seq: sequence number of a pinned message
 *
 * Unpinning returns the message to the window, which may evict it at
 * once (counted in &cbm_info.evicted). A message whose place in the ring
 * has already been reused cannot return to it: it is removed at once and
 * counted in &cbm_info.evicted, and a reader that had not read it yet
 * counts it in &cbm_reader_info.lost (with a gap record if the reader was
 * bound before the message left the ring). ``ENOENT`` if no pinned message
 * has that sequence number.
 */
struct cbm_pin {
	__u32 size;
	__u32 flags;
	__aligned_u64 seq;
};

/**
 * struct cbm_read_window - argument of %CBM_IOC_READ_WINDOW
 * @size: sizeof(struct cbm_read_window)
 * @flags: must be 0
 * @buf: pointer to the destination buffer
 * @len: bytes at @buf
 * @last: 0 for every stored message, or only the newest @last of them
 * @count: out: records copied; on ``EMSGSIZE`` the records that would be
 * @needed: out: bytes the records take (copied, or needed on ``EMSGSIZE``)
 * @first_seq: out: sequence number of the first record, or
 *             &cbm_info.next_seq when there is none
 *
 * Copies the current window (the stored messages, pinned ones included,
 * oldest first) into @buf in one atomic snapshot, each message as a
 * struct cbm_record (translated for the caller as read() does) followed
 * by its payload and zero padding, CBM_RECORD_SPACE(&cbm_record.len)
 * bytes in all. The file's cursor does not move. If @len is smaller than
 * the records, nothing is copied, @count and @needed are written and the
 * call fails with ``EMSGSIZE``.
 */
struct cbm_read_window {
	__u32 size;
	__u32 flags;
	__aligned_u64 buf;
	__aligned_u64 len;
	__aligned_u64 last;
	__aligned_u64 count;
	__aligned_u64 needed;
	__aligned_u64 first_seq;
};

/**
 * enum cbm_seek_whence - how %CBM_IOC_SEEK interprets &cbm_seek.value
 * @CBM_SEEK_SEQ: a sequence number, as lseek() with ``SEEK_SET``
 * @CBM_SEEK_TIME: a CLOCK_REALTIME time in nanoseconds: the cursor moves to
 *                 the first stored message whose &cbm_record.ts_ns is at
 *                 or after it, or after the newest message if none is
 * @CBM_SEEK_LAST: a count N: the cursor moves so that the newest N stored
 *                 messages are left to read (all of them if fewer are
 *                 stored)
 * @__CBM_SEEK_MAX: number of values; any value at or above it is invalid
 */
enum cbm_seek_whence {
	CBM_SEEK_SEQ	= 0,
	CBM_SEEK_TIME	= 1,
	CBM_SEEK_LAST	= 2,
	__CBM_SEEK_MAX,
};

/**
 * struct cbm_seek - argument of %CBM_IOC_SEEK
 * @size: sizeof(struct cbm_seek)
 * @whence: an enum cbm_seek_whence
 * @value: what to seek to
 * @cursor: out: the new cursor, as lseek() returns it
 *
 * Moves this file's cursor as lseek() does (a pending gap is dropped and
 * counted in &cbm_reader_info.lost), by time or count as well as by
 * sequence number.
 */
struct cbm_seek {
	__u32 size;
	__u32 whence;
	__aligned_u64 value;
	__aligned_u64 cursor;
};

/**
 * struct cbm_resize - argument of %CBM_IOC_RESIZE
 * @size: sizeof(struct cbm_resize)
 * @flags: must be 0
 * @capacity: in: the new ring size in bytes, rounded as
 *            &cbm_bind.capacity is (0 selects ``default_capacity``);
 *            out: the rounded size
 * @evicted: out: messages evicted to fit the smaller ring
 *
 * Growing keeps every message. Shrinking below the stored data evicts the
 * oldest messages as a writer would; in a lossless conversation it fails
 * with ``EBUSY``, changing nothing, if that would evict a message a
 * lossless reader has not read. Cursors, sequence numbers and readers'
 * losses are kept across the change. If writing @capacity and @evicted
 * back faults, the call fails with ``EFAULT`` although the resize took
 * place (as %CBM_IOC_SEND does for &cbm_send.seq).
 */
struct cbm_resize {
	__u32 size;
	__u32 flags;
	__aligned_u64 capacity;
	__aligned_u64 evicted;
};

/* struct cbm_autoresize.flags */
#define CBM_AUTORESIZE_ON	0x1U

/**
 * struct cbm_autoresize - automatic resizing, %CBM_IOC_SET_AUTORESIZE and
 * %CBM_IOC_GET_AUTORESIZE
 * @size: sizeof(struct cbm_autoresize); for %CBM_IOC_GET_AUTORESIZE the
 *        kernel fills that many bytes (zeroing what it does not know)
 * @flags: %CBM_AUTORESIZE_ON to enable, 0 to disable (the other fields
 *         are then ignored and returned as 0)
 * @min_capacity: the ring never shrinks below this (rounded up as
 *                &cbm_bind.capacity; 0 is invalid here)
 * @max_capacity: the ring never grows above this (rounded likewise, 0
 *                invalid; at most ``max_capacity``)
 * @high_pct: grow when &cbm_info.used stays at or above this percentage of
 *            the capacity for @period_ms, or at once when a writer would
 *            wait for room; 1 to 100
 * @low_pct: shrink when &cbm_info.used stays at or below this percentage
 *           for @period_ms; less than half of @high_pct, so a shrink never
 *           lands above the high-water mark
 * @period_ms: how long a level must hold, and the least time between two
 *             automatic resizes; 10 to 3600000
 * @__reserved: must be 0
 *
 * Growing doubles the capacity, shrinking halves it, within the bounds.
 * A grow above the ``max_capacity`` module parameter as it is at the time
 * (it may have been lowered since the bounds were set) does not happen.
 */
struct cbm_autoresize {
	__u32 size;
	__u32 flags;
	__aligned_u64 min_capacity;
	__aligned_u64 max_capacity;
	__u32 high_pct;
	__u32 low_pct;
	__u32 period_ms;
	__u32 __reserved;
};

/* struct cbm_map_header.flags */
#define CBM_MAP_UNLINKED	0x1U

/**
 * struct cbm_map_header - the first page of a mapping, written only by the
 * kernel
 * @hdr_size: sizeof(struct cbm_map_header); later kernels may append
 *            fields
 * @flags: %CBM_MAP_UNLINKED once the conversation is unlinked
 * @generation: changes whenever the ring is replaced (a resize); the data
 *              pages of a mapping belong to the generation that
 *              %CBM_IOC_MAP_INFO reported before it was made
 * @capacity: ring size in bytes of the current generation
 * @head: free-running position where the next record will start; store
 *        released after the record is written
 * @tail: free-running position of the oldest record still valid; advanced
 *        before an evicted record's bytes are reused
 *
 * See "Zero-copy reading" for the order in which to read the fields.
 */
struct cbm_map_header {
	__u32 hdr_size;
	__u32 flags;
	__aligned_u64 generation;
	__aligned_u64 capacity;
	__aligned_u64 head;
	__aligned_u64 tail;
};

/**
 * struct cbm_map_info - the mapping layout and a consistent snapshot of
 * the positions, %CBM_IOC_MAP_INFO
 * @size: in: the size of the caller's struct; the kernel fills that many
 *        bytes (zeroing what it does not know)
 * @flags: %CBM_MAP_UNLINKED once the conversation is unlinked
 * @generation: the ring's generation, as &cbm_map_header.generation
 * @capacity: ring size in bytes
 * @header_offset: mmap() offset of struct cbm_map_header (0)
 * @header_size: bytes of the header mapping (one page)
 * @data_offset: offset of the ring's first byte in a full mapping
 * @data_size: bytes of data pages, twice @capacity
 * @map_size: the length of a full mapping, @data_offset + @data_size
 * @head: position after the newest record
 * @tail: position of the oldest record in the ring
 * @first_seq: sequence number of the record at @tail (@next_seq when the
 *             ring is empty)
 * @next_seq: sequence number the record at @head will get
 * @skipped: sequence numbers below @next_seq that restores skipped (holes
 *           that never held a message), the running total that
 *           &cbm_record.lost of every record from @tail to @head carries
 *           in the map
 *
 * The positions, sequence numbers and @skipped are taken together, under
 * the conversation's lock: a reader starts at (@tail, @first_seq) for the
 * oldest message in the ring, or at (@head, @next_seq) for new ones, with
 * @skipped as its hole total either way (see "Zero-copy reading").
 */
struct cbm_map_info {
	__u32 size;
	__u32 flags;
	__aligned_u64 generation;
	__aligned_u64 capacity;
	__aligned_u64 header_offset;
	__aligned_u64 header_size;
	__aligned_u64 data_offset;
	__aligned_u64 data_size;
	__aligned_u64 map_size;
	__aligned_u64 head;
	__aligned_u64 tail;
	__aligned_u64 first_seq;
	__aligned_u64 next_seq;
	__aligned_u64 skipped;
};

/*
 * Restored sequence numbers (&cbm_restore_msg.seq, &cbm_restore.next_seq)
 * are below this: 2^62 more appends cannot take the numbering past 2^63,
 * so it never wraps and every sequence number stays a valid lseek()
 * offset (a positive loff_t).
 */
#define CBM_SEQ_LIMIT		_BITULL(62)

/* Most messages in one %CBM_IOC_SEND_BATCH, as UIO_MAXIOV for iovecs */
#define CBM_BATCH_MAX		1024

/**
 * struct cbm_batch_msg - one message of %CBM_IOC_SEND_BATCH
 * @flags: message flags, as &cbm_send.flags
 * @role: an enum cbm_role
 * @len: payload length in bytes
 * @tokens: token count, as &cbm_send.tokens
 * @data: pointer to the payload
 */
struct cbm_batch_msg {
	__u32 flags;
	__u32 role;
	__u32 len;
	__u32 tokens;
	__aligned_u64 data;
};

/**
 * struct cbm_send_batch - argument of %CBM_IOC_SEND_BATCH
 * @size: sizeof(struct cbm_send_batch)
 * @flags: must be 0
 * @msgs: pointer to @count descriptors, @msg_size bytes apart
 * @count: number of descriptors, 0 to %CBM_BATCH_MAX (``E2BIG`` above)
 * @msg_size: sizeof(struct cbm_batch_msg) as the caller knows it: at
 *            least the first published version (``EINVAL``), at most a
 *            page, and a larger descriptor's unknown tail must be zero
 *            (``E2BIG`` for either)
 * @first_seq: out: sequence number of the first appended message; the
 *             others follow it without a hole
 *
 * See "Batched appends". The ioctl returns the number of messages
 * appended (0 for an empty batch), or -1 with errno set if none was. If
 * @first_seq cannot be written back, the count is still returned (the
 * messages are stored; failing would have them appended twice) and
 * @first_seq is lost, as sendmmsg() loses an error after a partial send.
 */
struct cbm_send_batch {
	__u32 size;
	__u32 flags;
	__aligned_u64 msgs;
	__u32 count;
	__u32 msg_size;
	__aligned_u64 first_seq;
};

/**
 * struct cbm_restore_msg - one message of %CBM_IOC_RESTORE
 * @flags: message flags, as &cbm_send.flags
 * @role: an enum cbm_role
 * @len: payload length in bytes
 * @tokens: token count, as &cbm_send.tokens
 * @data: pointer to the payload
 * @seq: the message's sequence number, below %CBM_SEQ_LIMIT
 * @ts_ns: the message's timestamp, CLOCK_REALTIME in nanoseconds, not 0
 *         and not in the future
 */
struct cbm_restore_msg {
	__u32 flags;
	__u32 role;
	__u32 len;
	__u32 tokens;
	__aligned_u64 data;
	__aligned_u64 seq;
	__aligned_u64 ts_ns;
};

/**
 * struct cbm_restore - argument of %CBM_IOC_RESTORE
 * @size: sizeof(struct cbm_restore)
 * @flags: must be 0
 * @msgs: pointer to @count descriptors, @msg_size bytes apart
 * @count: number of descriptors, 0 to %CBM_BATCH_MAX (``E2BIG`` above)
 * @msg_size: sizeof(struct cbm_restore_msg) as the caller knows it, with
 *            the rules of &cbm_send_batch.msg_size
 * @next_seq: 0, or the sequence number the next appended message gets,
 *            above every restored one: a saved conversation whose newest
 *            messages were evicted continues its numbering. Applied after
 *            the last message, only if every message was restored; it
 *            must be at least the last restored sequence number plus one
 *            (with @count 0, at least &cbm_info.next_seq), and above that
 *            only after pinned messages, as any hole; and below
 *            %CBM_SEQ_LIMIT (``EINVAL`` for either). Equal to it changes
 *            nothing.
 *
 * See "Restoring a saved conversation". The whole call is checked first
 * and fails with nothing restored, as %CBM_IOC_SEND_BATCH; then the
 * messages are appended under one lock hold. The ioctl returns the number
 * of messages restored; if that is less than @count, @next_seq was not
 * applied.
 */
struct cbm_restore {
	__u32 size;
	__u32 flags;
	__aligned_u64 msgs;
	__u32 count;
	__u32 msg_size;
	__aligned_u64 next_seq;
};

/* Generic netlink family name, version and multicast group */
#define CBM_GENL_NAME		"cbm"
#define CBM_GENL_VERSION	1
#define CBM_GENL_MCGRP_EVENTS	"events"

/* Least time between two eviction events of one conversation */
#define CBM_NL_EVICT_INTERVAL_MS	100

/**
 * enum cbm_nl_cmd - generic netlink commands, see "Generic netlink"
 * @CBM_NL_CMD_UNSPEC: invalid
 * @CBM_NL_CMD_CONV_GET: get one conversation, or dump all
 * @CBM_NL_CMD_CONV_UNLINK: unlink a conversation
 * @CBM_NL_CMD_CONV_SET_WINDOW: set a conversation's window
 * @CBM_NL_CMD_CONV_RESIZE: resize a conversation
 * @CBM_NL_CMD_EVENT: an event, multicast to %CBM_GENL_MCGRP_EVENTS
 * @__CBM_NL_CMD_MAX: number of commands
 */
enum cbm_nl_cmd {
	CBM_NL_CMD_UNSPEC,
	CBM_NL_CMD_CONV_GET,
	CBM_NL_CMD_CONV_UNLINK,
	CBM_NL_CMD_CONV_SET_WINDOW,
	CBM_NL_CMD_CONV_RESIZE,
	CBM_NL_CMD_EVENT,
	__CBM_NL_CMD_MAX,
};

#define CBM_NL_CMD_MAX		(__CBM_NL_CMD_MAX - 1)

/**
 * enum cbm_nl_event - what a %CBM_NL_CMD_EVENT reports
 * @CBM_NL_EVENT_CREATED: a named conversation was created; the event
 *                        carries its state as %CBM_NL_CMD_CONV_GET does
 * @CBM_NL_EVENT_RESIZED: the capacity changed (%CBM_NL_A_CAPACITY, and
 *                        %CBM_NL_A_RESIZES), by request or automatically
 * @CBM_NL_EVENT_WINDOW: the window changed (nested %CBM_NL_A_WINDOW)
 * @CBM_NL_EVENT_UNLINKED: the name was removed
 * @CBM_NL_EVENT_EVICTED: messages were evicted (%CBM_NL_A_EVENT_COUNT
 *                        since the previous eviction event, and
 *                        %CBM_NL_A_EVICTED in all); rate limited
 * @__CBM_NL_EVENT_MAX: number of events
 */
enum cbm_nl_event {
	CBM_NL_EVENT_CREATED = 1,
	CBM_NL_EVENT_RESIZED,
	CBM_NL_EVENT_WINDOW,
	CBM_NL_EVENT_UNLINKED,
	CBM_NL_EVENT_EVICTED,
	__CBM_NL_EVENT_MAX,
};

/**
 * enum cbm_nl_attr - attributes of a conversation (attribute set ``conv``)
 * @CBM_NL_A_UNSPEC: invalid
 * @CBM_NL_A_PAD: padding for 64-bit attributes
 * @CBM_NL_A_NAME: string, the conversation's name (see %CBM_NAME_MAX)
 * @CBM_NL_A_FLAGS: u32, CBM_CONV_* flags
 * @CBM_NL_A_UID: u32, owner's uid
 * @CBM_NL_A_GID: u32, owner's gid
 * @CBM_NL_A_MODE: u32, permission bits
 * @CBM_NL_A_CAPACITY: u64, ring size in bytes
 * @CBM_NL_A_USED: u64, bytes of the ring in use
 * @CBM_NL_A_MSGS: u64, stored messages, pinned ones included
 * @CBM_NL_A_FIRST_SEQ: u64, sequence number of the oldest stored message
 * @CBM_NL_A_NEXT_SEQ: u64, sequence number of the next message
 * @CBM_NL_A_APPENDED: u64, messages appended or restored since creation
 * @CBM_NL_A_EVICTED: u64, as &cbm_info.evicted
 * @CBM_NL_A_EXPIRED: u64, as &cbm_info.expired
 * @CBM_NL_A_LOST: u64, messages lost by readers, summed over every reader
 *                 the conversation has had
 * @CBM_NL_A_READERS: u32, attached readers
 * @CBM_NL_A_RESIZES: u64, as &cbm_info.resizes
 * @CBM_NL_A_PINNED: u64, pinned messages
 * @CBM_NL_A_PINNED_BYTES: u64, as &cbm_info.pinned_bytes
 * @CBM_NL_A_MAX_MSG_SIZE: u32, as &cbm_info.max_msg_size
 * @CBM_NL_A_WINDOW: nested ``window`` attributes (enum cbm_nl_window_attr)
 * @CBM_NL_A_AUTORESIZE: nested ``autoresize`` attributes (enum
 *                       cbm_nl_autoresize_attr)
 * @CBM_NL_A_READER: nested ``reader`` attributes (enum
 *                   cbm_nl_reader_attr), one per reader
 * @CBM_NL_A_READERS_TRUNCATED: flag, not every reader is reported
 * @CBM_NL_A_EVENT: u32, an enum cbm_nl_event
 * @CBM_NL_A_EVENT_COUNT: u64, messages evicted since the previous
 *                        %CBM_NL_EVENT_EVICTED of the conversation
 * @CBM_NL_A_RESTRICTED: flag, the caller may not read the conversation:
 *                       only the name, flags, owner, group, mode and
 *                       capacity are reported
 * @__CBM_NL_A_MAX: number of attributes
 */
enum cbm_nl_attr {
	CBM_NL_A_UNSPEC,
	CBM_NL_A_PAD,
	CBM_NL_A_NAME,
	CBM_NL_A_FLAGS,
	CBM_NL_A_UID,
	CBM_NL_A_GID,
	CBM_NL_A_MODE,
	CBM_NL_A_CAPACITY,
	CBM_NL_A_USED,
	CBM_NL_A_MSGS,
	CBM_NL_A_FIRST_SEQ,
	CBM_NL_A_NEXT_SEQ,
	CBM_NL_A_APPENDED,
	CBM_NL_A_EVICTED,
	CBM_NL_A_EXPIRED,
	CBM_NL_A_LOST,
	CBM_NL_A_READERS,
	CBM_NL_A_RESIZES,
	CBM_NL_A_PINNED,
	CBM_NL_A_PINNED_BYTES,
	CBM_NL_A_MAX_MSG_SIZE,
	CBM_NL_A_WINDOW,
	CBM_NL_A_AUTORESIZE,
	CBM_NL_A_READER,
	CBM_NL_A_READERS_TRUNCATED,
	CBM_NL_A_EVENT,
	CBM_NL_A_EVENT_COUNT,
	CBM_NL_A_RESTRICTED,
	__CBM_NL_A_MAX,
};

#define CBM_NL_A_MAX		(__CBM_NL_A_MAX - 1)

/**
 * enum cbm_nl_window_attr - attributes of a window (set ``window``), as
 * the fields of struct cbm_window
 * @CBM_NL_WINDOW_A_UNSPEC: invalid
 * @CBM_NL_WINDOW_A_PAD: padding for 64-bit attributes
 * @CBM_NL_WINDOW_A_FLAGS: u32, CBM_WINDOW_* flags
 * @CBM_NL_WINDOW_A_MAX_MSGS: u64
 * @CBM_NL_WINDOW_A_MAX_BYTES: u64
 * @CBM_NL_WINDOW_A_MAX_TOKENS: u64
 * @CBM_NL_WINDOW_A_MAX_AGE_NS: u64
 * @__CBM_NL_WINDOW_A_MAX: number of attributes
 */
enum cbm_nl_window_attr {
	CBM_NL_WINDOW_A_UNSPEC,
	CBM_NL_WINDOW_A_PAD,
	CBM_NL_WINDOW_A_FLAGS,
	CBM_NL_WINDOW_A_MAX_MSGS,
	CBM_NL_WINDOW_A_MAX_BYTES,
	CBM_NL_WINDOW_A_MAX_TOKENS,
	CBM_NL_WINDOW_A_MAX_AGE_NS,
	__CBM_NL_WINDOW_A_MAX,
};

#define CBM_NL_WINDOW_A_MAX	(__CBM_NL_WINDOW_A_MAX - 1)

/**
 * enum cbm_nl_autoresize_attr - attributes of the auto-resize settings
 * (set ``autoresize``), as the fields of struct cbm_autoresize
 * @CBM_NL_AUTORESIZE_A_UNSPEC: invalid
 * @CBM_NL_AUTORESIZE_A_PAD: padding for 64-bit attributes
 * @CBM_NL_AUTORESIZE_A_FLAGS: u32, CBM_AUTORESIZE_* flags
 * @CBM_NL_AUTORESIZE_A_MIN_CAPACITY: u64
 * @CBM_NL_AUTORESIZE_A_MAX_CAPACITY: u64
 * @CBM_NL_AUTORESIZE_A_HIGH_PCT: u32
 * @CBM_NL_AUTORESIZE_A_LOW_PCT: u32
 * @CBM_NL_AUTORESIZE_A_PERIOD_MS: u32
 * @__CBM_NL_AUTORESIZE_A_MAX: number of attributes
 */
enum cbm_nl_autoresize_attr {
	CBM_NL_AUTORESIZE_A_UNSPEC,
	CBM_NL_AUTORESIZE_A_PAD,
	CBM_NL_AUTORESIZE_A_FLAGS,
	CBM_NL_AUTORESIZE_A_MIN_CAPACITY,
	CBM_NL_AUTORESIZE_A_MAX_CAPACITY,
	CBM_NL_AUTORESIZE_A_HIGH_PCT,
	CBM_NL_AUTORESIZE_A_LOW_PCT,
	CBM_NL_AUTORESIZE_A_PERIOD_MS,
	__CBM_NL_AUTORESIZE_A_MAX,
};

#define CBM_NL_AUTORESIZE_A_MAX	(__CBM_NL_AUTORESIZE_A_MAX - 1)

/**
 * enum cbm_nl_reader_attr - attributes of one reader (set ``reader``)
 * @CBM_NL_READER_A_UNSPEC: invalid
 * @CBM_NL_READER_A_PAD: padding for 64-bit attributes
 * @CBM_NL_READER_A_PID: u32, thread-group id of the task that bound the
 *                       reader, in the caller's pid namespace (0 if not
 *                       visible there)
 * @CBM_NL_READER_A_FLAGS: u32, %CBM_READER_LOSSLESS
 * @CBM_NL_READER_A_CURSOR: u64, as &cbm_reader_info.cursor
 * @CBM_NL_READER_A_LAG: u64, %CBM_NL_A_NEXT_SEQ minus the cursor: the
 *                       sequence numbers the reader has yet to pass,
 *                       messages it will read or be told it lost (and
 *                       numbers a restore skipped)
 * @CBM_NL_READER_A_LOST: u64, as &cbm_reader_info.lost
 * @__CBM_NL_READER_A_MAX: number of attributes
 */
enum cbm_nl_reader_attr {
	CBM_NL_READER_A_UNSPEC,
	CBM_NL_READER_A_PAD,
	CBM_NL_READER_A_PID,
	CBM_NL_READER_A_FLAGS,
	CBM_NL_READER_A_CURSOR,
	CBM_NL_READER_A_LAG,
	CBM_NL_READER_A_LOST,
	__CBM_NL_READER_A_MAX,
};

#define CBM_NL_READER_A_MAX	(__CBM_NL_READER_A_MAX - 1)

/*
 * Every argument starts with its own size (the kernel accepts older,
 * shorter versions and newer, longer ones whose unknown tail is zero), so
 * the command numbers do not encode a size.
 */
enum {
	CBM_CMD_BIND = 0x40,
	CBM_CMD_UNLINK,
	CBM_CMD_SEND,
	CBM_CMD_SET_CONFIG,
	CBM_CMD_GET_CONFIG,
	CBM_CMD_INFO,
	CBM_CMD_READER_INFO,
	CBM_CMD_SET_WINDOW,
	CBM_CMD_GET_WINDOW,
	CBM_CMD_UNPIN,
	CBM_CMD_READ_WINDOW,
	CBM_CMD_SEEK,
	CBM_CMD_RESIZE,
	CBM_CMD_SET_AUTORESIZE,
	CBM_CMD_GET_AUTORESIZE,
	CBM_CMD_MAP_INFO,
	CBM_CMD_SEND_BATCH,
	CBM_CMD_RESTORE,
};

#define CBM_IOC_BIND		_IO(CBM_IOC_MAGIC, CBM_CMD_BIND)
#define CBM_IOC_UNLINK		_IO(CBM_IOC_MAGIC, CBM_CMD_UNLINK)
#define CBM_IOC_SEND		_IO(CBM_IOC_MAGIC, CBM_CMD_SEND)
#define CBM_IOC_SET_CONFIG	_IO(CBM_IOC_MAGIC, CBM_CMD_SET_CONFIG)
#define CBM_IOC_GET_CONFIG	_IO(CBM_IOC_MAGIC, CBM_CMD_GET_CONFIG)
#define CBM_IOC_INFO		_IO(CBM_IOC_MAGIC, CBM_CMD_INFO)
#define CBM_IOC_READER_INFO	_IO(CBM_IOC_MAGIC, CBM_CMD_READER_INFO)
#define CBM_IOC_SET_WINDOW	_IO(CBM_IOC_MAGIC, CBM_CMD_SET_WINDOW)
#define CBM_IOC_GET_WINDOW	_IO(CBM_IOC_MAGIC, CBM_CMD_GET_WINDOW)
#define CBM_IOC_UNPIN		_IO(CBM_IOC_MAGIC, CBM_CMD_UNPIN)
#define CBM_IOC_READ_WINDOW	_IO(CBM_IOC_MAGIC, CBM_CMD_READ_WINDOW)
#define CBM_IOC_SEEK		_IO(CBM_IOC_MAGIC, CBM_CMD_SEEK)
#define CBM_IOC_RESIZE		_IO(CBM_IOC_MAGIC, CBM_CMD_RESIZE)
#define CBM_IOC_SET_AUTORESIZE	_IO(CBM_IOC_MAGIC, CBM_CMD_SET_AUTORESIZE)
#define CBM_IOC_GET_AUTORESIZE	_IO(CBM_IOC_MAGIC, CBM_CMD_GET_AUTORESIZE)
#define CBM_IOC_MAP_INFO	_IO(CBM_IOC_MAGIC, CBM_CMD_MAP_INFO)
#define CBM_IOC_SEND_BATCH	_IO(CBM_IOC_MAGIC, CBM_CMD_SEND_BATCH)
#define CBM_IOC_RESTORE		_IO(CBM_IOC_MAGIC, CBM_CMD_RESTORE)

#endif /* _UAPI_LINUX_CBM_H */
