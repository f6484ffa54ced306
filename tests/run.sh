#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the built tests: ./tests/run.sh BUILD_DIR unit|integ|web|all.
# Every test binary runs on its own; the script fails if any of them fails.
# The web set runs tests/web with Node (npm ws and Playwright with Debian's
# Chromium) after installing its packages from package-lock.json.
set -u

build=${1:?usage: tests/run.sh BUILD_DIR unit|integ|all}
which=${2:-all}
failed=""
count=0

# Sanitizer reports fail the run: the tests and the daemons they start exit
# non-zero on the first report.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=66"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=67"
export IMGW_BUILD="$(cd "$build" && pwd)"

run_dir() {
	for t in "$build"/tests/"$1"/test_*; do
		[ -x "$t" ] || continue
		count=$((count + 1))
		echo "=== $1/$(basename "$t")"
		if ! "$t"; then
			failed="$failed $1/$(basename "$t")"
		fi
	done
}

run_web() {
	count=$((count + 1))
	echo "=== web (node --test in tests/web)"
	# Node 18 (Debian 12's nodejs) has no --test-concurrency option.
	serial=""
	if [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
		serial="--test-concurrency=1"
	fi
	if ! (cd "$(dirname "$0")/web" &&
	      npm ci --no-audit --no-fund --loglevel=error &&
	      node --test $serial); then
		failed="$failed web"
	fi
}

case "$which" in
unit) run_dir unit ;;
integ) run_dir integ ;;
web) run_web ;;
all) run_dir unit; run_dir integ; run_web ;;
*) echo "run.sh: unknown test set '$which' (expected unit, integ, web or all)" >&2; exit 2 ;;
esac

if [ -n "$failed" ]; then
	echo "FAILED ($build):$failed"
	exit 1
fi
echo "all $count test programs passed ($build)"
