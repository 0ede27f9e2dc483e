//! Trace formats: pcap, pcapng and ERF, each a pure parser over bytes, a reader and a writer.
