#!/usr/bin/env bash
# Builds the Debian package: the four binaries, a man page per binary and subcommand,
# completions for bash, zsh and fish, the example configuration and the systemd units.
#
#   scripts/package.sh            release build -> $CARGO_TARGET_DIR/debian/lander_<version>_<arch>.deb
#   scripts/package.sh --dev      from the debug build (what the package test uses: no second
#                                 full build in CI)
#
# cargo-deb (the version below) is installed with `cargo install --locked` when it is missing
# or another version is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
dir=release
deb_flags=()
if [ "${1:-}" = "--dev" ]; then
  profile=dev
  dir=debug
  # cargo-deb warns that a dev profile is meant for tests, not releases: this is a test
  deb_flags=(--fast)
fi
target=${CARGO_TARGET_DIR:-target}

cargo_deb=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb" ]; then
  echo "installing cargo-deb $cargo_deb (cargo install cargo-deb --locked)" >&2
  cargo install cargo-deb --version "$cargo_deb" --locked --quiet
fi

cargo build --profile "$profile" --workspace --bins --quiet
out=$target/$dir
rm -rf "$out/man" "$out/completions"
mkdir -p "$out/man" "$out/completions"
"$out/lander" -q man --out "$out/man"
for shell in bash zsh fish; do
  "$out/lander" -q completions "$shell" --out-dir "$out/completions"
done

mkdir -p "$target/debian"
cargo deb --no-build --profile "$profile" "${deb_flags[@]}" --output "$target/debian/" >&2
ls -t "$target"/debian/lander_*.deb | head -1
