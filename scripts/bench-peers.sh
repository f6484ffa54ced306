#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the same fan-out workloads against five systems: imgw (one gateway,
# published through bizsvr's admin API to one super session, or to many
# groups left to bizsvr's rules), imgw_writev (the same with
# --flush-writev, one writev() per client instead of one io_uring
# submission per loop pass), the reference send loop (bench-sendloop),
# Redis pub/sub and Mosquitto MQTT QoS 0. Each server starts fresh on
# 127.0.0.1 for every run, with its own config in a temp dir, and stops
# after it. It writes docs/bench/peers.csv, the PNG plots in
# docs/bench/ and the peer comparison section of docs/benchmarks.md.
# Usage: scripts/bench-peers.sh [--quick] [BUILD_DIR]   (default: build)
#        scripts/bench-peers.sh --report CSV   (rewrites the plots and doc)
# --quick runs a tenth of the messages and 2,000-member big rooms.
# Environment:
#   BENCH_SYSTEMS    systems to run (default "imgw imgw_writev sendloop
#                    redis mosquitto")
#   BENCH_WORKLOADS  space-separated workload names (default all)
#   BENCH_REPEAT     passes over the whole matrix (default 1); the report
#                    shows the median of each column and the CPU range
#   BENCH_OUT, BENCH_DOC  where the CSV, plots and doc go
# Every single run is kept in peers-runs.csv next to peers.csv.
set -u

quick=0 report_only=""
if [ "${1:-}" = --quick ]; then
	quick=1
	shift
elif [ "${1:-}" = --report ]; then
	report_only=${2:?usage: bench-peers.sh --report CSV}
	set -- build
fi
build=${1:-build}
build=$(cd "$build" && pwd) || exit 2
repo=$(cd "$(dirname "$0")/.." && pwd)
script_name=bench-peers
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
require_binaries imgw bizsvr imgw-bench bench-peer bench-sendloop
for cmd in redis-server mosquitto gnuplot curl; do
	if ! command -v "$cmd" >/dev/null; then
		echo "bench-peers: $cmd is missing; run 'make deps'" >&2
		exit 2
	fi
done

systems=${BENCH_SYSTEMS:-imgw imgw_writev sendloop redis mosquitto}
only_workloads=${BENCH_WORKLOADS:-}
repeat=${BENCH_REPEAT:-1}
if ! [[ $repeat =~ ^[1-9][0-9]*$ ]]; then
	echo "bench-peers: BENCH_REPEAT must be a positive integer, not '$repeat'" >&2
	exit 2
fi
out_dir=${BENCH_OUT:-$repo/docs/bench}
doc=${BENCH_DOC:-$repo/docs/benchmarks.md}
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/imgw-bench-peers.XXXXXX") || exit 1
csv=$out_dir/peers.csv
runs_csv=$out_dir/peers-runs.csv
server_main=""

# Each workload: name members groups in_flight rate payload_bytes messages.
if [ "$quick" = 1 ]; then
	big=2000 scale=10
else
	big=10000 scale=1
fi
workloads="room1k-if1-128B 1000 1 1 0 128 $((1000 / scale))
room1k-if64-128B 1000 1 64 0 128 $((2000 / scale))
room1k-if1-1KiB 1000 1 1 0 1024 $((1000 / scale))
room1k-if64-1KiB 1000 1 64 0 1024 $((2000 / scale))
room1k-rate200-128B 1000 1 64 200 128 $((2000 / scale))
roombig-if1-128B $big 1 1 0 128 $((100 / scale))
roombig-if64-128B $big 1 64 0 128 $((200 / scale))
roombig-if1-1KiB $big 1 1 0 1024 $((100 / scale))
roombig-if64-1KiB $big 1 64 0 1024 $((200 / scale))
zipf500-rate5000-128B 5000 500 64 5000 128 $((20000 / scale))"

on_exit() {
	stop_daemons
	echo "bench-peers: logs and raw CSV are in $run_dir"
}
trap on_exit EXIT
trap 'echo "bench-peers: interrupted" >&2; exit 130' INT TERM

start_redis() {
	local dir=$1

	cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
save ""
appendonly no
dir $dir
maxclients 19000
logfile $dir/redis.log
CONF
	redis-server "$dir/redis.conf" &
	daemon_pids=$! server_main=$!
	wait_port "$port"
}

start_mosquitto() {
	local dir=$1

	cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
CONF
	mosquitto -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
	daemon_pids=$! server_main=$!
	wait_port "$port"
}

