//! `iowhy playbook`: the seed incident's checklist, rewritten around what iowhy automates
//! and what a person still decides.

pub const TEXT: &str = r#"# I/O stall playbook

The machine "hangs" but the CPU is idle. Something is drowning a block device and every
task that touches it waits. Work from the device to the process to the file to the
filesystem, then act — carefully.

## 1. Confirm it is I/O (iowhy does this)

- `iowhy` — one 5 s look: devices, processes, files, filesystems, pressure.
- Signs: load average high with idle CPUs (D-state tasks count in the load), PSI
  `/proc/pressure/io` "full" above a few %, a disk near 100 %util.
- **Decide:** is it one disk or all? One filesystem full, or one process?

## 2. The device: saturated, or slow? (iowhy: `device_saturated`)

- `iowhy iostat -x -z 1` is `iostat -xz 1` with the same numbers.
- await far above the device's own time per request (the old svctm; iowhy prints
  `svctm~`) means **queueing**: the disk is fine, too many requests wait in line.
- A high time per request with a short queue means a **slow device** (or what is behind
  it: a network volume, a throttled cloud disk).
- %util near 100 with aqu-sz ≈ 1 on an SSD/NVMe is a **serial** workload (one thread
  syncing), not saturation: look at the latency instead.

## 3. The process (iowhy: `top_io_writer`)

- `iowhy top -b -n 3` is `iotop -o` / `pidstat -d`: bytes per second per process, from
  `/proc/PID/io`, with I/O wait % when delay accounting is on
  (`sysctl kernel.task_delayacct=1`; processes started before that show no data).
- Many small writes that each cost a 4 KiB page on disk mean a sync after every write.
  `iowhy trace --pid PID` counts the fsync/fdatasync calls per file without stopping the
  process (strace stops it on every syscall).
- **Decide:** is this writer important? Can it be paused, throttled, restarted?

## 4. The file (iowhy: `runaway_log`, `deleted_file_held_open`)

- `iowhy files PID` is `lsof -p PID` with size, growth, offset and open flags
  (O_APPEND, O_SYNC, O_DSYNC, O_DIRECT), and the mount and disk each file is on.
- **Never `rm` a file a process holds open**: the name goes, the space stays until the
  last fd closes. df keeps saying full, du cannot find it.

## 5. The filesystem (iowhy: `filesystem_full`, `inode_exhaustion`)

- `iowhy space /var/log` is `df -h` + `du -sh` + "why is the space not freed": use %,
  growth and time to full, the biggest files and directories, and deleted-but-open bytes.

## 6. Act now — explicitly, and reversibly

| situation | safe action | iowhy |
|---|---|---|
| runaway log, writer reopens on SIGHUP | rename, create, signal, verify it reopened | `iowhy rotate PATH` |
| runaway log, writer uses O_APPEND and cannot reopen | copy then truncate in place | `iowhy rotate PATH --copytruncate` |
| space held by a deleted open file | truncate through /proc/PID/fd/N | `iowhy reclaim PID FD` |
| is this process the cause? | pause it briefly and measure | `iowhy pause PID --for 10s` |
| a writer that must keep running | cap its bandwidth with a cgroup | `iowhy throttle PID --write-bps 10M` |

Every action prints what it will do with `--dry-run` first. A person decides; iowhy never
acts on its own.

## 7. Containers

- The same story through containerd-shim: the container's stdout becomes a file under
  `/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log`. `iowhy containers` maps processes
  to containers and pods, shows log sizes and growth, and stdout pipes nobody reads.
- Rotation: kubelet `containerLogMaxSize` / `containerLogMaxFiles`; Docker json-file is
  unlimited unless `max-size` is set in daemon.json.

## 8. Later — lasting fixes

- Buffer and batch writes; sync once per batch (group commit), not per line. In Python,
  use `logging.handlers.RotatingFileHandler` instead of `write(); flush(); fsync()`.
- Rotate by size (logrotate `size`), put /var/log on its own filesystem.
- Watch it continuously: export device, process and filesystem numbers to Prometheus
  (node_exporter's diskstats and filesystem collectors, or `iowhy top -f json` /
  `iowhy iostat -f json` shipped by your log pipeline), with alerts on time-to-full
  and PSI.
"#;
