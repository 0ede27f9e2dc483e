//! The ring of preallocated buffers between the source thread and the writer.
//!
//! Buffers circulate: the source takes a free one, copies whole encoded records into it, and
//! sends it to the writer; the writer hands it back once its bytes are on the file. A record
//! never straddles two buffers, so every buffer boundary is a record boundary (which is what
//! lets a failed write be cut back to a whole trace).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use blake3::hazmat::ChainingValue;
use lander_trace::align;

/// Bytes per leaf of a trace file's digest tree: the unit in which the source can take part
/// of the writer's hashing (`lander_spool::digest`).
pub const DIGEST_LEAF: u64 = 64 << 10;

/// The page size buffers are placed by (see [`Buffer::begin_at`]).
pub const PAGE: usize = 4096;

/// What one buffer holds, for the manifest of the file it belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferMeta {
    /// Records in the buffer.
    pub packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Bytes on the wire.
    pub wire_bytes: u64,
    /// Timestamp of the first record.
    pub first_ts_ns: Option<u64>,
    /// Timestamp of the last record.
    pub last_ts_ns: Option<u64>,
    /// Losses the source reported before these records (ERF `lctr`).
    pub source_drops: u64,
}

impl BufferMeta {
    /// Notes one record.
    #[inline]
    pub fn add(&mut self, ts_ns: u64, caplen: usize, wire_len: u32, drops: u32) {
        self.packets += 1;
        self.bytes += caplen as u64;
        self.wire_bytes += u64::from(wire_len);
        if self.first_ts_ns.is_none() {
            self.first_ts_ns = Some(ts_ns);
        }
        self.last_ts_ns = Some(ts_ns);
        self.source_drops += u64::from(drops);
    }

    /// Adds the counts of a later buffer.
    pub fn merge(&mut self, later: &BufferMeta) {
        self.packets += later.packets;
        self.bytes += later.bytes;
        self.wire_bytes += later.wire_bytes;
        self.first_ts_ns = self.first_ts_ns.or(later.first_ts_ns);
        self.last_ts_ns = later.last_ts_ns.or(self.last_ts_ns);
        self.source_drops += later.source_drops;
    }
}

/// One large buffer of encoded records.
#[derive(Debug)]
pub struct Buffer {
    data: memmap2::MmapMut,
    /// Where the bytes start: less than a page in, so that the buffer's address agrees with
    /// the file offset the bytes go to within a page (see [`Buffer::begin_at`]).
    start: usize,
    /// Where they end.
    len: usize,
    /// Counts of the records in the buffer.
    pub meta: BufferMeta,
    /// Digest leaves of the filled part already hashed by the source (see [`Buffer::lend_leaves`]).
    pub leaves: Vec<ChainingValue>,
    /// The file offset the first of `leaves` starts at (the writer uses them only if its
    /// own count of the file's bytes puts the first leaf there).
    pub leaves_from: u64,
    /// The source goes on with the same file in the next buffer at once (this one was full):
    /// a writer that writes whole pages may keep this buffer's last partial page back until
    /// the next one comes (see `writer::direct`).
    pub continued: bool,
}

impl Buffer {
    /// A buffer of `capacity` bytes: its own anonymous mapping (in huge pages where the kernel
    /// allows and the buffer is big enough to hold one), every page touched now.
    pub fn new(capacity: usize) -> std::io::Result<Buffer> {
        Buffer::with_prefault(capacity, true)
    }

    /// As [`Buffer::new`]; without `prefault` pages are touched when first filled.
    pub fn with_prefault(capacity: usize, prefault: bool) -> std::io::Result<Buffer> {
        let mut data = memmap2::MmapMut::map_anon(capacity.max(1))?;
        // Only a hint: without huge pages the buffer works the same, with more page faults.
        let _ = data.advise(memmap2::Advice::HugePage);
        if prefault {
            for page in data.chunks_mut(4096) {
                page[0] = 0;
            }
        }
        Ok(Buffer {
            leaves: Vec::with_capacity(capacity / DIGEST_LEAF as usize + 1),
            data,
            start: 0,
            len: 0,
            meta: BufferMeta::default(),
            leaves_from: 0,
            continued: false,
        })
    }

    /// Places the bytes of this empty buffer for file offset `offset`, at the same place
    /// within a page: the room before them is then exactly the file's bytes from the page's
    /// start, which a writer of whole pages puts there (see [`Buffer::prepend`]). Where that
    /// would leave less than `keep` bytes free, at the same place within a cache line, or
    /// else at the start. Either way but the last, a copy into the page cache is in step
    /// (see [`lander_trace::align`]: the kernel's copy to the file runs at half speed when
    /// the file offset lies 1 to 31 bytes past the buffer's address within a page).
    pub fn begin_at(&mut self, offset: u64, keep: usize) {
        debug_assert!(self.is_empty());
        debug_assert_eq!(
            self.data.as_ptr() as usize % PAGE,
            0,
            "mappings start on a page"
        );
        let page = (offset % PAGE as u64) as usize;
        let line = (offset % align::COPY_ALIGN as u64) as usize;
        let fits = |start: usize| {
            start
                .checked_add(keep)
                .is_some_and(|end| end <= self.data.len())
        };
        self.start = [page, line].into_iter().find(|&s| fits(s)).unwrap_or(0);
        self.len = self.start;
    }