start_sendloop() {
	"$build/bench-sendloop" "$port" 2>"$1/sendloop.log" &
	daemon_pids=$! server_main=$!
	wait_port "$port"
}

# Starts bizsvr and one gateway with the extra gateway flags after $1;
# sets biz_http, gw_port and secret.
start_imgw() {
	local dir=$1 p

	shift
	for p in biz_port biz_http gw_http; do
		pick_port "$p" || return 1
	done
	gw_port=$port
	secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	launch_bizsvr "$dir/bizsvr.log" "$dir/imgw.db" warn
	launch_gateway "$dir/imgw.log" bench-gw1 "$gw_port" "$gw_http" warn "$@"
	server_main=$gw_pid
	wait_healthy "http://127.0.0.1:$biz_http/healthz" '"status": *"ok"' &&
		wait_healthy "http://127.0.0.1:$gw_http/healthz" '"upstream": *"up"'
}

# The same gateway writing each client with its own writev(): the baseline
# for the io_uring flush.
start_imgw_writev() {
	start_imgw "$1" --flush-writev
}

# Converts the last imgw-bench CSV row of $1 into a peers.csv row of
# system $5.
imgw_row() {
	awk -F, -v w="$2" -v g="$3" -v st="$4" -v sys="$5" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{ for (i = 1; i <= NF; i++) v[i] = $i }
	function f(k) { return v[c[k]] }
	END {
		d = f("deliveries")
		tot = d ? (f("gateway_cpu_us") + f("bizsvr_cpu_us")) / d : 0
		biz = d ? f("bizsvr_cpu_us") / d : 0
		printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.4f,%s,%.4f,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
			sys, w, f("members"), g, f("in_flight"), f("rate"),
			f("payload_bytes"), f("published"), f("deliveries"),
			f("expected"), f("missing"), f("duplicates"),
			f("deliveries_per_s"), tot, f("gateway_us_per_delivery"),
			biz, f("gateway_peak_rss_kb") + f("bizsvr_peak_rss_kb"),
			f("lat_p50_ms"), f("lat_p99_ms"), f("lat_p999_ms"),
			f("lat_max_ms"), f("last_p50_ms"), f("last_p99_ms"),
			f("last_p999_ms"), f("last_max_ms"), st
	}' "$1"
}

# Converts the last bench-peer CSV row of $1 into a peers.csv row.
peer_row() {
	awk -F, -v st="$2" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{ for (i = 1; i <= NF; i++) v[i] = $i }
	function f(k) { return v[c[k]] }
	END {
		printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
			f("system"), f("workload"), f("members"), f("groups"),
			f("in_flight"), f("rate"), f("payload_bytes"),
			f("published"), f("deliveries"), f("expected"),
			f("missing"), f("duplicates"), f("deliveries_per_s"),
			f("server_us_per_delivery"), f("server_us_per_delivery"),
			f("server_peak_rss_kb"), f("lat_p50_ms"), f("lat_p99_ms"),
			f("lat_p999_ms"), f("lat_max_ms"), f("last_p50_ms"),
			f("last_p99_ms"), f("last_p999_ms"), f("last_max_ms"), st
	}' "$1"
}

