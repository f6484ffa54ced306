#!/bin/bash
# SPDX-License-Identifier: MIT
# Compares the gateway's two paths for super-session broadcasts in one run:
# the userspace path (--kernel-path off) and the kernel sk_msg path
# (--kernel-path on). It loads the BPF objects with imgw-loader into a
# private bpffs (in its own mount namespace, so nothing outlives the run),
# starts one bizsvr and two gateways that differ only in --kernel-path, and
# for every workload runs imgw-bench against the userspace gateway and then
# against the kernel-path gateway. imgw-bench forces the session super,
# waits until the gateway has converged, publishes, checks every delivery
# (loss, duplicates, order) and measures the gateway's CPU time over the
# publish interval and the time until the last member has each message.
# It prints both paths side by side and unloads the objects at the end.
#
# Usage: sudo scripts/bench-kpath.sh [BUILD_DIR]   (default: build)
# Environment (defaults in brackets):
#   BENCH_MEMBERS    member counts             [1000 10000]
#   BENCH_PAYLOADS   payload sizes in bytes    [128 1024]
#   BENCH_PUBLISH    admin and/or client       [admin client]
#   BENCH_IN_FLIGHT  messages in flight        [1 8]
#   BENCH_DELIVERIES deliveries per run, sets the message count [1000000]
#   BENCH_WORKERS    imgw-bench receiving processes [1 per 5000 members]
set -u

build=${1:-build}
build=$(cd "$build" && pwd) || exit 2
script_name=bench-kpath
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
require_binaries imgw bizsvr imgw-bench imgw-loader
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-kpath: needs root to load BPF programs; run it with sudo" >&2
	exit 2
fi
if ! command -v curl >/dev/null || ! command -v unshare >/dev/null; then
	echo "bench-kpath: curl or unshare is missing; run 'make deps'" >&2
	exit 2
fi

# Runs the rest in a private mount namespace, so the bpffs below vanishes
# with the script even when it is killed.
if [ -z "${IMGW_BENCH_KPATH_NS:-}" ]; then
	IMGW_BENCH_KPATH_NS=1 exec unshare --mount --propagation private \
		"$0" "$build"
fi

members_list=${BENCH_MEMBERS:-1000 10000}
payloads=${BENCH_PAYLOADS:-128 1024}
publish_list=${BENCH_PUBLISH:-admin client}
in_flight_list=${BENCH_IN_FLIGHT:-1 8}
deliveries=${BENCH_DELIVERIES:-1000000}

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/imgw-bench-kpath.XXXXXX") || exit 1
csv=$run_dir/results.csv
bpffs=$run_dir/bpffs
pin_dir=$bpffs/imgw
loaded=0

on_exit() {
	stop_daemons
	if [ "$loaded" -eq 1 ]; then
		"$build/imgw-loader" --pin-dir "$pin_dir" unload >"$run_dir/unload.log" 2>&1 ||
			echo "bench-kpath: imgw-loader unload failed; see $run_dir/unload.log" >&2
	fi
	umount "$bpffs" 2>/dev/null
	echo "bench-kpath: logs and results.csv are in $run_dir"
}
trap on_exit EXIT
trap 'echo "bench-kpath: interrupted" >&2; exit 130' INT TERM

load_bpf() {
	mkdir -p "$bpffs" || return 1
	if ! mount -t bpf bpf "$bpffs"; then
		echo "bench-kpath: mounting a bpffs on $bpffs failed" >&2
		return 1
	fi
	if ! "$build/imgw-loader" --pin-dir "$pin_dir" load >"$run_dir/load.log" 2>&1; then
		echo "bench-kpath: imgw-loader load failed:" >&2
		cat "$run_dir/load.log" >&2
		return 1
	fi
	loaded=1
}

# Starts gateway $1 (off or on) on ports $2 and $3.
start_gateway() {
	launch_gateway "$run_dir/imgw-$1.log" "bench-kpath-$1" "$2" "$3" warn \
		--kernel-path "$1" --bpf-pin-dir "$pin_dir"
	eval "gw_${1}_pid=$gw_pid"
}

