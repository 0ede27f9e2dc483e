//! What each byte of a packet is, as the verifier's own recogniser sees it.
//!
//! The recogniser ([`super::headers`]) fills a [`Layout`]: the class of every byte (header
//! field, address, padding, payload, or not understood), the offsets of the addresses it
//! found, where the payload starts, and the choices it made where the bytes alone decide
//! (what follows an MPLS label stack). The raw packet is read with choices recorded; its
//! scrubbed form is read replaying them, so both are cut the same way.

/// The class of one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// Not understood: unknown options, unknown extension headers, what follows a protocol
    /// the recogniser does not know. In an output packet such a byte must be zero.
    Unknown = 0,
    /// A header field the recogniser knows and that carries no address (ports, lengths,
    /// flags, checksums, sequence numbers, MACs, known harmless options).
    Field,
    /// Part of an IPv4 or IPv6 address.
    Addr,
    /// Padding: NOP/EOL options, IPv6 Pad1/PadN headers.
    Pad,
    /// After the last header: the payload (and any link-layer trailer).
    Payload,
}

impl Class {
    /// Whether the byte belongs to a header field the recogniser understood.
    pub fn explained(self) -> bool {
        matches!(self, Class::Field | Class::Addr | Class::Pad)
    }
}

/// Most choices one packet records (one per MPLS stack).
pub const MAX_CHOICES: usize = 8;

/// The recogniser's view of one packet.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Fill [`Self::classes`] (the output side); the raw side only collects.
    pub classify: bool,
    /// The class of each byte (when classifying).
    pub classes: Vec<Class>,
    /// Offsets of the IPv4 addresses found whole.
    pub v4: Vec<usize>,
    /// Offsets of the IPv6 addresses found whole.
    pub v6: Vec<usize>,
    /// Offsets of IPv4 addresses found by the plausible-header scan or in options whose
    /// bytes are not allowed in the output (collected, not classified as addresses).
    pub extra_v4: Vec<usize>,
    /// Likewise for IPv6.
    pub extra_v6: Vec<usize>,
    /// Where the payload starts, or where recognition stopped.
    pub payload_at: usize,
    /// Whether recognition reached a payload (false: it stopped at something unknown).
    pub complete: bool,
    /// Choices made, in order.
    pub choices: [u8; MAX_CHOICES],
    /// How many choices were made (record) or replayed (replay).
    pub n_choices: usize,
    /// Replay `choices` instead of deciding.
    pub replay: bool,
    /// Choices there are to replay.
    pub replay_n: usize,
    /// Length of the packet.
    pub len: usize,
}

impl Layout {
    /// Starts a packet of `len` bytes.
    pub fn reset(&mut self, len: usize, classify: bool) {
        self.classify = classify;
        self.classes.clear();
        if classify {
            self.classes.resize(len, Class::Unknown);
        }
        self.v4.clear();
        self.v6.clear();
        self.extra_v4.clear();
        self.extra_v6.clear();
        self.payload_at = len;
        self.complete = false;
        self.n_choices = 0;
        self.replay = false;
        self.replay_n = 0;
        self.len = len;
    }

    /// Starts the output packet of `len` bytes, replaying the choices of `raw`.
    pub fn replaying(&mut self, len: usize, raw: &Layout) {
        self.reset(len, true);
        self.choices = raw.choices;
        self.replay = true;
        self.replay_n = raw.n_choices;
    }

    /// Marks `at..at + n` (clipped to the packet) as `class`.
    #[inline]
    pub fn mark(&mut self, at: usize, n: usize, class: Class) {
        if !self.classify || at >= self.len {
            return;
        }
        let end = at.saturating_add(n).min(self.len);
        self.classes[at..end].fill(class);
    }

    /// A header field of `n` bytes.
    #[inline]
    pub fn field(&mut self, at: usize, n: usize) {
        self.mark(at, n, Class::Field);
    }

    /// Padding of `n` bytes.
    #[inline]
    pub fn pad(&mut self, at: usize, n: usize) {
        self.mark(at, n, Class::Pad);
    }

    /// An IPv4 address at `at` (collected when whole).
    #[inline]
    pub fn addr4(&mut self, at: usize) {
        self.mark(at, 4, Class::Addr);
        if at + 4 <= self.len {
            self.v4.push(at);
        }
    }

    /// An IPv6 address at `at` (collected when whole).
    #[inline]
    pub fn addr6(&mut self, at: usize) {
        self.mark(at, 16, Class::Addr);
        if at + 16 <= self.len {
            self.v6.push(at);
        }
    }

    /// An IPv4 address to collect whose bytes stay unexplained (an option not allowed out).
    #[inline]
    pub fn note4(&mut self, at: usize) {
        if at + 4 <= self.len {
            self.extra_v4.push(at);
        }
    }

    /// Likewise for IPv6.
    #[inline]
    pub fn note6(&mut self, at: usize) {
        if at + 16 <= self.len {
            self.extra_v6.push(at);
        }
    }

    /// The headers end at `at`: the rest is payload.
    pub fn payload(&mut self, at: usize) {
        let at = at.min(self.len);
        self.payload_at = at;
        self.complete = true;
        self.mark(at, self.len - at, Class::Payload);
    }

    /// Recognition stopped at `at`: the rest stays unknown.
    pub fn stop(&mut self, at: usize) {
        self.payload_at = at.min(self.len);
        self.complete = false;
    }

    /// The choice at this point: replayed, or `decide()` recorded.
    pub fn choose(&mut self, decide: impl FnOnce() -> u8) -> u8 {
        let i = self.n_choices;
        if i >= MAX_CHOICES {
            return decide();
        }
        self.n_choices += 1;
        if self.replay && i < self.replay_n {
            return self.choices[i];
        }
        let c = decide();
        self.choices[i] = c;
        c
    }

    /// Runs of bytes not understood that hold a non-zero byte: the offset of the first
    /// non-zero byte and the length from there to the end of the run.
    pub fn unexplained(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let n = self.classes.len().min(data.len());
        let mut at = 0;
        while at < n {
            if self.classes[at] != Class::Unknown {
                at += 1;
                continue;
            }
            let start = at;
            while at < n && self.classes[at] == Class::Unknown {
                at += 1;
            }
            if let Some(first) = data[start..at].iter().position(|&b| b != 0) {
                runs.push((start + first, at - start - first));
            }
        }
        runs
    }

    /// Whether any byte is outside the understood headers (unknown or payload), and
    /// whether any is not understood.
    pub fn summary(&self) -> (bool, bool) {
        let (mut soft, mut unknown) = (false, false);
        for &c in &self.classes {
            soft |= !c.explained();
            unknown |= c == Class::Unknown;
        }
        (soft, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_clipped_and_runs_found() {
        let mut l = Layout::default();
        l.reset(10, true);
        l.field(0, 4);
        l.addr4(8); // only 2 bytes there: marked, not collected
        assert!(l.v4.is_empty());
        let data = [1, 1, 1, 1, 0, 7, 7, 0, 9, 9];
        assert_eq!(l.unexplained(&data), vec![(5, 3)]);
        l.payload(5);
        assert!(l.unexplained(&data).is_empty());
    }

    #[test]
    fn choices_replay() {
        let mut raw = Layout::default();
        raw.reset(4, false);
        assert_eq!(raw.choose(|| 3), 3);
        let mut out = Layout::default();
        out.replaying(4, &raw);
        assert_eq!(out.choose(|| 9), 3);
        assert_eq!(out.choose(|| 9), 9);
    }
}
