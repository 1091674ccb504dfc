#!/usr/bin/env bash
# The figures of the closing notes, each measured against the tool iowhy replaces, in one
# run on this machine (root). Nothing here is a pass/fail test: it prints numbers.
#
#   cargo build --release && sudo bench/run.sh [N_PROCESSES]    (default 2000)
#
# 1. µs per process for one snapshot with ~N processes running, against
#    `ps -eo pid,stat,comm` and `pidstat -d 1 1` (CPU time, same run);
# 2. `iowhy diagnose` with a 5 s window: wall, CPU, peak RSS;
# 3. a fsync-per-line writer's speed untraced, traced by iowhy (ebpf, perf), and under
#    `strace -c -f -p` — interleaved rounds;
# 4. iowhy's CPU per 100k trace events and lost events at the highest syscall rate this
#    machine produces (dd bs=1 to /dev/null).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${IOWHY_BIN:-target/release/iowhy}
n=${1:-2000}
lock=/tmp/iowhy-live-tests.lock
exec 9>"$lock"
flock 9

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cpu() { # user+sys seconds of a command, from /usr/bin/time
  /usr/bin/time -f "%U %S %e %M" -o "$tmp/t" "$@" >/dev/null 2>&1 || true
  awk '{printf "%.4f %.3f %d\n", $1+$2, $3, $4}' "$tmp/t"
}

echo "## Snapshot cost with $n extra processes"
for _ in $(seq "$n"); do sleep 3600 & pids+=($!); done
sleep 1
total=$(ls -d /proc/[0-9]* | wc -l)
echo "processes running: $total"
best() { sort -n | head -1; }
ours_full=$(for _ in 1 2 3; do cpu "$bin" snapshot --repeat 3; done | awk '{print $1/3}' | best)
ours_light=$(for _ in 1 2 3; do cpu "$bin" snapshot --light --repeat 3; done | awk '{print $1/3}' | best)
ps_cpu=$(for _ in 1 2 3; do cpu ps -eo pid,stat,comm; done | awk '{print $1}' | best)
pidstat_cpu=$(for _ in 1 2 3; do cpu pidstat -d 1 1; done | awk '{print $1}' | best)
us() { awk -v c="$1" -v n="$total" 'BEGIN{printf "%.1f", c*1e6/n}'; }
echo "| reader | CPU per snapshot | µs per process |"
echo "|---|---|---|"
echo "| iowhy snapshot (full: stat, status, io, cmdline, wchan, cgroup, threads, fds) | ${ours_full}s | $(us "$ours_full") |"
echo "| iowhy snapshot --light (stat, status, io: what top reads) | ${ours_light}s | $(us "$ours_light") |"
echo "| ps -eo pid,stat,comm | ${ps_cpu}s | $(us "$ps_cpu") |"
echo "| pidstat -d 1 1 (two scans of stat + io) | ${pidstat_cpu}s | $(us "$pidstat_cpu") |"
echo
echo "reader vs the procfs crate (stat+status+io, same run):"
ROUNDS=5 cargo bench --bench scan 2>/dev/null | tail -3
echo
echo "## diagnose, 5 s window ($total processes)"
for t in auto off; do
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/d" "$bin" diagnose -d 5s --tracing "$t" -f json >"$tmp/d.json"
  read -r wall u s rss <"$tmp/d"
  layer=$(grep -o '"tracing": "[a-z]*"' "$tmp/d.json" | head -1 | cut -d'"' -f4)
  echo "| --tracing $t ($layer) | wall ${wall}s | CPU $(awk -v a="$u" -v b="$s" 'BEGIN{print a+b}')s | peak RSS $((rss / 1024)) MiB |"
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
echo
echo "## A fsync-per-line writer: untraced vs iowhy vs strace (interleaved rounds, 4 s each, measured once the tracer is attached)"
"$bin" lab fsync-logger --duration 600s --format json >"$tmp/lab.json" &
pids+=($!)
sleep 2
wpid=$(sed -n 's/.*"pids":\[\([0-9]*\).*/\1/p' "$tmp/lab.json")
log=$(sed -n 's/.*"paths":\["\([^"]*\)".*/\1/p' "$tmp/lab.json")
lines_per_s() { # the writer's own rate over 4 s, from its log
  local l0 l1 t0 t1
  l0=$(wc -l <"$log"); t0=$(date +%s.%N)
  sleep 4
  l1=$(wc -l <"$log"); t1=$(date +%s.%N)
  awk -v a="$l0" -v b="$l1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", (b-a)/(e-s)}'
}
during() { # the writer's rate while "$@" runs, measured after it has attached
  "$@" >/dev/null 2>&1 &
  local p=$!
  sleep 3
  lines_per_s
  kill -INT "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
declare -A sum
for round in 1 2 3 4 5; do
  sum[untraced]+=" $(lines_per_s)"
  sum[ebpf]+=" $(during "$bin" trace --pid "$wpid" --tracing ebpf -d 60s)"
  sum[perf]+=" $(during "$bin" trace --pid "$wpid" --tracing perf -d 60s)"
  sum[strace]+=" $(during strace -c -f -p "$wpid")"
done
base=$(echo ${sum[untraced]} | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; print s/NF}')
for k in untraced ebpf perf strace; do
  m=$(echo ${sum[$k]} | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; print s/NF}')
  echo "| $k | lines/s:${sum[$k]} | mean $m | $(awk -v m="$m" -v b="$base" 'BEGIN{printf "%+.1f%%", (m/b-1)*100}') |"
done
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()
echo
echo "## Trace consumer cost and losses at the highest syscall rate (dd bs=1 to /dev/null)"
for layer in perf ebpf; do
  timeout 8 dd if=/dev/zero of=/dev/null bs=1 count=100000000 2>/dev/null &
  pids+=($!)
  sleep 0.5
  /usr/bin/time -f "%U %S %M" -o "$tmp/c" "$bin" trace --tracing "$layer" -d 5s -f json >"$tmp/tr.json"
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
  python3 - "$tmp/tr.json" "$tmp/c" "$layer" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); u, s, rss = map(float, open(sys.argv[2]).read().split())
