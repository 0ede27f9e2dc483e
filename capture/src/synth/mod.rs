//! Deterministic synthetic traffic for tests, benches and the demo.
