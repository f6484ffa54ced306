#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the imgw demo: starts bizsvr and the imgw gateway on loopback in a
# fresh temp dir, drives them with imgw-demo, prints its figures and a few
# lines of both daemons' /metrics, then stops both daemons.
# Usage: scripts/demo.sh BUILD_DIR. Extra imgw-demo options go in DEMO_ARGS.
set -u

build=${1:?usage: scripts/demo.sh BUILD_DIR}
build=$(cd "$build" && pwd) || exit 2
script_name=demo
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
require_binaries imgw bizsvr imgw-demo
if ! command -v curl >/dev/null; then
	echo "demo: curl is missing; run 'make deps'" >&2
	exit 2
fi

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/imgw-demo.XXXXXX") || exit 1

on_exit() {
	stop_daemons
	echo "demo: logs are in $run_dir (bizsvr.log, imgw.log)"
}
trap on_exit EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

pick_port gw_port 7070 || exit 1
pick_port gw_http 7071 || exit 1
pick_port biz_port 7080 || exit 1
pick_port biz_http 7081 || exit 1

secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
# One socket per simulated user on the gateway and in imgw-demo.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# The demo's big groups have 300 members, under the default upgrade
# threshold of 500, so lower it: the big groups become super sessions.
# shellcheck disable=SC2086
launch_bizsvr "$run_dir/bizsvr.log" "$run_dir/imgw.db" info \
	${DEMO_BIZSVR_ARGS:---super-upgrade-min-members 250 --super-upgrade-min-online 200}
launch_gateway "$run_dir/imgw.log" demo-gw "$gw_port" "$gw_http" info

echo "demo: bizsvr on 127.0.0.1:$biz_port (admin $biz_http), imgw on 127.0.0.1:$gw_port (admin $gw_http)"
if ! wait_healthy "http://127.0.0.1:$biz_http/healthz" '"status": *"ok"' ||
   ! wait_healthy "http://127.0.0.1:$gw_http/healthz" '"upstream": *"up"'; then
	tail -n 5 "$run_dir/bizsvr.log" "$run_dir/imgw.log" >&2
	exit 1
fi

# shellcheck disable=SC2086
"$build/imgw-demo" --gateway "127.0.0.1:$gw_port" \
	--admin "http://127.0.0.1:$biz_http" --duration 12 ${DEMO_ARGS:-}
status=$?

# Prints bizsvr's devices_online gauge, or nothing when /metrics fails.
devices_online() {
	curl -fsS --max-time 1 "http://127.0.0.1:$biz_http/metrics" 2>/dev/null |
		awk '$1 == "bizsvr_devices_online" { print $2 }'
}

# imgw-demo's connections close as it exits, but the gateway reports each
# one to bizsvr asynchronously, so wait up to 2 s for presence to drain
# before the excerpt is read.
online=$(devices_online)
for _ in $(seq 20); do
	[ "${online:-0}" = 0 ] && break
	sleep 0.1
	online=$(devices_online)
done
if [ "${online:-0}" != 0 ]; then
	echo "demo: bizsvr still counts $online devices online 2 s after imgw-demo exited" >&2
fi

echo
echo "demo: bizsvr /metrics (excerpt)"
curl -fsS --max-time 2 "http://127.0.0.1:$biz_http/metrics" |
	grep -E '^bizsvr_(gateways|devices_online|logins_total|messages_stored_total|deliver_frames_total|deliveries_total|broadcasts_total|super_sessions|super_transitions_total|super_acks_total)'
echo "demo: imgw /metrics (excerpt)"
curl -fsS --max-time 2 "http://127.0.0.1:$gw_http/metrics" |
	grep -E '^imgw_(connections|logins_total|deliveries_total|super_sessions|broadcasts_total|cache_deliveries_total|slow_closes_total|protocol_errors_total) '
echo
echo "demo: imgw-demo exited with status $status"
exit "$status"
