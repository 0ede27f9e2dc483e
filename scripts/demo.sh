#!/usr/bin/env bash
# The main job on its built-in default: no configuration, no hardware, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo build --release --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/release/lander" demo "$@"
