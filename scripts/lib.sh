# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shell functions shared by the scripts that start imgw daemons and peer
# servers on loopback: free ports, health waits, and daemon start and stop.
# Source it with bash after setting script_name (the prefix of every
# message) and build (the absolute build directory).
# The launch functions read biz_port, biz_http and secret from the caller.
# shellcheck disable=SC2154

# PIDs of the daemons to stop, the last started first. launch_bizsvr and
# launch_gateway add theirs, and a script adds the servers it starts itself.
daemon_pids=""
# Ports handed out by pick_port. A script empties it before picking a fresh
# set.
taken=""

# Exits with status 2 unless every program named in the arguments is in
# $build.
require_binaries() {
	local bin

	for bin in "$@"; do
		if [ ! -x "$build/$bin" ]; then
			echo "$script_name: $build/$bin is missing; run 'make' first" >&2
			exit 2
		fi
	done
}

# Returns success when nothing listens on 127.0.0.1:$1.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Sets the variable named $1 to port $2 when that is free, else to a random
# free port from 20000 up to the kernel's ephemeral range
# (ip_local_port_range, 32768 by default, and never above it). Ports in
# $taken are skipped, and the port is added to $taken. Ports in the
# ephemeral range may be held by the last run's client sockets in
# TIME_WAIT, which the probe cannot see but which make bind() fail. Runs in
# the caller's shell, not in a subshell, so that $RANDOM moves on. $1 must
# not name one of its locals, which printf -v would set instead.
pick_port() {
	local candidate=${2:-} tries=0 low=32768

	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	[ "$low" -gt 20100 ] && [ "$low" -le 32768 ] || low=32768
	while [ -z "$candidate" ] || ! port_free "$candidate" ||
	      [[ " $taken " == *" $candidate "* ]]; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			echo "$script_name: no free port found on 127.0.0.1" >&2
			return 1
		fi
		candidate=$((20000 + RANDOM % (low - 20000)))
	done
	printf -v "$1" '%s' "$candidate"
	taken="$taken $candidate"
}

# Waits up to 10 s until TCP port $1 accepts connections.
wait_port() {
	for _ in $(seq 100); do
		port_free "$1" || return 0
		sleep 0.1
	done
	echo "$script_name: nothing listens on 127.0.0.1:$1 after 10 s" >&2
	return 1
}

# Waits up to 10 s until URL $1 returns a body matching the regex $2.
wait_healthy() {
	local body

	for _ in $(seq 100); do
		body=$(curl -fsS --max-time 1 "$1" 2>/dev/null) &&
			[[ $body =~ $2 ]] && return 0
		sleep 0.1
	done
	echo "$script_name: $1 not healthy after 10 s; last reply: ${body:-none}" >&2
	return 1
}

# Starts bizsvr in the background on $biz_port and $biz_http with token
# secret $secret, database $2 and log level $3, logging to $1. The other
# arguments are extra bizsvr options. Sets biz_pid.
launch_bizsvr() {
	local log=$1 db=$2 level=$3

	shift 3
	"$build/bizsvr" --listen "127.0.0.1:$biz_port" --http "127.0.0.1:$biz_http" \
		--db "$db" --secret "$secret" --log-level "$level" "$@" \
		>"$log" 2>&1 &
	biz_pid=$!
	daemon_pids="$biz_pid $daemon_pids"
}

# Starts an imgw gateway in the background with node id $2, client port $3,
# admin HTTP port $4 and log level $5, linked to bizsvr on $biz_port and
# logging to $1. The other arguments are extra imgw options. Sets gw_pid.
launch_gateway() {
	local log=$1 node_id=$2 port=$3 http=$4 level=$5

	shift 5
	"$build/imgw" --listen "127.0.0.1:$port" --http "127.0.0.1:$http" \
		--bizsvr "127.0.0.1:$biz_port" --node-id "$node_id" \
		--log-level "$level" "$@" >"$log" 2>&1 &
	gw_pid=$!
	daemon_pids="$gw_pid $daemon_pids"
}

# Sends SIGTERM to every daemon in $daemon_pids, waits for them all to
# exit and empties the list.
stop_daemons() {
	local pid

	for pid in $daemon_pids; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $daemon_pids; do
		wait "$pid" 2>/dev/null
	done
	daemon_pids=""
}
