#!/usr/bin/env bash
# The package test: builds the Debian package (from the debug build the test suite already
# made), installs it with dpkg -i, checks the systemd units (`systemd-analyze verify` where
# systemd is present, else each unit file is parsed), and runs what a new operator runs first
# from the installed paths: `lander --version`, `man -w lander`, `lander-job --help`, the
# completions and the example configuration. Needs root (dpkg); it never skips silently. The
# package is purged at the end (the lander user and /var/spool/lander stay, as on any host).
#
# Prints one `test result:` line in cargo's format so scripts/test.sh counts it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test-package: needs root for dpkg -i (run as root, or in CI)" >&2
  exit 1
fi
command -v man >/dev/null || { echo "test-package: man-db missing (scripts/bootstrap.sh)" >&2; exit 1; }

passed=0
failed=0
check() {
  local name=$1
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "test package::$name ... ok"
  else
    failed=$((failed + 1))
    echo "test package::$name ... FAILED"
    echo "$out" | sed 's/^/    /'
  fi
}

deb=$(scripts/package.sh --dev | tail -1)
trap 'dpkg --purge lander >/dev/null 2>&1 || true' EXIT
check dpkg_installs dpkg -i "$deb"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
check version_from_the_installed_binary sh -c "[ \"\$(/usr/bin/lander --version)\" = 'lander $version' ]"
check every_binary_answers_help sh -c 'for b in lander lander-capture lander-scrub lander-job; do /usr/bin/$b --help | grep -q "Exit status" || exit 1; done'
check man_pages_are_found sh -c 'for p in lander lander-capture lander-scrub lander-job lander-info lander-verify; do man -w $p | grep -q "^/usr/share/man/man1/$p.1" || exit 1; done'
check completions_installed sh -c 'grep -q lander /usr/share/bash-completion/completions/lander && [ -s /usr/share/zsh/vendor-completions/_lander ] && [ -s /usr/share/fish/vendor_completions.d/lander.fish ]'
check example_config_installed sh -c 'grep -q "^spool = " /etc/lander/lander.toml.example'
check example_config_loads /usr/bin/lander quota --config /etc/lander/lander.toml.example
check system_user_created id lander

units=(/usr/lib/systemd/system/lander-*)
check all_units_installed sh -c "[ ${#units[@]} -eq 7 ]"
if command -v systemd-analyze >/dev/null; then
  # --man=no: the pages are checked above; verify loads each unit with its ExecStart binary,
  # User and capability names, and reports unknown keys and bad values.
  for unit in "${units[@]}"; do
    case $unit in
      *@.service) instance=${unit%@.service}@eth0.service ;;
      *) instance=$unit ;;
    esac
    [ "$instance" = "$unit" ] || cp "$unit" "$instance"
    check "systemd_analyze_verify_$(basename "$unit")" \
      sh -c "out=\$(systemd-analyze verify --man=no '$instance' 2>&1); [ \"$instance\" = \"$unit\" ] || rm -f '$instance'; echo \"\$out\"; ! echo \"\$out\" | grep -v 'Failed to .*connect\|Cannot add dependency job\|Unit network-online.target\|Access denied\|System has not been booted' | grep ."
  done
fi
# Parsed here too (where systemd is not present this is the only check): sections known,
# every line a key=value, ExecStart names an installed binary, the templates use %i.
for unit in "${units[@]}"; do
  check "unit_parses_$(basename "$unit")" scripts/check-unit.sh "$unit"
done

echo "test result: $([ $failed -eq 0 ] && echo ok || echo FAILED). $passed passed; $failed failed; 0 ignored"
[ $failed -eq 0 ]
