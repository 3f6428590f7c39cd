/*-------------------------------------------------------------------------
 *
 * ring.c
 *	  The router-to-worker queue: a single-producer, single-consumer byte
 *	  ring in the main shared memory segment.  An item is an RtsQueueItem
 *	  followed by its batch, padded to 8 bytes.  The writer copies a whole
 *	  item before it publishes the new write position, so the reader never
 *	  sees a partial item, and a reader that restarts resumes at an item
 *	  boundary.  Waiting (on latches) is the callers' business.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "rtstream.h"

#define RTS_ITEM_ALIGN(len)	TYPEALIGN(8, (len))

static void
ring_copy_in(RtsRing *ring, uint64 pos, const char *src, Size len)
{
	char	   *data = rts_ring_data(ring);
	Size		off = pos % ring->size;
	Size		first = Min(len, ring->size - off);

	memcpy(data + off, src, first);
	if (first < len)
		memcpy(data, src + first, len - first);
}

static void
ring_copy_out(RtsRing *ring, uint64 pos, char *dst, Size len)
{
	char	   *data = rts_ring_data(ring);
	Size		off = pos % ring->size;
	Size		first = Min(len, ring->size - off);

	memcpy(dst, data + off, first);
	if (first < len)
		memcpy(dst + first, data, len - first);
}

/*
 * Append an item; false if there is not room for it now.  An item larger
 * than the whole ring is an error (capture keeps batches far smaller).
 */
bool
rts_ring_put(RtsRing *ring, const RtsQueueItem *item, const char *batch)
{
	uint64		wpos = pg_atomic_read_u64(&ring->write_pos);
	uint64		rpos = pg_atomic_read_u64(&ring->read_pos);
	Size		need = sizeof(RtsQueueItem) + RTS_ITEM_ALIGN(item->len);

	if (need > ring->size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rtstream batch of %u bytes does not fit in a worker queue of %llu bytes",
						item->len, (unsigned long long) ring->size),
				 errhint("Increase rtstream.queue_size.")));
	if (ring->size - (wpos - rpos) < need)
		return false;

	/* the reader must be done with the space before we overwrite it */
	pg_memory_barrier();
	ring_copy_in(ring, wpos, (const char *) item, sizeof(RtsQueueItem));
	ring_copy_in(ring, wpos + sizeof(RtsQueueItem), batch, item->len);
	pg_write_barrier();
	pg_atomic_write_u64(&ring->write_pos, wpos + need);
	return true;
}

/*
 * Look at the next item; false if the ring is empty.  *batch points into
 * the ring when the batch is contiguous there, else to a copy in *buf
 * (grown as needed).  The item stays in the ring until rts_ring_advance(),
 * with *next_pos, the read position after it.
 */
bool
rts_ring_get(RtsRing *ring, RtsQueueItem *item, char **batch, char **buf,
			 Size *bufsize, uint64 *next_pos)
{
	uint64		rpos = pg_atomic_read_u64(&ring->read_pos);
	uint64		wpos = pg_atomic_read_u64(&ring->write_pos);
	Size		off;

	if (wpos == rpos)
		return false;
	pg_read_barrier();
	ring_copy_out(ring, rpos, (char *) item, sizeof(RtsQueueItem));
	*next_pos = rpos + sizeof(RtsQueueItem) + RTS_ITEM_ALIGN(item->len);
	off = (rpos + sizeof(RtsQueueItem)) % ring->size;
	if (off + item->len <= ring->size)
	{
		*batch = rts_ring_data(ring) + off;
		return true;
	}
	if (*bufsize < item->len || *buf == NULL)
	{
		Size		newsize = Max(item->len, 8192);

		/* the buffer outlives the caller's transactions */
		*buf = *buf ? repalloc(*buf, newsize) :
			MemoryContextAlloc(TopMemoryContext, newsize);
		*bufsize = newsize;
	}
	ring_copy_out(ring, rpos + sizeof(RtsQueueItem), *buf, item->len);
	*batch = *buf;
	return true;
}

/* Give the space of the items up to next_pos back to the writer. */
void
rts_ring_advance(RtsRing *ring, uint64 next_pos)
{
	pg_memory_barrier();
	pg_atomic_write_u64(&ring->read_pos, next_pos);
}
