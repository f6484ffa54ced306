#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages imgw builds and tests with. Safe to run again:
# packages already present are left alone and nothing is downloaded.
set -eu

packages="build-essential pkg-config libevent-dev protobuf-c-compiler
libprotobuf-c-dev libsqlite3-dev sqlite3 libcmocka-dev libjansson-dev
libssl-dev uthash-dev libinih-dev libbpf-dev bpftool libxdp-dev clang llvm
iproute2 curl procps redis-server mosquitto libhiredis-dev
libmosquitto-dev gnuplot-nox libwslay-dev liburing-dev chromium"
# The web tests need node and npm; a Node.js from elsewhere that ships its
# own npm counts, because Debian's npm package conflicts with it.
command -v node >/dev/null 2>&1 || packages="$packages nodejs"
command -v npm >/dev/null 2>&1 || packages="$packages npm"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing; run 'make deps' as root" >&2
	exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "deps: apt-get update failed, trying the cached package lists" >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
