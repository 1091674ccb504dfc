#!/usr/bin/env bash
# iowhy serve's cost, in one run (root; bench/run.sh calls it too):
#
#   cargo build --release && sudo bench/serve.sh [N_PROCESSES] [CHURN_SECONDS]
#
# 1. at N processes (default 2000): CPU per sample of `iowhy serve --interval 1s` against
#    one `iowhy snapshot --light` (goal <= 1.3x), CPU per scrape, series per scrape
#    (goal <= 1500), RSS;
# 2. RSS after CHURN_SECONDS (default 600; the goal is stated for 3600) of process churn
#    with ever-new names, sampling every second (goal <= 50 MiB);
# 3. a fsync-per-line writer's speed untraced vs under `iowhy serve` defaults
#    (interleaved rounds; goal >= 97%).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${IOWHY_BIN:-target/release/iowhy}
n=${1:-2000}
churn_s=${2:-600}
# The live tests' lock: no lab of theirs runs while we measure.
install -d -m 700 /run/iowhy-tests
exec 8>/run/iowhy-tests/live.lock
flock 8
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
port=10091
scrape() { curl -s "127.0.0.1:$port/metrics"; }
wait_up() { for _ in $(seq 100); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done; }

echo "## iowhy serve with $n extra processes"
for _ in $(seq "$n"); do sleep 3600 & pids+=($!); done
sleep 1
total=$(ls -d /proc/[0-9]* | wc -l)
echo "processes running: $total"
light=()
serve_cpu=()
for round in 1 2 3; do
  /usr/bin/time -f "%U %S" -o "$tmp/t" "$bin" snapshot --light --repeat 5 >/dev/null
  light+=("$(awk '{printf "%.4f", ($1+$2)/5}' "$tmp/t")")
  "$bin" serve --interval 1s --web.listen-address "127.0.0.1:$port" & sp=$!
  wait_up; sleep 3
  t0=$(ticks "$sp"); s0=$(date +%s.%N)
  sleep 20
  t1=$(ticks "$sp"); s1=$(date +%s.%N)
  serve_cpu+=("$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$hz" 'BEGIN{printf "%.4f", (b-a)/hz/(e-s)}')")
  series=$(scrape | grep -vc '^#')
  rss=$(awk '/VmRSS/{print int($2/1024)}' "/proc/$sp/status")
  kill "$sp"; wait "$sp" 2>/dev/null || true
done
lmin=$(printf '%s\n' "${light[@]}" | sort -n | head -1)
smin=$(printf '%s\n' "${serve_cpu[@]}" | sort -n | head -1)
echo "| snapshot --light, CPU per snapshot | ${light[*]} s | best $lmin s |"
echo "| serve --interval 1s, CPU per sample | ${serve_cpu[*]} s | best $smin s | $(awk -v a="$smin" -v b="$lmin" 'BEGIN{printf "%.2fx light", a/b}') |"
echo "| series per scrape | $series | RSS ${rss} MiB |"
# CPU per scrape: a sampler that does not sample during the measurement (1 h interval).
"$bin" serve --interval 1h --web.listen-address "127.0.0.1:$port" & sp=$!
wait_up; sleep 2
t0=$(ticks "$sp")
for _ in $(seq 200); do scrape >/dev/null; done
t1=$(ticks "$sp")
echo "| CPU per scrape (200 scrapes, no sample in between) | $(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.5f s", (b-a)/hz/200}') |"
kill "$sp"; wait "$sp" 2>/dev/null || true
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

echo
echo "## RSS after ${churn_s} s of churn (short-lived processes with new names, ~100/s), sampling every second"
"$bin" serve --interval 1s --web.listen-address "127.0.0.1:$port" & sp=$!
pids+=($sp)
wait_up
bash -c 'i=0; while :; do for j in 1 2 3 4 5 6 7 8 9 10; do (exec -a "churn$i-$j" sleep 0.05) & done; wait; i=$((i+1)); done' & cp=$!
pids+=($cp)
for t in $(seq 0 60 "$churn_s"); do
  [ "$t" -gt 0 ] && sleep 60
  echo "| t=${t}s | RSS $(awk '/VmRSS/{print int($2/1024)}' "/proc/$sp/status") MiB | series $(scrape | grep -vc '^#') |"
done
kill "$cp" "$sp" 2>/dev/null || true
wait 2>/dev/null || true
pids=()

echo
echo "## A fsync-per-line writer: untraced vs under iowhy serve defaults (interleaved rounds, 4 s each)"
"$bin" lab fsync-logger --duration 600s --format json >"$tmp/lab.json" &
pids+=($!)
sleep 2
log=$(sed -n 's/.*"paths":\["\([^"]*\)".*/\1/p' "$tmp/lab.json")
lines_per_s() {
  local l0 l1 t0 t1
  l0=$(wc -l <"$log"); t0=$(date +%s.%N)
  sleep 4
  l1=$(wc -l <"$log"); t1=$(date +%s.%N)
  awk -v a="$l0" -v b="$l1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", (b-a)/(e-s)}'
}
un=(); sv=()
for round in 1 2 3 4 5; do
  un+=("$(lines_per_s)")
  "$bin" serve --web.listen-address "127.0.0.1:$port" >/dev/null 2>&1 & sp=$!
  wait_up; sleep 3
  sv+=("$(lines_per_s)")
  kill "$sp"; wait "$sp" 2>/dev/null || true
done
mean() { printf '%s\n' "$@" | awk '{s+=$1} END{print s/NR}'; }
mu=$(mean "${un[@]}"); ms=$(mean "${sv[@]}")
echo "| untraced | lines/s: ${un[*]} | mean $mu |"
echo "| under iowhy serve (perf layer, 15 s samples) | lines/s: ${sv[*]} | mean $ms | $(awk -v a="$ms" -v b="$mu" 'BEGIN{printf "%.1f%% of untraced", 100*a/b}') |"