ev, lost = t["events"], t["lost_events"]
print(f"| {sys.argv[3]} | {ev/t['duration_s']:.0f} events/s | lost {lost} ({100*lost/max(ev+lost,1):.2f}%) | "
      f"consumer {t['consumer_cpu_s']:.3f} s = {1e5*t['consumer_cpu_s']/max(ev,1)*1e3:.1f} ms per 100k events | process CPU {u+s:.2f} s | peak RSS {rss/1024:.0f} MiB |")
PY
done

echo
echo "## A syscall-bound loop: dd bs=1 to /dev/null (one read + one write per byte), µs per byte"
ddrun() { # $1 = count, rest = wrapper; prints µs per byte
  local n=$1; shift
  /usr/bin/time -f "%e" -o "$tmp/dd" "$@" dd if=/dev/zero of=/dev/null bs=1 count="$n" 2>/dev/null
  awk -v t="$(cat "$tmp/dd")" -v n="$n" 'BEGIN{printf "%.3f", t*1e6/n}'
}
for round in 1 2 3; do
  plain=$(ddrun 3000000)
  "$bin" trace --tracing ebpf -d 300s >/dev/null 2>&1 & p=$!; sleep 3
  eb=$(ddrun 3000000); kill -INT $p; wait $p 2>/dev/null || true
  "$bin" trace --tracing perf -d 300s >/dev/null 2>&1 & p=$!; sleep 2
  pf=$(ddrun 3000000); kill -INT $p; wait $p 2>/dev/null || true
  st=$(ddrun 50000 strace -f -c -o /dev/null)
  echo "| round $round | untraced $plain | iowhy ebpf $eb | iowhy perf $pf | strace -c -f $st |"
done

echo
bench/serve.sh "$n" "${IOWHY_SERVE_CHURN_S:-600}"
echo
bench/record.sh "${IOWHY_RECORD_S:-600}" 500 "$n"
