#!/usr/bin/env bash
# Everything CI checks: formatting, lints, and the whole test suite (unit, integration,
# interoperability with tcpdump/tshark/traceanon, live capture on a veth pair, Slurm).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q
cargo test --workspace --all-targets
