//! Trace formats, capture sources, the buffer ring and the rotating writer.
