//! Writing whole pages past the page cache (`O_DIRECT`), where the file system allows it.
//!
//! A buffered write costs a copy of every byte into the page cache, and the pages to copy
//! into; on a capture host that copy was most of the capture's CPU time (on a virtual machine
//! whose host takes back freed memory, each new page cache page also waits on the host). A
//! direct write hands the buffer itself to the device. It takes whole pages at page offsets
//! from page-aligned memory, so:
//!
//! - the source places each buffer's bytes at the same place within a page as their file
//!   offset ([`Buffer::begin_at`]); the room before them is the file's bytes from that page's
//!   start, which were the last partial page of the buffer before: the *carry*, kept here;
//! - the writer puts the carry in that room ([`Buffer::prepend`]), writes the buffer's whole
//!   pages directly, and keeps its last partial page as the next carry;
//! - a carry is also written through the page cache ([`Direct::settle`]) whenever the source
//!   does not follow up at once (a buffer handed over for time on a quiet link, the end of a
//!   file), so bytes wait in this process no longer than they did before, and a file ends at
//!   its true length. The next direct write over that page replaces it (the kernel writes
//!   back and drops cached pages in the range of a direct write first).
//!
//! A buffer that is not placed that way (a record that left no room for it) is written
//! through the page cache as it is, and so is every buffer while the device does not keep up
//! (less than half the ring free): the page cache then takes a burst the ring alone could
//! not, as it did before, and the writer goes back to direct writes once the ring has drained.
//! The carry follows the file's end either way.
//!
//! A direct write reaches the device before it completes, but the file's size and the
//! device's cache still need the fsync at publication, as before.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

use crate::engine::ring::{Buffer, PAGE};

/// What to do with a buffer taken by [`Direct::take`].
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// Write its filled part (whole pages) at this offset of [`Direct::fd`].
    Direct(u64),
    /// Nothing to write yet: its bytes are all in the carry.
    Carried,
    /// It was not placed for a direct write: write it as it is, through the page cache.
    Buffered,
}

/// The direct side of one file being written. Dropped with bytes held back (an error path
/// that leaves the file for salvage), it writes them through the page cache first; a file
/// cut back after a failed write drops them instead ([`Direct::forget_carry`]).
#[derive(Debug)]
pub struct Direct {
    file: File,
    /// The file's own descriptor (through the page cache), for what is not whole pages.
    cached: File,
    /// The file's bytes from the last page boundary to the end taken so far.
    carry: Vec<u8>,
    /// The (page-aligned) file offset of the carry's first byte.
    carry_at: u64,
    /// Whether the carry is also in the file through the page cache.
    settled: bool,
}

impl Direct {
    /// Opens `file` a second time for direct writes, if its file system takes them at page
    /// offsets from page-aligned memory; `Ok(None)` where it does not (tmpfs, or a kernel
    /// that does not say: before Linux 6.1). Keeps a duplicate of `file` itself for the rest.
    pub fn open(file: &File) -> io::Result<Option<Direct>> {
        if !aligned_to_page(file.as_raw_fd()) {
            return Ok(None);
        }
        // The same open file description, not the name, which may have been replaced.
        let path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .expect("no NUL in a number");
        let flags = libc::O_WRONLY | libc::O_DIRECT | libc::O_CLOEXEC;
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                // not supported here after all, or no /proc
                Some(libc::EINVAL) | Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: `fd` was just opened here and nothing else owns it.
        let direct = unsafe { File::from_raw_fd(fd) };
        // A file system may say it takes direct writes and still refuse them (an encrypted
        // or inline-data file): try one page of the empty file before relying on it.
        if let Err(e) = probe(&direct).and_then(|()| file.set_len(0)) {
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(Direct {
            file: direct,
            cached: file.try_clone()?,
            carry: Vec::with_capacity(PAGE),
            carry_at: 0,
            settled: true,
        }))
    }

    /// The descriptor to write whole pages through.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Takes the next buffer of the file, whose bytes start at file offset `offset` (the
    /// file's end so far): fills its room before with the carry and cuts its last partial
    /// page off into the next carry when it is placed for that and `cached` is false; else
    /// writes the carry through the page cache and follows the file's end in the carry. On
    /// failure, the offset the carry was to go to.
    pub fn take(
        &mut self,
        offset: u64,
        buf: &mut Buffer,
        cached: bool,
    ) -> Result<Take, (u64, io::Error)> {
        debug_assert_eq!(offset, self.end(), "buffers come in file order");
        if cached || buf.lead() != self.carry.len() {
            self.settle()?;
            self.follow(buf.filled());
            return Ok(Take::Buffered);
        }
        buf.prepend(&self.carry);
        self.carry.clear();
        let whole = buf.len() / PAGE * PAGE;
        buf.split_off_into(whole, &mut self.carry);
        let at = self.carry_at;
        self.carry_at += whole as u64;
        self.settled = self.carry.is_empty();
        Ok(if whole == 0 {
            Take::Carried
        } else {
            Take::Direct(at)
        })
    }

