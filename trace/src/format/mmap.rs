//! The one place trace files are memory-mapped.
//!
//! Reading a mapped file is only sound while nobody truncates or rewrites it. Trace files are
//! published by rename once complete and never modified afterwards (the publication contract
//! in DESIGN.md), so the readers map them; the opt-in is here, once.
//!
//! A file truncated anyway (by an operator, a full disk's cleanup, another tool) must not end
//! the process: a read of a page past the new end of file raises SIGBUS. Every map is
//! registered with a SIGBUS handler installed on first use; a fault inside a registered map
//! puts a page of zeros where the file's page was, marks the map spoiled and lets the read go
//! on. The reader asks [`Guarded::changed`] before it hands out what it read and at the end,
//! and reports the file as changed while read instead of its bytes. (The end check also
//! catches a truncation inside the last mapped page, whose tail the kernel zeroes without a
//! fault, a file appended to while it was read, by its length, and one written to in place,
//! by its modification time.) A fault anywhere else goes to the disposition there was before.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Once, OnceLock};

use memmap2::{Advice, Mmap};

/// Maps open at once that the SIGBUS handler covers; a map beyond them is unguarded.
const SLOTS: usize = 64;

struct Slot {
    start: AtomicUsize,
    /// 0: free.
    len: AtomicUsize,
    spoiled: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    spoiled: AtomicBool::new(false),
};

static GUARDS: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static INSTALL: Once = Once::new();

/// A read-only map of a whole file, covered by the SIGBUS handler.
#[derive(Debug)]
pub(crate) struct Guarded {
    map: Mmap,
    file: File,
    slot: Option<usize>,
    /// The file's modification time when it was mapped.
    modified: Option<std::time::SystemTime>,
}

impl Guarded {
    /// Whether the file is no longer what was mapped: a page of the map faulted (the file
    /// shrank under it, or the page could not be read), the file's length is not the map's
    /// (it shrank, or it is still growing: what was read is then not the file), or its
    /// modification time moved (rewritten in place). A write in place within one tick of the
    /// file system's clock, or through another process's shared mapping not yet written
    /// back, leaves the time as it was and goes unseen. Read bytes must not be trusted once this is true.
    pub(crate) fn changed(&self) -> bool {
        self.spoiled()
            || self.file.metadata().is_ok_and(|m| {
                m.len() != self.map.len() as u64
                    || self.modified.is_some_and(|t| m.modified().ok() != Some(t))
            })
    }

    /// Whether a page of the map faulted (cheap: one atomic load).
    #[inline]
    pub(crate) fn spoiled(&self) -> bool {
        self.slot.is_some_and(|i| GUARDS[i].spoiled.load(SeqCst))
    }
}

impl std::ops::Deref for Guarded {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            // before the map goes: the handler must not take a later fault there for ours
            // (nor, while the place is claimed again, one at this start: a claim's length of
            // 1 at address 0 covers nothing that can fault with SIGBUS)
            GUARDS[i].len.store(0, SeqCst);
            GUARDS[i].start.store(0, SeqCst);
        }
    }
}

/// Maps the whole of `file` read-only, advising sequential access, guarded against SIGBUS
/// (see the module documentation). The file must not be empty (callers read empty files
/// without a map).
pub(crate) fn map_readonly(file: &File) -> io::Result<Guarded> {
    INSTALL.call_once(install);
    // before the map: a write after this is seen, one before it is in the map
    let modified = file.metadata()?.modified().ok();
    // SAFETY: the map is read-only and private to this reader. Its soundness rests on the file
    // not changing while mapped, which the publication contract guarantees for trace files
    // (written under a temporary name, renamed into place when complete, never rewritten); a
    // truncation anyway is caught by the SIGBUS handler and reported by the reader.
    let map = unsafe { Mmap::map(file)? };
    let _ = map.advise(Advice::Sequential);
    let slot = register(map.as_ptr() as usize, map.len());
    Ok(Guarded {
        map,
        file: file.try_clone()?,
        slot,
        modified,
    })
}

/// Takes a free slot for `len` bytes at `start`; `None` when all are taken.
fn register(start: usize, len: usize) -> Option<usize> {
    let i = GUARDS.iter().position(|s| {
        // claimed with a length of 1 until the start is in place
        s.len.compare_exchange(0, 1, SeqCst, SeqCst).is_ok()
    })?;
    GUARDS[i].spoiled.store(false, SeqCst);
    GUARDS[i].start.store(start, SeqCst);
    GUARDS[i].len.store(len, SeqCst);
    Some(i)
}

/// Installs the SIGBUS handler, keeping the disposition it replaces.
fn install() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, SeqCst);
    }
    // SAFETY: a zeroed sigaction is a valid value to fill; sigaction reads `new` and writes
    // `old`, both valid for the call.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
            return;
        }
        let _ = PREVIOUS.set(old);
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut());
    }
}

/// The handler: only atomics and `mmap`/`sigaction`, both async-signal-safe in practice on
/// Linux (`mmap` is a plain system call).
extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; for SIGBUS it
    // carries the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(SeqCst);
    for slot in &GUARDS {
        let len = slot.len.load(SeqCst);
        let start = slot.start.load(SeqCst);
        if len == 0 || addr < start || addr - start >= len {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside a live read-only map of ours (registered, not yet
        // dropped): replacing it with a private page of zeros changes no memory Rust owns
        // mutably, and the map's own unmapping later removes it with the rest.
        let zero = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zero != libc::MAP_FAILED {
            slot.spoiled.store(true, SeqCst);
            return;
        }
    }
    // not ours: the access repeats under the disposition there was before
    if let Some(previous) = PREVIOUS.get() {
        // SAFETY: `previous` is the sigaction read at installation.
        unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
    }
}
