#!/usr/bin/env bash
# Installs the Debian packages LANDER-rs needs to build and test: libpcap's development files,
# and the real tools the tests use as peers and oracles (tcpdump, tshark/editcap, traceanon,
# tcpreplay, trafgen from netsniff-ng, iproute2, mkfs.ext4 for a small disk on a loop device,
# a single-node Slurm with munge, and headless
# chromium for the status page's browser test). As root it
# installs what is missing; otherwise it prints the exact apt-get line and stops.
set -euo pipefail

packages=(
  libpcap-dev pkg-config man-db
  tcpdump tshark libtrace-tools tcpreplay netsniff-ng iproute2 procps e2fsprogs
  slurmctld slurmd slurm-client munge
  chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "LANDER-rs needs Debian packages that are not installed. As root, run:" >&2
  echo "  apt-get update && $line" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing: ${missing[*]}" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