    /// Keeps the carry in step with a buffer written through the page cache (after the carry
    /// was): its bytes from the last page boundary, which are then in the file already.
    fn follow(&mut self, bytes: &[u8]) {
        let end = self.end() + bytes.len() as u64;
        let tail = (end % PAGE as u64) as usize;
        if bytes.len() >= tail {
            self.carry.clear();
            self.carry.extend_from_slice(&bytes[bytes.len() - tail..]);
        } else {
            // the buffer ends within the carry's page
            self.carry.extend_from_slice(bytes);
        }
        self.carry_at = end - tail as u64;
        self.settled = true;
    }

    /// The file offset after the last byte taken.
    pub fn end(&self) -> u64 {
        self.carry_at + self.carry.len() as u64
    }

    /// Writes the carry through the page cache, unless it is there already; on failure, the
    /// offset it was to go to.
    pub fn settle(&mut self) -> Result<(), (u64, io::Error)> {
        if self.settled {
            return Ok(());
        }
        self.cached
            .write_all_at(&self.carry, self.carry_at)
            .map_err(|e| (self.carry_at, e))?;
        self.settled = true;
        Ok(())
    }

    /// Drops what is held back, for a file cut back before it.
    pub fn forget_carry(&mut self) {
        self.settled = true;
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        if let Err((at, e)) = self.settle() {
            tracing::warn!(
                "cannot write the last {} bytes at {at}: {e}",
                self.carry.len()
            );
        }
    }
}

/// Writes one page of zeros at the start of `file` (opened for direct writes).
fn probe(file: &File) -> io::Result<()> {
    let layout = std::alloc::Layout::from_size_align(PAGE, PAGE).expect("a valid layout");
    // SAFETY: the layout has a nonzero size.
    let page = unsafe { std::alloc::alloc_zeroed(layout) };
    if page.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `page` points to PAGE initialised (zeroed) bytes, alive until dealloc below.
    let written = file.write_all_at(unsafe { std::slice::from_raw_parts(page, PAGE) }, 0);
    // SAFETY: allocated above with the same layout, and the slice is no longer used.
    unsafe { std::alloc::dealloc(page, layout) };
    written
}