# Starts bizsvr and the two gateways. The daemons stay up for every run.
start_daemons() {
	local port

	taken=""
	for port in biz_port biz_http off_port off_http on_port on_http; do
		pick_port "$port" || return 1
	done
	secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	# Automatic upgrades and demotes stay out of the way: imgw-bench forces
	# the session super.
	launch_bizsvr "$run_dir/bizsvr.log" "$run_dir/imgw.db" warn \
		--super-upgrade-min-members 1000000
	start_gateway off "$off_port" "$off_http"
	start_gateway on "$on_port" "$on_http"
	wait_healthy "http://127.0.0.1:$biz_http/healthz" '"status": *"ok"' &&
		wait_healthy "http://127.0.0.1:$off_http/healthz" '"upstream": *"up"' &&
		wait_healthy "http://127.0.0.1:$on_http/healthz" '"upstream": *"up"' &&
		wait_healthy "http://127.0.0.1:$on_http/v1/kpath" '"enabled": *true'
}

# Runs one workload: $1 path, $2 members, $3 payload, $4 publish, $5 in flight.
run_one() {
	local path=$1 members=$2 payload=$3 via=$4 in_flight=$5
	local label="$path-$members-$payload-$via-$in_flight" port pid messages
	local workers=${BENCH_WORKERS:-$(((members + 4999) / 5000))} status

	port=$off_port pid=$gw_off_pid
	if [ "$path" = on ]; then
		port=$on_port pid=$gw_on_pid
	fi
	messages=$((deliveries / members))
	echo "bench-kpath: run $label ($messages messages)" >&2
	"$build/imgw-bench" --admin "http://127.0.0.1:$biz_http" --secret "$secret" \
		--gateway "127.0.0.1:$port" --users "$members" --workers "$workers" \
		--pin super --messages "$messages" --rate 0 --in-flight "$in_flight" \
		--payload-size "$payload" --publish "$via" --gateway-pid "$pid" \
		--bizsvr-pid "$biz_pid" --prefix "k$RANDOM-" --label "$label" \
		--csv "$csv" --json "$run_dir/$label.json" \
		>"$run_dir/$label.txt" 2>&1
	status=$?
	if [ "$status" -ne 0 ]; then
		echo "bench-kpath: run $label failed (exit $status):" >&2
		tail -n 20 "$run_dir/$label.txt" >&2
	fi
	return "$status"
}

# Prints the rows of $csv for workload $1 (without the path) side by side.
print_side_by_side() {
	awk -F, -v w="$1" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$1 == "off-" w { for (i = 1; i <= NF; i++) u[i] = $i; have_u = 1 }
	$1 == "on-" w { for (i = 1; i <= NF; i++) k[i] = $i; have_k = 1 }
	function row(title, key) {
		printf "  %-32s %12s %12s\n", title, u[col[key]], k[col[key]]
	}
	END {
		if (!have_u || !have_k) {
			printf "  (a run of this workload failed; see its log)\n"
			exit
		}
		printf "  %-32s %12s %12s\n", "", "userspace", "kernel"
		row("deliveries", "deliveries")
		row("expected", "expected")
		row("missing", "missing")
		row("duplicates", "duplicates")
		row("deliveries per second", "deliveries_per_s")
		row("gateway CPU us per delivery", "gateway_us_per_delivery")
		row("last member p50 ms", "last_p50_ms")
		row("last member p99 ms", "last_p99_ms")
		row("last member max ms", "last_max_ms")
	}' "$csv"
}

# Prints the counters of the kernel-path gateway, to show that it really
# sent through the kernel.
print_kpath_counters() {
	curl -fsS --max-time 2 "http://127.0.0.1:$on_http/metrics" 2>/dev/null |
		grep -E '^imgw_(super_deliveries_by_path_total|kpath_moved_to_user_total|kpath_errors_total)' |
		sed 's/^/  /'
}

load_bpf || exit 1
if ! start_daemons; then
	tail -n 5 "$run_dir"/*.log >&2
	exit 1
fi

failed=0
workloads=""
for members in $members_list; do
	for payload in $payloads; do
		for via in $publish_list; do
			for in_flight in $in_flight_list; do
				w="$members-$payload-$via-$in_flight"
				workloads="$workloads $w"
				for path in off on; do
					run_one "$path" "$members" "$payload" "$via" \
						"$in_flight" || failed=1
				done
			done
		done
	done
done

echo
echo "bench-kpath: $(nproc) CPUs, $(uname -r), loopback, one gateway per path"
for w in $workloads; do
	IFS=- read -r members payload via in_flight <<<"$w"
	echo "$members members, $payload B, published via $via, $in_flight in flight"
	print_side_by_side "$w"
done
echo "kernel-path gateway counters after all runs:"
print_kpath_counters
if [ "$failed" -ne 0 ]; then
	echo "bench-kpath: a run failed (loss, duplicates or errors); see the logs above" >&2
	exit 1
fi
