#!/bin/bash
# SPDX-License-Identifier: MIT
# Compares one busy 5,000-member group pinned normal against the same group
# pinned super. For each run it starts bizsvr and two gateways on loopback
# (fresh temp dir and database, random secret, free ports), lets imgw-bench
# log all members in (spread over both gateways), pin the session, publish
# and measure, then stops the daemons. Workloads: fixed rates (each of
# BENCH_RATES msg/s for BENCH_SECONDS s) and as fast as possible with
# BENCH_IN_FLIGHT messages in flight (BENCH_FAST_MESSAGES messages). It
# prints the figures of both modes side by side. BENCH_FAST=0 skips the
# as-fast-as-possible workload.
# Usage: scripts/bench-super.sh [BUILD_DIR]   (default: build)
set -u

build=${1:-build}
build=$(cd "$build" && pwd) || exit 2
script_name=bench-super
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
require_binaries imgw bizsvr imgw-bench
if ! command -v curl >/dev/null; then
	echo "bench-super: curl is missing; run 'make deps'" >&2
	exit 2
fi

members=${BENCH_MEMBERS:-5000}
rates=${BENCH_RATES:-10 50}
seconds=${BENCH_SECONDS:-20}
fast_messages=${BENCH_FAST_MESSAGES:-500}
in_flight=${BENCH_IN_FLIGHT:-8}
workers=${BENCH_WORKERS:-2}

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/imgw-bench-super.XXXXXX") || exit 1
csv=$run_dir/results.csv

on_exit() {
	stop_daemons
	echo "bench-super: logs and results.csv are in $run_dir"
}
trap on_exit EXIT
trap 'echo "bench-super: interrupted" >&2; exit 130' INT TERM

# Starts bizsvr and two gateways for run $1 with a fresh database.
start_daemons() {
	local name=$1 port

	taken=""
	for port in biz_port biz_http gw1_port gw1_http gw2_port gw2_http; do
		pick_port "$port" || return 1
	done
	secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$run_dir/$name"
	launch_bizsvr "$run_dir/$name/bizsvr.log" "$run_dir/$name/imgw.db" warn
	launch_gateway "$run_dir/$name/imgw1.log" bench-gw1 "$gw1_port" \
		"$gw1_http" warn
	gw_pids=$gw_pid
	launch_gateway "$run_dir/$name/imgw2.log" bench-gw2 "$gw2_port" \
		"$gw2_http" warn
	gw_pids="$gw_pids $gw_pid"
	wait_healthy "http://127.0.0.1:$biz_http/healthz" '"status": *"ok"' &&
		wait_healthy "http://127.0.0.1:$gw1_http/healthz" '"upstream": *"up"' &&
		wait_healthy "http://127.0.0.1:$gw2_http/healthz" '"upstream": *"up"'
}

# Starts the daemons, trying new ports when one was taken meanwhile.
start_daemons_retry() {
	local try

	for try in 1 2 3; do
		start_daemons "$1" && return 0
		tail -n 3 "$run_dir/$1/"*.log >&2
		stop_daemons
		echo "bench-super: starting the daemons failed (try $try of 3)" >&2
	done
	return 1
}

# Runs workload $1 (rate-N for N msg/s, or fast) with the session pinned $2
# (normal or super).
run_one() {
	local workload=$1 pin=$2 name="$1-$2" gw args status rate

	echo "bench-super: run $name" >&2
	start_daemons_retry "$name" || return 1
	args=(--admin "http://127.0.0.1:$biz_http" --secret "$secret"
	      --gateway "127.0.0.1:$gw1_port" --gateway "127.0.0.1:$gw2_port"
	      --users "$members" --workers "$workers" --pin "$pin"
	      --bizsvr-pid "$biz_pid" --label "$name" --csv "$csv"
	      --json "$run_dir/$name/result.json")
	for gw in $gw_pids; do
		args+=(--gateway-pid "$gw")
	done
	if [ "$workload" != fast ]; then
		rate=${workload#rate-}
		args+=(--messages $((rate * seconds)) --rate "$rate" --in-flight 64)
	else
		args+=(--messages "$fast_messages" --rate 0 --in-flight "$in_flight")
	fi
	"$build/imgw-bench" "${args[@]}" >"$run_dir/$name/summary.txt"
	status=$?
	cat "$run_dir/$name/summary.txt"
	stop_daemons
	return "$status"
}

# Prints the two rows of $csv labelled $1-normal and $1-super side by side.
print_side_by_side() {
	awk -F, -v w="$1" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$1 == w "-normal" { for (i = 1; i <= NF; i++) n[i] = $i }
	$1 == w "-super" { for (i = 1; i <= NF; i++) s[i] = $i }
	function row(title, key) {
		printf "  %-34s %14s %14s\n", title, n[col[key]], s[col[key]]
	}
	END {
		printf "  %-34s %14s %14s\n", "", "normal", "super"
		row("messages stored", "stored")
		row("deliveries", "deliveries")
		row("missing / duplicates", "missing")
		row("messages per second", "msgs_per_s")
		row("deliveries per second", "deliveries_per_s")
		row("bizsvr CPU us per message", "bizsvr_us_per_msg")
		row("gateway CPU us per delivery", "gateway_us_per_delivery")
		row("gateway CPU us per message", "gateway_us_per_msg")
		row("imgw-bench CPU us", "bench_cpu_us")
		row("latency p50 ms, per delivery", "lat_p50_ms")
		row("latency p99 ms, per delivery", "lat_p99_ms")
		row("latency max ms, per delivery", "lat_max_ms")
		row("latency p50 ms, last member", "last_p50_ms")
		row("latency p99 ms, last member", "last_p99_ms")
		row("latency max ms, last member", "last_max_ms")
		row("bizsvr peak RSS kB", "bizsvr_peak_rss_kb")
		row("gateway peak RSS kB (larger)", "gateway_peak_rss_kb")
	}' "$csv"
}

workloads=$(printf 'rate-%s ' $rates)
[ "${BENCH_FAST:-1}" = 0 ] || workloads="$workloads fast"
failed=0
for workload in $workloads; do
	for pin in normal super; do
		run_one "$workload" "$pin" || failed=1
	done
done

echo
echo "bench-super: $members members, 2 gateways, $(nproc) CPUs, loopback"
for rate in $rates; do
	echo "fixed rate: $rate msg/s for $seconds s, admin API publish, 128-byte payloads"
	print_side_by_side "rate-$rate"
done
if [ "${BENCH_FAST:-1}" != 0 ]; then
	echo "as fast as possible: $fast_messages messages, $in_flight in flight, admin API publish"
	print_side_by_side fast
fi
if [ "$failed" -ne 0 ]; then
	echo "bench-super: a run failed (loss, duplicates or errors); see the summaries above" >&2
	exit 1
fi
