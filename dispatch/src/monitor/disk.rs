//! Free space of the spool's filesystem (`statvfs`).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use crate::config::MinFree;

/// Size and free space of one filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DiskStatus {
    /// Bytes in the filesystem.
    pub total: u64,
    /// Bytes an unprivileged writer may still use.
    pub available: u64,
}

impl DiskStatus {
    /// Available space as a percentage of the size.
    pub fn free_percent(&self) -> f64 {
        if self.total == 0 {
            return 100.0;
        }
        self.available as f64 * 100.0 / self.total as f64
    }

    /// Whether the free space is below the limit.
    pub fn below(&self, min: MinFree) -> bool {
        match min {
            MinFree::Bytes(b) => self.available < b,
            MinFree::Percent(p) => self.free_percent() < p,
        }
    }
}

/// Measures the filesystem holding `path`.
pub fn measure(path: &Path) -> io::Result<DiskStatus> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: statvfs is plain data, for which all-zero bytes are a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated string alive for the call; `st` is a valid, writable
    // statvfs the call fills in and keeps no pointer to.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    }
    let frsize = st.f_frsize as u64;
    Ok(DiskStatus {
        total: (st.f_blocks as u64).saturating_mul(frsize),
        available: (st.f_bavail as u64).saturating_mul(frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_filesystem_has_a_size_and_limits_compare_both_ways() {
        let d = measure(Path::new("/")).unwrap();
        assert!(d.total > 0 && d.available <= d.total);
        let half = DiskStatus {
            total: 1000,
            available: 500,
        };
        assert!(half.below(MinFree::Percent(60.0)));
        assert!(!half.below(MinFree::Percent(40.0)));
        assert!(half.below(MinFree::Bytes(501)));
        assert!(!half.below(MinFree::Bytes(500)));
        assert!(measure(Path::new("/no/such/dir")).is_err());
    }
}
