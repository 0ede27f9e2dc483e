//! The interfaces of a pcapng output written from a trace of several link types.
//!
//! A pcapng input is mirrored: each of its sections starts a section of the output, each of
//! its interfaces gets an IDB of the same link type and snaplen, so every record keeps its
//! interface id. Any other input (pcap, ERF) gets one interface per (input interface or ERF
//! port, link type) pair, numbered in order of first use.
//!
//! The worker filling a chunk asks [`Interfaces::blocks_before`] after each record it reads: the
//! blocks to write before that record, and the record's interface id in the output.

use lander_trace::format::{RecordEncoder, TraceReader};
use lander_trace::LinkType;

/// Interface bookkeeping of one output.
#[derive(Debug)]
pub(super) struct Interfaces {
    mirror: bool,
    /// Mirror: sections and interfaces of the current section already declared.
    sections: u32,
    declared: usize,
    /// Otherwise: the (input interface, link type) pair of each output interface.
    pairs: Vec<(u32, LinkType)>,
    snaplen: u32,
}

impl Interfaces {
    /// Bookkeeping for the output of `reader`, whose records are cut at `snaplen`.
    pub(super) fn new(reader: &TraceReader, snaplen: u32) -> Interfaces {
        Interfaces {
            mirror: reader.format() == lander_trace::Format::Pcapng,
            sections: 1,
            declared: 0,
            pairs: Vec::new(),
            snaplen,
        }
    }

    /// Appends to `out` the blocks the output needs before a record of `link` on input
    /// interface `interface` (just read from `reader`); returns its output interface id.
    pub(super) fn blocks_before(
        &mut self,
        reader: &TraceReader,
        interface: u32,
        link: LinkType,
        out: &mut Vec<u8>,
    ) -> u32 {
        if self.mirror {
            self.mirror_blocks(reader, out);
            return interface;
        }
        let pair = (interface, link);
        if let Some(id) = self.pairs.iter().position(|&p| p == pair) {
            return id as u32;
        }
        self.pairs.push(pair);
        out.extend(RecordEncoder::interface_block(link, self.snaplen));
        (self.pairs.len() - 1) as u32
    }

    fn mirror_blocks(&mut self, reader: &TraceReader, out: &mut Vec<u8>) {
        if reader.sections() > self.sections {
            self.sections = reader.sections();
            self.declared = 0;
            out.extend(RecordEncoder::section_header());
        }
        for iface in reader.interfaces().iter().skip(self.declared) {
            out.extend(RecordEncoder::interface_block(
                iface.link_type,
                iface.snaplen,
            ));
        }
        self.declared = reader.interfaces().len();
    }
}
