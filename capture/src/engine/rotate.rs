//! When a trace file ends: by size, by packet count, or at a wall-clock-aligned interval.

/// The rotation rules; any that is set closes the current file when reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotatePolicy {
    /// Close before a record would take the file past this many bytes.
    pub size: Option<u64>,
    /// Close at every multiple of this many nanoseconds since the epoch (300 s rotates at :00,
    /// :05, ...).
    pub interval_ns: Option<u64>,
    /// Close after this many packets.
    pub packets: Option<u64>,
}

/// Why a file was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The size limit.
    Size,
    /// The interval boundary.
    Interval,
    /// The packet count.
    Packets,
    /// A rotation was asked for (SIGHUP).
    Requested,
    /// A packet of a link type the file cannot hold arrived.
    LinkType,
    /// The source ended or a stop was asked for.
    End,
}

impl RotatePolicy {
    /// The start of the interval holding `ts_ns`, when rotating by interval.
    pub fn interval_start(&self, ts_ns: u64) -> Option<u64> {
        self.interval_ns.map(|i| ts_ns - ts_ns % i)
    }

    /// The first boundary after `ts_ns`, when rotating by interval.
    pub fn next_boundary(&self, ts_ns: u64) -> Option<u64> {
        self.interval_ns
            .map(|i| (ts_ns - ts_ns % i).saturating_add(i))
    }

    /// Whether a file of `size` bytes cannot take `need` more.
    #[inline]
    pub fn over_size(&self, size: u64, need: usize) -> bool {
        self.size.is_some_and(|max| size + need as u64 > max)
    }

    /// Whether a file holding `packets` is full.
    #[inline]
    pub fn full_of_packets(&self, packets: u64) -> bool {
        self.packets.is_some_and(|max| packets >= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn intervals_align_to_the_clock() {
        let p = RotatePolicy {
            interval_ns: Some(300 * S),
            ..RotatePolicy::default()
        };
        // 12:03:17 -> interval 12:00:00 .. 12:05:00
        let t = (12 * 3600 + 3 * 60 + 17) * S + 123;
        assert_eq!(p.interval_start(t), Some(12 * 3600 * S));
        assert_eq!(p.next_boundary(t), Some((12 * 3600 + 300) * S));
        // exactly on a boundary starts the next interval
        assert_eq!(p.next_boundary(300 * S), Some(600 * S));
    }

    #[test]
    fn size_and_packet_limits() {
        let p = RotatePolicy {
            size: Some(100),
            packets: Some(3),
            ..RotatePolicy::default()
        };
        assert!(!p.over_size(90, 10));
        assert!(p.over_size(90, 11));
        assert!(!p.full_of_packets(2));
        assert!(p.full_of_packets(3));
        assert!(!RotatePolicy::default().over_size(u64::MAX / 2, 1));
    }
}
