//! Payload scrubbing and prefix-preserving address anonymization.
