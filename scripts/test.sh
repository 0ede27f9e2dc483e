#!/usr/bin/env bash
# Everything CI checks: formatting, lints, docs, and the whole test suite (unit, integration,
# interoperability with tcpdump/tshark/traceanon, live capture on a veth pair, Slurm), and the
# Debian package installed and checked.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets 2>&1 | tee "$log" || status=$?
# The Debian package from the debug build above: dpkg -i, systemd units, man, --version.
scripts/test-package.sh 2>&1 | tee -a "$log" || status=$?
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