# Runs workload $1 (name members groups in_flight rate bytes messages)
# against system $2 and appends its row to $csv.
run_one() {
	local name=$1 members=$2 groups=$3 in_flight=$4 rate=$5 bytes=$6
	local messages=$7 system=$8 dir status raw pid pids="" shape

	dir=$run_dir/$name-$system
	mkdir -p "$dir"
	taken=""
	pick_port port || return 1
	echo "bench-peers: $name on $system" >&2
	if ! "start_$system" "$dir"; then
		stop_daemons
		echo "$system,$name,$members,$groups,$in_flight,$rate,$bytes,,,,,,,,,,,,,,,,,,,server failed to start" >>"$runs_csv"
		return 1
	fi
	raw=$dir/raw.csv
	if [[ $system == imgw* ]]; then
		# Count worker processes too, should the gateway fork any.
		pids="--gateway-pid $server_main"
		for pid in $(pgrep -P "$server_main"); do
			pids="$pids --gateway-pid $pid"
		done
		# One room is pinned super. Many groups get the same Zipf sizes
		# and message targets as bench-peer (same --zipf and --seed
		# defaults), and bizsvr's rules pick each group's mode.
		shape="--pin super"
		[ "$groups" -gt 1 ] && shape="--groups $groups"
		# shellcheck disable=SC2086
		"$build/imgw-bench" --admin "http://127.0.0.1:$biz_http" --secret "$secret" \
			--gateway "127.0.0.1:$gw_port" --users "$members" \
			--workers $(((members + 4999) / 5000 > 1 ? (members + 4999) / 5000 : 2)) \
			$shape --window delivered --messages "$messages" --rate "$rate" \
			--in-flight "$in_flight" --payload-size "$bytes" \
			--bizsvr-pid "$biz_pid" $pids --label "$name" --csv "$raw" \
			>"$dir/summary.txt" 2>"$dir/bench.log"
		status=$?
	else
		"$build/bench-peer" --system "$system" --port "$port" \
			--members "$members" --groups "$groups" --in-flight "$in_flight" \
			--rate "$rate" --payload-size "$bytes" --messages "$messages" --window delivered \
			--server-pid "$server_main" --workload "$name" --csv "$raw" \
			>"$dir/summary.txt" 2>"$dir/bench.log"
		status=$?
	fi
	cat "$dir/summary.txt"
	stop_daemons
	if [ ! -s "$raw" ]; then
		echo "$system,$name,$members,$groups,$in_flight,$rate,$bytes,,,,,,,,,,,,,,,,,,,run failed" >>"$runs_csv"
		tail -n 3 "$dir/bench.log" >&2
		return 1
	fi
	if [[ $system == imgw* ]]; then
		imgw_row "$raw" "$name" "$groups" "$([ $status = 0 ] && echo ok || echo FAILED)" "$system" >>"$runs_csv"
	else
		peer_row "$raw" "$([ $status = 0 ] && echo ok || echo FAILED)" >>"$runs_csv"
	fi
	return "$status"
}

# Prints runs CSV $1 with one row per system and workload: the median of
# every figure over the runs, the status "ok" or "FAILED k/n", and the
# columns runs, cpu_min and cpu_max appended.
median_rows() {
	awk -F, -v OFS=, '
	function median(key, col, runs,   vals, cnt, j, k, t) {
		cnt = 0
		for (j = 1; j <= runs; j++)
			if (v[key, col, j] != "")
				vals[++cnt] = v[key, col, j] + 0
		if (!cnt)
			return ""
		for (j = 2; j <= cnt; j++)
			for (k = j; k > 1 && vals[k - 1] > vals[k]; k--) {
				t = vals[k]; vals[k] = vals[k - 1]; vals[k - 1] = t
			}
		return cnt % 2 ? vals[(cnt + 1) / 2] : (vals[cnt / 2] + vals[cnt / 2 + 1]) / 2
	}
	function bound(key, col, runs, want_max,   j, x, have) {
		have = 0
		for (j = 1; j <= runs; j++) {
			if (v[key, col, j] == "")
				continue
			if (!have || (want_max ? v[key, col, j] + 0 > x : v[key, col, j] + 0 < x))
				x = v[key, col, j] + 0
			have = 1
		}
		return have ? x : ""
	}
	NR == 1 {
		ncol = NF
		for (i = 1; i <= NF; i++)
			c[$i] = i
		print $0, "runs", "cpu_min", "cpu_max"
		next
	}
	{
		key = $1 SUBSEP $2
		if (!(key in n)) {
			order[++nkeys] = key
			name[key] = $1 OFS $2
		}
		r = ++n[key]
		for (i = 3; i < ncol; i++)
			v[key, i, r] = $i
		if ($ncol != "ok")
			bad[key]++
	}
	END {
		cpu = c["cpu_us_per_delivery"]
		for (o = 1; o <= nkeys; o++) {
			key = order[o]
			line = name[key]
			for (i = 3; i < ncol; i++)
				line = line OFS median(key, i, n[key])
			line = line OFS (bad[key] ? "FAILED " bad[key] "/" n[key] : "ok")
			print line, n[key], bound(key, cpu, n[key], 0), bound(key, cpu, n[key], 1)
		}
	}' "$1"
}

