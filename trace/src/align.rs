//! Where to put bytes in memory so the kernel copies them into and out of files fast.
//!
//! The kernel copies between the page cache and a process's memory with `rep movsb`, and on
//! the AMD cores this was measured on that copy slows to half its speed when the destination
//! lies 1 to 31 bytes past the source within a 4 KiB page (a load then waits on the store
//! just before it, whose address it matches in the low 12 bits). Reading 152 MB from the page
//! cache and writing it to a new file took 0.049 s of CPU time with the two in step and
//! 0.091-0.097 s with a distance of 1, 16 or 31 on either side (the read's or the write's); 32
//! bytes and more, or a destination behind its source, were as fast as in step.
//!
//! For a read the destination is the buffer and the source the file offset; for a write the
//! other way round. [`shift`] places bytes so that both are in step; [`slow_read`] and
//! [`slow_write`] tell whether a given placement is in the slow band.

/// The step kept: a cache line, which covers the 32 bytes of the slow band.
pub const COPY_ALIGN: usize = 64;

/// Bytes in the page the distance is taken in.
const PAGE: usize = 4096;

/// The shift, less than [`COPY_ALIGN`], at which bytes for file offset `offset` go in a
/// buffer at address `base` so that `base + shift` and `offset` agree modulo [`COPY_ALIGN`]
/// (a copy either way is then in step).
#[inline]
pub fn shift(base: *const u8, offset: u64) -> usize {
    let want = (offset % COPY_ALIGN as u64) as usize;
    let have = base as usize % COPY_ALIGN;
    (want + COPY_ALIGN - have) % COPY_ALIGN
}

/// Whether reading file offset `offset` into `dst` is a slow copy.
#[inline]
pub fn slow_read(dst: *const u8, offset: u64) -> bool {
    slow(distance(dst as usize as u64, offset))
}

/// Whether writing `src` at file offset `offset` is a slow copy.
#[inline]
pub fn slow_write(src: *const u8, offset: u64) -> bool {
    slow(distance(offset, src as usize as u64))
}

/// How far the destination lies past the source within a page.
fn distance(dst: u64, src: u64) -> usize {
    (dst.wrapping_sub(src) % PAGE as u64) as usize
}

/// Whether a copy that far is slow: the band measured, widened to a cache line.
fn slow(distance: usize) -> bool {
    (1..COPY_ALIGN).contains(&distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shifted_address_is_in_step_with_the_offset() {
        let buf = vec![0u8; 256];
        for start in 0..COPY_ALIGN {
            let base = buf[start..].as_ptr();
            for offset in [0u64, 1, 16, 24, 63, 64, 65, 1 << 20, (1 << 40) + 17] {
                let s = shift(base, offset);
                assert!(s < COPY_ALIGN);
                let at = base.wrapping_add(s);
                assert_eq!(at as usize % COPY_ALIGN, (offset % 64) as usize);
                assert!(!slow_read(at, offset) && !slow_write(at, offset));
            }
        }
    }

    #[test]
    fn the_slow_band_is_a_destination_just_past_its_source() {
        let page = 0x7f00_0000_0000usize as *const u8;
        // read: the buffer is the destination
        assert!(!slow_read(page, 0));
        assert!(slow_read(page.wrapping_add(16), 0));
        assert!(slow_read(page.wrapping_add(4096 + 1), 4096));
        assert!(!slow_read(page.wrapping_add(64), 0));
        assert!(!slow_read(page, 16));
        // write: the file offset is the destination
        assert!(slow_write(page, 16));
        assert!(slow_write(page.wrapping_add(8), (1 << 30) + 24));
        assert!(!slow_write(page.wrapping_add(16), 0));
        assert!(!slow_write(page, 4095));
    }
}
