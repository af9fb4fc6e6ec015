#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm PyPI source distribution and
# install them into tools/kenlm/bin (gitignored). The n-gram recipe stage looks there.
#   tools/install_kenlm.sh [python]     # python whose pip downloads the sdist (default .venv/bin/python)
# Idempotent: exits at once when both binaries are already installed and run.
# Needs Debian build-essential, cmake, boost and compression headers; as root it
# installs the missing ones with apt-get, otherwise it names them and stops.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=$root/tools/kenlm
python=${1:-$root/.venv/bin/python}
bins=(lmplz build_binary)

installed() {
  for b in "${bins[@]}"; do
    [ -x "$prefix/bin/$b" ] || return 1
  done
  # A binary that fails to load (missing shared library) prints no usage text.
  local usage
  usage=$("$prefix/bin/lmplz" --help 2>&1 || true)
  grep -q "Builds unpruned language models" <<<"$usage"
}

if installed; then
  echo "KenLM already installed in $prefix/bin"
  exit 0
fi

pkgs=(build-essential cmake libboost-program-options-dev libboost-system-dev
      libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "KenLM needs Debian packages: ${missing[*]}" >&2
    echo "Install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

src=$prefix/src
mkdir -p "$src"
if ! ls "$src"/kenlm-*.tar.gz >/dev/null 2>&1; then
  [ -x "$python" ] || python=python3
  echo "Downloading the kenlm source distribution with $python -m pip"
  # No build isolation: pip would otherwise compile the build requirements (cmake!) from
  # source just to read the sdist's metadata. Nothing is installed.
  "$python" -m pip download -q --no-deps --no-binary :all: --no-build-isolation --dest "$src" kenlm
fi
sdist=$(ls "$src"/kenlm-*.tar.gz | head -n 1)
tree=$src/$(basename "$sdist" .tar.gz)
[ -d "$tree" ] || tar -xzf "$sdist" -C "$src"
[ -f "$tree/CMakeLists.txt" ] || { echo "$sdist has no CMakeLists.txt; cannot build" >&2; exit 1; }

build=$tree/build
cmake -S "$tree" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$src/cmake.log" 2>&1 \
  || { echo "cmake configure failed; see $src/cmake.log" >&2; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
cmake --build "$build" --target "${bins[@]}" -j "$jobs" >"$src/build.log" 2>&1 \
  || { echo "KenLM build failed; see $src/build.log" >&2; exit 1; }

mkdir -p "$prefix/bin"
for b in "${bins[@]}"; do
  install -m 755 "$build/bin/$b" "$prefix/bin/$b"
done
installed || { echo "built binaries in $prefix/bin do not run" >&2; exit 1; }
echo "KenLM installed: $prefix/bin/{$(IFS=,; echo "${bins[*]}")}"
