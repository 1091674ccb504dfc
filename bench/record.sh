#!/usr/bin/env bash
# The flight recorder: the storage decision of issue 12, measured (root; nothing here
# fails a build, it prints numbers):
#
#   cargo build --release && sudo bench/record.sh [SECONDS] [N_PROCESSES...]
#
# SECONDS of recording per size (default 600: 60 samples at --interval 10s), at each
# N_PROCESSES (default 500 2000) with an `iowhy lab fsync-logger` writing and ~10
# short-lived processes a second (churn), as on a busy node:
# 1. segment files (what iowhy record writes): bytes per sample and per day, CPU per
#    sample of the recorder (goals at 500 processes: <= 100 MB/day, <= 1% of one core);
# 2. the alternative, SQLite (python3's sqlite3: the same C library rusqlite bundles; WAL,
#    synchronous=NORMAL, one row per sample): the same samples as zstd blobs alone and as
#    `zstd --patch-from` the previous sample (the delta the segments use): bytes and CPU
#    per insert;
# 3. crash: 10 times, kill -9 of a recorder at a random instant, then `record ls`: every
#    sample but the one being written reads back, and a torn tail is a note; a SQLite
#    writer killed -9 mid-transaction, then `PRAGMA integrity_check`;
# 4. `diagnose --at` over the whole recording (--window 24h), per interval, extrapolated
#    to a day at 10 s (goal: under 2 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${IOWHY_BIN:-target/release/iowhy}
secs=${1:-600}
shift || true
sizes=("${@:-500 2000}")
# shellcheck disable=SC2206
sizes=(${sizes[*]})
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
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

for n in "${sizes[@]}"; do
  echo "## $n processes, ${secs} s at --interval 10s"
  base=$(ls -d /proc/[0-9]* | wc -l)
  for _ in $(seq $((n > base ? n - base : 0))); do sleep 7200 & pids+=($!); done
  "$bin" lab fsync-logger --duration "$((secs * 3 + 120))s" --rate 200 >/dev/null & pids+=($!)
  bash -c 'while :; do for j in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.2) & done; wait; sleep 0.8; done' & pids+=($!)
  sleep 2
  echo "processes running: $(ls -d /proc/[0-9]* | wc -l)"

  # 1. segment files
  store=$tmp/store-$n
  "$bin" record --dir "$store" --interval 10s & rp=$!
  sleep 5
  t0=$(ticks "$rp")
  sleep "$secs"
  t1=$(ticks "$rp")
  kill "$rp"; wait "$rp" 2>/dev/null || true
  ls_json=$("$bin" record ls --dir "$store" --format json)
  samples=$(echo "$ls_json" | json 'd["samples"]')
  bytes=$(echo "$ls_json" | json 'd["bytes"]')
  per=$(awk -v b="$bytes" -v s="$samples" 'BEGIN{printf "%.0f", b/s}')
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" 'BEGIN{printf "%.4f", (b-a)/hz/(s/10)}')
  echo "| segments (zstd 3, delta on the previous sample, key every 32) | $samples samples | $per B/sample | $(awk -v p="$per" 'BEGIN{printf "%.1f MB/day", p*8640/1e6}') | CPU $cpu s/sample = $(awk -v c="$cpu" 'BEGIN{printf "%.2f%%", c/10*100}') of a core |"

  # 2. SQLite with the same kind of samples (full snapshots, 10 s apart)
  snaps=$tmp/snaps-$n
  mkdir -p "$snaps"
  k=$((secs / 10 < 30 ? secs / 10 : 30))
  for i in $(seq -w 1 "$k"); do "$bin" snapshot >"$snaps/$i.json"; sleep 10; done
  python3 - "$snaps" "$tmp/db-$n" <<'EOF'
import os, sqlite3, subprocess, sys, time
snaps, db = sys.argv[1], sys.argv[2]
files = sorted(os.listdir(snaps))
for mode in ("alone", "patch-from"):
    path = f"{db}-{mode}.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE s (t INTEGER PRIMARY KEY, b BLOB)")
    cpu = 0.0; prev = None
    for i, f in enumerate(files):
        src = os.path.join(snaps, f)
        args = ["zstd", "-3", "-q", "-c", src] if mode == "alone" or prev is None else ["zstd", "-3", "-q", "-c", f"--patch-from={prev}", src]
        blob = subprocess.run(args, capture_output=True, check=True).stdout
        c0 = time.process_time()
        with con:
            con.execute("INSERT INTO s VALUES (?, ?)", (i, blob))
        cpu += time.process_time() - c0
        prev = src
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)"); con.close()
    size = os.path.getsize(path)
    print(f"| SQLite WAL, zstd {mode} | {len(files)} samples | {size/len(files):.0f} B/sample | {size/len(files)*8640/1e6:.1f} MB/day | insert CPU {cpu/len(files)*1000:.2f} ms/sample (zstd not counted) |")
EOF

  # 4. diagnose --at over the whole recording
  mid=$(echo "$ls_json" | json 'd["last"]')
  /usr/bin/time -f "%e %U %S" -o "$tmp/dt" "$bin" diagnose --store "$store" --at "$mid" --window 24h -f json >/dev/null
  read -r wall u s <"$tmp/dt"
  echo "| diagnose --at --window 24h over $samples samples | ${wall} s wall, $(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}') s CPU | extrapolated to 8640 samples: $(awk -v w="$wall" -v n="$samples" 'BEGIN{printf "%.1f s", w/n*8640}') |"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  echo
done

# 3. crash behaviour
echo "## kill -9 at a random instant, 10 times (--interval 1s)"
store=$tmp/crash
lost=0
for i in $(seq 10); do
  before=$("$bin" record ls --dir "$store" --format json 2>/dev/null | json 'd["samples"]' || echo 0)
  "$bin" record --dir "$store" --interval 1s --tracing off 2>/dev/null & rp=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN{printf "%.2f", 3 + r/32768*3}')"
  # What the recorder has been handed so far, by its own count of snapshots: one per second.
  kill -9 "$rp"; wait "$rp" 2>/dev/null || true
  after=$("$bin" record ls --dir "$store" --format json | json 'd["samples"]')
  echo "run $i: $((after - before)) samples read back"
done
"$bin" record ls --dir "$store" | sed -n '/Damage skipped/,$p'
echo "(every file but a torn last record reads back: see the notes above)"
python3 - "$tmp/kill.sqlite" <<'EOF'
import os, signal, sqlite3, subprocess, sys, time
path = sys.argv[1]
writer = f"""
import sqlite3, os
con = sqlite3.connect({path!r}); con.execute('PRAGMA journal_mode=WAL'); con.execute('PRAGMA synchronous=NORMAL')
con.execute('CREATE TABLE IF NOT EXISTS s (t INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB)')
while True:
    with con: con.execute('INSERT INTO s (b) VALUES (?)', (os.urandom(200000),))
"""
p = subprocess.Popen([sys.executable, "-c", writer]); time.sleep(3); p.send_signal(signal.SIGKILL); p.wait()
con = sqlite3.connect(path)
print("| SQLite after kill -9 mid-transaction | integrity_check:", con.execute("PRAGMA integrity_check").fetchone()[0], "| rows:", con.execute("SELECT count(*) FROM s").fetchone()[0], "|")
EOF