/// Whether direct writes to `fd` may start at any page offset from any page-aligned memory
/// (`statx`'s `STATX_DIOALIGN`).
fn aligned_to_page(fd: RawFd) -> bool {
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: `empty` is a NUL-terminated string and `stx` a writable statx, both valid for
    // the call; AT_EMPTY_PATH makes it describe `fd` itself.
    let rc = unsafe {
        libc::statx(
            fd,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    let page = PAGE as u32;
    rc == 0
        && stx.stx_mask & libc::STATX_DIOALIGN != 0
        && stx.stx_dio_mem_align != 0
        && stx.stx_dio_offset_align != 0
        && page.is_multiple_of(stx.stx_dio_mem_align)
        && page.is_multiple_of(stx.stx_dio_offset_align)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ring::FreeBuffers;

    /// A direct side over a new file in a temporary directory under /var/tmp (on disk, where
    /// /tmp may be a tmpfs).
    fn direct_file() -> (tempfile::TempDir, File, Direct) {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("t"))
            .unwrap();
        let direct = Direct::open(&file)
            .unwrap()
            .expect("the test disk takes direct writes");
        (dir, file, direct)
    }

    /// Sends `bytes` through `direct` in buffers of the given sizes, placed as the source
    /// places them, writing what it says to write (the buffers whose index is in `cached`
    /// through the page cache); settles at the end.
    fn write_through(
        direct: &mut Direct,
        file: &File,
        bytes: &[u8],
        cuts: &[usize],
        cached: &[usize],
    ) {
        let free = FreeBuffers::allocate(1, 64 << 10, 1).unwrap();
        let mut at = 0usize;
        for (i, &n) in cuts.iter().enumerate() {
            let mut buf = free.take().unwrap();
            buf.begin_at(at as u64, n);
            buf.push(&bytes[at..at + n]);
            match direct
                .take(at as u64, &mut buf, cached.contains(&i))
                .unwrap()
            {
                Take::Direct(off) => {
                    assert_eq!(off % PAGE as u64, 0);
                    assert_eq!(buf.filled().as_ptr() as usize % PAGE, 0);
                    assert_eq!(buf.len() % PAGE, 0);
                    let fd = std::mem::ManuallyDrop::new(
                        // SAFETY: the direct side's descriptor outlives this borrow, which
                        // never closes it.
                        unsafe { File::from_raw_fd(direct.fd()) },
                    );
                    fd.write_all_at(buf.filled(), off).unwrap();
                }
                Take::Carried => assert!(buf.is_empty()),
                Take::Buffered => file.write_all_at(buf.filled(), at as u64).unwrap(),
            }
            at += n;
            free.put(buf);
        }
        direct.settle().unwrap();
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn buffers_of_any_length_make_the_same_file() {
        for cuts in [
            vec![5000, 3000, 4096, 10, 20000, 1],
            vec![1, 1, 1, 4093, 4096, 9000],
            vec![4096, 8192, 100],
            vec![24, 40000, 40000, 12],
        ] {
            // all direct; every other one through the page cache; the middle ones
            let n = cuts.len();
            let odd: Vec<usize> = (0..n).filter(|i| i % 2 == 1).collect();
            let middle: Vec<usize> = (1..n - 1).collect();
            for cached in [vec![], odd, middle] {
                let (_dir, file, mut direct) = direct_file();
                let bytes = pattern(cuts.iter().sum());
                write_through(&mut direct, &file, &bytes, &cuts, &cached);
                let mut back = Vec::new();
                std::io::Read::read_to_end(&mut &file, &mut back).unwrap();
                assert_eq!(back.len(), bytes.len(), "{cuts:?} {cached:?}");
                assert!(back == bytes, "{cuts:?} {cached:?}: the file differs");
            }
        }
    }

    #[test]
    fn a_buffer_not_placed_for_it_is_written_through_the_page_cache_after_the_carry() {
        let (_dir, file, mut direct) = direct_file();
        let free = FreeBuffers::allocate(1, 16 << 10, 1).unwrap();
        let bytes = pattern(5000);
        let mut buf = free.take().unwrap();
        buf.begin_at(0, 0);
        buf.push(&bytes[..1000]);
        assert_eq!(direct.take(0, &mut buf, false).unwrap(), Take::Carried);
        free.put(buf);
        // a record too big for the room before it: the buffer starts at its first byte
        let mut buf = free.take().unwrap();
        buf.begin_at(1000, 16 << 10);
        assert_eq!(buf.lead(), 0);
        buf.push(&bytes[1000..]);
        assert_eq!(direct.take(1000, &mut buf, false).unwrap(), Take::Buffered);
        file.write_all_at(buf.filled(), 1000).unwrap();
        assert_eq!(direct.end(), 5000);
        assert_eq!(direct.carry, bytes[4096..]);
        direct.settle().unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut back).unwrap();
        assert!(back == bytes, "the carried front is in the file");
    }

    /// An error path that drops the file being written (left for salvage) drops its direct
    /// side with a partial page held back: the page still reaches the file. A file cut back
    /// before the carry does not get it.
    #[test]
    fn bytes_held_back_reach_the_file_when_the_direct_side_is_dropped() {
        let bytes = pattern(5000);
        for forget in [false, true] {
            let (_dir, file, mut direct) = direct_file();
            let free = FreeBuffers::allocate(1, 16 << 10, 1).unwrap();
            let mut buf = free.take().unwrap();
            buf.begin_at(0, bytes.len());
            buf.push(&bytes);
            assert_eq!(direct.take(0, &mut buf, false).unwrap(), Take::Direct(0));
            let fd = std::mem::ManuallyDrop::new(
                // SAFETY: the direct side's descriptor outlives this borrow, which never
                // closes it.
                unsafe { File::from_raw_fd(direct.fd()) },
            );
            fd.write_all_at(buf.filled(), 0).unwrap();
            if forget {
                direct.forget_carry();
            }
            drop(direct);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut back).unwrap();
            let want = if forget { &bytes[..4096] } else { &bytes[..] };
            assert!(back == want, "forget {forget}: {} bytes", back.len());
        }
    }

    #[test]
    fn the_direct_side_writes_to_the_same_file_even_after_a_rename() {
        let (dir, file, mut direct) = direct_file();
        std::fs::rename(dir.path().join("t"), dir.path().join("u")).unwrap();
        std::fs::write(dir.path().join("t"), b"someone else's").unwrap();
        let bytes = pattern(8192 + 10);
        write_through(&mut direct, &file, &bytes, &[8192 + 10], &[]);
        assert_eq!(std::fs::read(dir.path().join("u")).unwrap(), bytes);
        assert_eq!(
            std::fs::read(dir.path().join("t")).unwrap(),
            b"someone else's"
        );
    }
}