    /// Bytes of room before the filled part.
    pub fn lead(&self) -> usize {
        self.start
    }

    /// Fills the room before the filled part with `front`, which must be as long as the room
    /// (see [`Buffer::lead`]); the filled part then starts at the buffer's first byte.
    pub fn prepend(&mut self, front: &[u8]) {
        assert_eq!(front.len(), self.start, "the room before is filled exactly");
        self.data[..self.start].copy_from_slice(front);
        self.start = 0;
    }

    /// Keeps the first `keep` filled bytes and appends the rest to `rest`.
    pub fn split_off_into(&mut self, keep: usize, rest: &mut Vec<u8>) {
        assert!(keep <= self.len(), "cannot keep more than is filled");
        let at = self.start + keep;
        rest.extend_from_slice(&self.data[at..self.len]);
        self.len = at;
    }

    /// Bytes still free.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.data.len() - self.len
    }

    /// Total size.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// The free part, to encode into; follow with [`Buffer::advance`].
    #[inline]
    pub fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.len..]
    }

    /// Marks `n` more bytes as filled.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.remaining());
        self.len += n;
    }

    /// Appends bytes that fit (file headers).
    pub fn push(&mut self, bytes: &[u8]) {
        self.data[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// The filled part.
    #[inline]
    pub fn filled(&self) -> &[u8] {
        &self.data[self.start..self.len]
    }

    /// Bytes filled.
    #[inline]
    pub fn len(&self) -> usize {
        self.len - self.start
    }

    /// Whether nothing is filled.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == self.start
    }

    /// Empties the buffer for reuse.
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
        self.meta = BufferMeta::default();
        self.leaves.clear();
        self.leaves_from = 0;
        self.continued = false;
    }

    /// Hashes the last half of the whole digest leaves in the filled part, which starts at
    /// byte `file_offset` of its file, so the writer has that much less to hash. The file's
    /// first leaf is never among them (it is the root of a file of one leaf).
    pub fn lend_leaves(&mut self, file_offset: u64) {
        let end = file_offset + self.len() as u64;
        let first = file_offset.div_ceil(DIGEST_LEAF).max(1) * DIGEST_LEAF;
        let whole = end.saturating_sub(first) / DIGEST_LEAF;
        let lend = whole / 2;
        let mut at = first + (whole - lend) * DIGEST_LEAF;
        self.leaves.clear();
        self.leaves_from = at;
        for _ in 0..lend {
            let from = (at - file_offset) as usize;
            let bytes = &self.filled()[from..from + DIGEST_LEAF as usize];
            self.leaves.push(lander_spool::digest::leaf(at, bytes));
            at += DIGEST_LEAF;
        }
    }
}

/// The return path of the ring: where written buffers go back to, and where the source takes
/// free ones from.
///
/// Last in, first out: the buffer handed back most recently (still warm in the caches) is the
/// next one filled, and buffers a fast writer never lets pile up are never touched at all.
#[derive(Debug, Clone)]
pub struct FreeBuffers {
    inner: Arc<FreeList>,
}

#[derive(Debug)]
struct FreeList {
    stack: Mutex<Vec<Buffer>>,
    returned: Condvar,
    /// Buffers in the ring, free or not.
    total: usize,
}

impl FreeBuffers {
    /// `count` buffers of `size` bytes each, mapped now; the `prefault` taken first have every
    /// page touched now too (a live source's steady state cycles through a few buffers, and
    /// its hot path should take no page fault). The others are touched when first filled: a
    /// burst that reaches them waits for the kernel to zero their pages once, while the
    /// kernel's own ring holds the packets. Touching the whole ring at start cost a capture
    /// that saw little traffic more CPU time than its packets.
    pub fn allocate(count: usize, size: usize, prefault: usize) -> std::io::Result<FreeBuffers> {
        let mut stack = Vec::with_capacity(count);
        for i in 0..count {
            // the stack is taken from its end
            let touch = i + prefault >= count;
            stack.push(Buffer::with_prefault(size, touch)?);
        }
        Ok(FreeBuffers {
            inner: Arc::new(FreeList {
                stack: Mutex::new(stack),
                returned: Condvar::new(),
                total: count,
            }),
        })
    }

    fn stack(&self) -> MutexGuard<'_, Vec<Buffer>> {
        // A panic while the lock is held cannot leave the stack inconsistent (push and pop
        // only), so a poisoned lock is used as it is.
        self.inner
            .stack
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a written buffer back.
    pub fn put(&self, mut buf: Buffer) {
        buf.clear();
        self.stack().push(buf);
        self.inner.returned.notify_one();
    }

