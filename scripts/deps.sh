#!/usr/bin/env bash
# Installs the Debian packages kvs needs to build and test, only those missing.
# Usage: scripts/deps.sh [build|test|bench|deb|all]   (default: build)
# Does nothing (and needs no network) when everything is already installed.
set -euo pipefail

build_pkgs="build-essential pkg-config python3 libcivetweb-dev librocksdb-dev libyaml-dev libcjson-dev
uuid-dev libcurl4-openssl-dev libsystemd-dev libssl-dev libzstd-dev libedit-dev"
test_pkgs="libcmocka-dev python3-pytest python3-requests curl jq procps iproute2 iptables faketime
libfaketime openssl clang-14 libclang-rt-14-dev cppcheck zstd prometheus debhelper dpkg-dev lintian
chromium chromium-driver python3-selenium"
bench_pkgs="wrk etcd-server etcd-client hyperfine"
deb_pkgs="debhelper dpkg-dev lintian"

case "${1:-build}" in
  build) want="$build_pkgs" ;;
  test)  want="$build_pkgs $test_pkgs" ;;
  bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
  deb)   want="$build_pkgs $deb_pkgs" ;;
  all)   want="$build_pkgs $test_pkgs $bench_pkgs" ;;
  *) echo "usage: $0 [build|test|bench|deb|all]" >&2; exit 2 ;;
esac

missing=()
for p in $want; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
