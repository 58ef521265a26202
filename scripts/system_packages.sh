#!/usr/bin/env bash
# Install the Debian packages in scripts/system-packages.txt that are missing (as root, with apt-get),
# or name them and fail (without root), so that a test run never fails later for a missing tool.
set -euo pipefail
list="$(dirname "$0")/system-packages.txt"
missing=()
while read -r package; do
  case "$package" in ''|'#'*) continue ;; esac
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done <"$list"
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "the tests need these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages the tests need: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