# Prints the markdown table of workload $2 from peers.csv $1.
workload_table() {
	awk -F, -v w="$2" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	function f(k) { return $c[k] }
	$2 != w { next }
	!hdr {
		hdr = 1
		printf "| system | deliveries | lost / dup | deliveries/s | server CPU us/delivery | peak RSS MB | per delivery p50 / p99 / p99.9 / max ms | last member p50 / p99 / p99.9 / max ms |\n"
		printf "|---|---|---|---|---|---|---|---|\n"
	}
	f("status") != "ok" && f("deliveries") == "" {
		printf "| %s | %s | | | | | | |\n", f("system"), f("status")
		next
	}
	{
		cpu = sprintf("%.2f", f("cpu_us_per_delivery"))
		if (f("system") ~ /^imgw/)
			cpu = sprintf("%.2f (gateway %.2f + bizsvr %.2f)", f("cpu_us_per_delivery"),
				      f("server_us_per_delivery"), f("bizsvr_us_per_delivery"))
		if (f("runs") > 1)
			cpu = sprintf("%s, range %.2f-%.2f", cpu, f("cpu_min"), f("cpu_max"))
		lost = sprintf("%d / %d", f("expected") - f("deliveries"), f("duplicates"))
		if (f("status") != "ok")
			lost = lost " " f("status")
		printf "| %s | %d | %s | %.0f | %s | %.1f | %.2f / %.2f / %.2f / %.2f | %.2f / %.2f / %.2f / %.2f |\n",
			f("system"), f("deliveries"), lost, f("deliveries_per_s"), cpu,
			f("peak_rss_kb") / 1024, f("lat_p50_ms"), f("lat_p99_ms"),
			f("lat_p999_ms"), f("lat_max_ms"), f("last_p50_ms"),
			f("last_p99_ms"), f("last_p999_ms"), f("last_max_ms")
	}' "$1"
}

# Writes $3/<name>.dat: one line per workload, one column per system, of
# CSV column $2 (blank rows become "-", which gnuplot skips).
plot_data() {
	awk -F, -v col="$2" -v systems="$4" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{
		if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
		v[$2, $1] = $c[col] == "" ? "-" : $c[col]
	}
	END {
		ns = split(systems, s, " ")
		for (i = 1; i <= n; i++) {
			line = order[i]
			for (k = 1; k <= ns; k++)
				line = line " " ((order[i], s[k]) in v ? v[order[i], s[k]] : "-")
			print line
		}
	}' "$1" >"$3"
}

# Draws clustered bars of data file $1 (one column per system) to PNG $2.
plot_bars() {
	local data=$1 png=$2 title=$3 ylabel=$4 systems=$5 i=2 cmd="" sys

	for sys in $systems; do
		cmd="$cmd${cmd:+, }'$data' using $i:xtic(1) title '$sys'"
		i=$((i + 1))
	done
	gnuplot <<PLOT
set terminal pngcairo size 1100,520 noenhanced font ",10"
set output '$png'
set title '$title'
set ylabel '$ylabel'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set grid ytics
set key top left
set xtics rotate by -30
set datafile missing '-'
plot $cmd
PLOT
}

# Draws the latency percentiles of every system in workload $2 to PNG $3.
plot_workload_latency() {
	local data=$run_dir/lat-$2.dat

	awk -F, -v w="$2" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$2 == w && $c["lat_p50_ms"] != "" {
		printf "%s %s %s %s %s %s %s %s %s\n", $1, $c["lat_p50_ms"], $c["lat_p99_ms"],
			$c["lat_p999_ms"], $c["lat_max_ms"], $c["last_p50_ms"],
			$c["last_p99_ms"], $c["last_p999_ms"], $c["last_max_ms"]
	}' "$1" >"$data"
	[ -s "$data" ] || return 0
	gnuplot <<PLOT
set terminal pngcairo size 900,480 noenhanced font ",10"
set output '$3'
set title 'Latency percentiles, $2 (ms, log scale)'
set ylabel 'ms'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set grid ytics
set key outside right
plot '$data' using 2:xtic(1) title 'delivery p50', '' using 3 title 'delivery p99', \
     '' using 4 title 'delivery p99.9', '' using 6 title 'last member p50', \
     '' using 7 title 'last member p99', '' using 8 title 'last member p99.9', \
     '' using 9 title 'last member max'
PLOT
}

