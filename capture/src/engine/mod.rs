//! The capture engine: sources, the ring of buffers, the writers and rotation.