    /// Takes a free buffer without waiting (live sources).
    pub fn try_take(&self) -> Option<Buffer> {
        self.stack().pop()
    }

    /// Takes a free buffer, waiting for the writer to hand one back (file sources).
    pub fn take(&self) -> Option<Buffer> {
        let mut stack = self.stack();
        loop {
            if let Some(b) = stack.pop() {
                return Some(b);
            }
            stack = self
                .inner
                .returned
                .wait(stack)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Takes a free buffer, waiting at most `wait`.
    pub fn take_timeout(&self, wait: std::time::Duration) -> Option<Buffer> {
        let deadline = std::time::Instant::now() + wait;
        let mut stack = self.stack();
        loop {
            if let Some(b) = stack.pop() {
                return Some(b);
            }
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            stack = self
                .inner
                .returned
                .wait_timeout(stack, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Buffers free right now.
    pub fn available(&self) -> usize {
        self.stack().len()
    }

    /// Whether at least half the ring is free: the writer keeps up.
    pub fn half_free(&self) -> bool {
        self.available() * 2 >= self.inner.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_circulate_without_new_allocation() {
        let free = FreeBuffers::allocate(2, 64, 2).unwrap();
        let mut a = free.take().unwrap();
        let b = free.take().unwrap();
        assert!(free.try_take().is_none(), "only two buffers exist");
        a.push(b"hdr");
        a.spare_mut()[..2].copy_from_slice(b"xy");
        a.advance(2);
        assert_eq!(a.filled(), b"hdrxy");
        assert_eq!(a.remaining(), 59);
        free.put(a);
        let again = free.try_take().unwrap();
        assert!(again.is_empty(), "a returned buffer comes back empty");
        free.put(again);
        free.put(b);
        assert_eq!(free.available(), 2);
    }

    /// Bytes of the buffer's mapping in memory (pages marked present in
    /// `/proc/self/pagemap`).
    fn resident_bytes(buf: &Buffer) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        let first = buf.data.as_ptr() as u64 / 4096;
        let pages = buf.data.len().div_ceil(4096);
        let mut map = std::fs::File::open("/proc/self/pagemap").unwrap();
        map.seek(SeekFrom::Start(first * 8)).unwrap();
        let mut entries = vec![0u8; pages * 8];
        map.read_exact(&mut entries).unwrap();
        let present = entries
            .chunks_exact(8)
            .filter(|e| u64::from_le_bytes((*e).try_into().unwrap()) >> 63 == 1)
            .count();
        present * 4096
    }

    #[test]
    fn only_the_buffers_taken_first_are_touched_up_front() {
        // Neighbouring mappings may be merged by the kernel and faulted in huge pages, so a
        // touched buffer can bring in a little of the untouched ones: at most the four huge
        // pages two touched buffers of 256 KiB can reach, far less than all of them.
        let size = 256 << 10;
        let free = FreeBuffers::allocate(60, size, 2).unwrap();
        let taken: Vec<Buffer> = (0..60).map(|_| free.try_take().unwrap()).collect();
        let resident: Vec<usize> = taken.iter().map(resident_bytes).collect();
        assert_eq!(resident[..2], [size; 2], "{resident:?}");
        let untouched: usize = resident[2..].iter().sum();
        assert!(untouched <= 4 * (2 << 20), "{untouched} of {}", 58 * size);
    }

    #[test]
    fn the_buffer_returned_last_is_filled_next() {
        let free = FreeBuffers::allocate(3, 4096, 0).unwrap();
        let a = free.take().unwrap();
        let b = free.take().unwrap();
        let (pa, pb) = (a.filled().as_ptr(), b.filled().as_ptr());
        free.put(a);
        free.put(b);
        assert_eq!(free.take().unwrap().filled().as_ptr(), pb);
        assert_eq!(free.take().unwrap().filled().as_ptr(), pa);
    }

    #[test]
    fn take_waits_for_a_buffer_to_come_back() {
        let free = FreeBuffers::allocate(1, 64, 1).unwrap();
        let only = free.take().unwrap();
        assert!(free
            .take_timeout(std::time::Duration::from_millis(10))
            .is_none());
        let back = free.clone();
        let t = std::thread::spawn(move || back.take().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        free.put(only);
        t.join().unwrap();
    }

    #[test]
    fn meta_merges_in_order() {
        let mut m = BufferMeta::default();
        m.add(10, 60, 60, 0);
        let mut later = BufferMeta::default();
        later.add(20, 54, 1500, 3);
        m.merge(&later);
        assert_eq!(m.packets, 2);
        assert_eq!((m.first_ts_ns, m.last_ts_ns), (Some(10), Some(20)));
        assert_eq!((m.bytes, m.wire_bytes, m.source_drops), (114, 1560, 3));
    }
}