# Writes the plots and replaces the generated part of $doc from CSV $1.
write_report() {
	local csv_in=$1 elapsed=$2 section=$run_dir/section.md w runs
	local begin='<!-- bench-peers: generated by scripts/bench-peers.sh, do not edit -->'
	local end='<!-- bench-peers: end -->'
	local sys_list

	sys_list=$(awk -F, 'NR > 1 && !seen[$1]++ { printf "%s ", $1 }' "$csv_in")

	runs=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "runs") col = i; next }
		col && $col > max { max = $col } END { print max + 0 }' "$csv_in")
	mkdir -p "$out_dir"
	[ "$csv_in" -ef "$out_dir/peers.csv" ] || cp "$csv_in" "$out_dir/peers.csv"
	plot_data "$csv_in" cpu_us_per_delivery "$run_dir/cpu.dat" "$sys_list"
	plot_bars "$run_dir/cpu.dat" "$out_dir/cpu-per-delivery.png" \
		'Server CPU per delivery (imgw: gateway + bizsvr)' 'us per delivery' "$sys_list"
	plot_data "$csv_in" last_p99_ms "$run_dir/last99.dat" "$sys_list"
	plot_bars "$run_dir/last99.dat" "$out_dir/last-member-p99.png" \
		'Latency p99 until the last member has a message' 'ms' "$sys_list"
	{
		echo "$begin"
		echo
		echo "## Peer comparison: imgw, send loop, Redis, Mosquitto"
		echo
		echo "imgw_writev is imgw started with \`--flush-writev\`: the baseline for the"
		echo "io_uring flush, in the same run."
		if [ "$runs" -gt 1 ]; then
			echo
			echo "Each row is the median of $runs runs, taken per column; the CPU"
			echo "column adds the range over the runs. The runs of all systems"
			echo "alternate (\`BENCH_REPEAT=$runs\`), and every single run is in"
			echo "\`docs/bench/peers-runs.csv\`."
		fi
		echo
		echo "Command: \`$([ "$runs" -gt 1 ] && echo "BENCH_REPEAT=$runs ")scripts/bench-peers.sh$([ "$quick" = 1 ] && echo ' --quick') build\`" \
			"(this run: ${elapsed:-?} s, gateway commit" \
			"$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown))." \
			"Machine: $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)," \
			"Linux $(uname -r), everything on loopback; servers, load generator" \
			"and subscribers share the CPUs. Raw figures: \`docs/bench/peers.csv\`."
		echo
		echo "![server CPU per delivery](bench/cpu-per-delivery.png)"
		echo
		echo "![last member p99](bench/last-member-p99.png)"
		echo
		for w in $(awk -F, 'NR > 1 && !s[$2]++ { print $2 }' "$csv_in"); do
			echo "### $w"
			echo
			workload_table "$csv_in" "$w"
			echo
			plot_workload_latency "$csv_in" "$w" "$out_dir/latency-$w.png"
			[ -f "$out_dir/latency-$w.png" ] && echo "![latency $w](bench/latency-$w.png)" && echo
		done
		echo "$end"
	} >"$section"
	if [ -f "$doc" ] && grep -qF "$begin" "$doc"; then
		awk -v b="$begin" -v e="$end" -v f="$section" '
		$0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
		$0 == e { skip = 0; next }
		!skip' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
	else
		{ echo; cat "$section"; } >>"$doc"
	fi
	echo "bench-peers: wrote $doc and the plots in $out_dir"
}

if [ -n "$report_only" ]; then
	write_report "$report_only" ""
	exit
fi

mkdir -p "$out_dir"
ulimit -n "$(ulimit -Hn)"
echo "system,workload,members,groups,in_flight,rate,payload_bytes,published,deliveries,expected,missing,duplicates,deliveries_per_s,cpu_us_per_delivery,server_us_per_delivery,bizsvr_us_per_delivery,peak_rss_kb,lat_p50_ms,lat_p99_ms,lat_p999_ms,lat_max_ms,last_p50_ms,last_p99_ms,last_p999_ms,last_max_ms,status" >"$runs_csv"
failed=0
started=$(date +%s)
for pass in $(seq "$repeat"); do
	[ "$repeat" -gt 1 ] && echo "bench-peers: pass $pass of $repeat" >&2
	while read -r name members groups in_flight rate bytes messages; do
		if [ -n "$only_workloads" ] && [[ " $only_workloads " != *" $name "* ]]; then
			continue
		fi
		for system in $systems; do
			run_one "$name" "$members" "$groups" "$in_flight" "$rate" "$bytes" \
				"$messages" "$system" || failed=1
		done
	done <<<"$workloads"
done
elapsed=$(($(date +%s) - started))
median_rows "$runs_csv" >"$csv"

write_report "$csv" "$elapsed" || failed=1
if [ "$failed" -ne 0 ]; then
	echo "bench-peers: a run failed (loss, duplicates or errors); see $csv" >&2
	exit 1
fi
