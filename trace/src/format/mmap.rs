//! The one place trace files are memory-mapped.
//!
//! Reading a mapped file is only sound while nobody truncates or rewrites it: a page past a
//! new end of file raises SIGBUS, and a rewrite changes bytes under a live `&[u8]`. Trace files
//! are published by rename once complete and never modified afterwards (the publication
//! contract in DESIGN.md), so the readers map them; the opt-in is here, once.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::{Advice, Mmap};

/// Maps the whole of `file` read-only, advising sequential access.
///
/// The file must not be empty (callers read empty files without a map) and must not be
/// truncated or modified while the map lives; see the module documentation.
pub(crate) fn map_readonly(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this reader. Its soundness rests on the file
    // not changing while mapped, which the publication contract guarantees for trace files
    // (written under a temporary name, renamed into place when complete, never rewritten).
    // A finished file truncated by an operator raises SIGBUS in the reading thread; files
    // still being written are never opened through this path by the pipeline.
    let map = unsafe { Mmap::map(file)? };
    let _ = map.advise(Advice::Sequential);
    Ok(map)
}
