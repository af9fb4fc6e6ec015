#!/usr/bin/env bash
# Debian packages the demo and the tests use: real speech prompts (asterisk), espeak-ng, sox.
# Idempotent and fast when everything is present; as non-root it names what to install.
set -euo pipefail
pkgs=(asterisk-core-sounds-en asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav
      asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav
      espeak-ng sox)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
