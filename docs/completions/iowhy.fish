# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_iowhy_global_optspecs
    string join \n proc-root= sys-root= root= fixture= read-timeout= at= store= file= d/duration= f/format= tracing= enable-delayacct exit-code window= h/help V/version
end

function __fish_iowhy_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_iowhy_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_iowhy_using_subcommand
    set -l cmd (__fish_iowhy_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c iowhy -n "__fish_iowhy_needs_command" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_needs_command" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_needs_command" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_needs_command" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_needs_command" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_needs_command" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_needs_command" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_needs_command" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_needs_command" -s d -l duration -d 'How long to watch the machine (e.g. 5s, 500ms, 1m). Rates are averages over it' -r
complete -c iowhy -n "__fish_iowhy_needs_command" -s f -l format -d 'text: the story for a person; json: the stable contract (DESIGN.md); markdown: an incident note for a ticket' -r -f -a "text\t''
json\t''
markdown\t''"
complete -c iowhy -n "__fish_iowhy_needs_command" -l tracing -d 'How to see syscalls during the window: auto picks the best allowed (ebpf, perf, then sampling /proc); off skips tracing' -r -f -a "auto\t''
ebpf\t''
perf\t''
sampling\t''
off\t''"
complete -c iowhy -n "__fish_iowhy_needs_command" -l window -d 'With --at: the recorded window around TIME whose intervals are replayed (the report is the worst one, with a timeline of every finding)' -r
complete -c iowhy -n "__fish_iowhy_needs_command" -l enable-delayacct -d 'Turn kernel.task_delayacct on for this run (and back off after) to see I/O wait per process. Processes started before it stay unknown'
complete -c iowhy -n "__fish_iowhy_needs_command" -l exit-code -d 'Exit by the worst finding, for monitoring checks and cron (the Nagios/Icinga plugin convention): 0 none or only info, 1 warning, 2 critical, 3 could not diagnose'
complete -c iowhy -n "__fish_iowhy_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c iowhy -n "__fish_iowhy_needs_command" -s V -l version -d 'Print version'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "diagnose" -d 'Find the disk, the process and the file behind an I/O stall (the default command)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "iostat" -d 'Device statistics like sysstat\'s `iostat -dx`, with the same formulas and JSON keys'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "top" -d 'Processes doing I/O, like `iotop -o` / `pidstat -d`'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "trace" -d 'Write and sync calls per process and file, sync latency, block latency — like `strace -c -f`, without stopping the process'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "files" -d 'Every open file of a process, with size, growth, offset and open flags (a better `lsof -p`)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "space" -d 'Filesystems, the biggest files under PATH, and space held by deleted open files'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "containers" -d 'Containers and pods: write rate, I/O wait, log rate and size, rotation, blocked pipes'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "rotate" -d 'Rotate a live log without losing a line: rename, recreate, signal the writers, and verify by inode that each reopened (or copytruncate for O_APPEND writers)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "reclaim" -d 'Free the space of a deleted file a process still holds open (truncate via /proc/PID/fd)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "pause" -d 'Stop a process for a moment and measure whether the disk calms down (always resumed)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "throttle" -d 'Limit a process\'s disk bandwidth or IOPS with a cgroup instead of killing it'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "lab" -d 'Reproduce an incident on purpose, bounded and self-cleaning (for training and tests)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "playbook" -d 'Print the I/O-stall checklist as Markdown'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "serve" -d 'Prometheus exporter and node agent: per-pod I/O, fsyncs, files, logs and the verdict, on /metrics; the latest diagnosis on /diagnosis (like node_exporter)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "record" -d 'The flight recorder: keep raw samples so that `diagnose --at 03:00` explains a stall after it is gone; `record ls`, `record export`'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "incidents" -d 'The stalls the recorder caught as they happened (time, duration, worst finding, culprit); `incidents show ID` prints one\'s note'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "snapshot" -d 'Print one raw snapshot (every counter read, nothing computed) as JSON'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "capture" -d 'Copy the kernel files iowhy reads (two time points) into DIR, for offline diagnosis with --fixture DIR or to attach to a bug report'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "completions" -d 'Print the shell completion script for bash, zsh or fish (the package installs them)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "generate-docs" -d 'Regenerate the man pages and completion scripts into docs/ (for packaging)'
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "lab-worker"
complete -c iowhy -n "__fish_iowhy_needs_command" -f -a "guardian"
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -s d -l duration -d 'How long to watch the machine (e.g. 5s, 500ms, 1m). Rates are averages over it' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -s f -l format -d 'text: the story for a person; json: the stable contract (DESIGN.md); markdown: an incident note for a ticket' -r -f -a "text\t''
json\t''
markdown\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l tracing -d 'How to see syscalls during the window: auto picks the best allowed (ebpf, perf, then sampling /proc); off skips tracing' -r -f -a "auto\t''
ebpf\t''
perf\t''
sampling\t''
off\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l window -d 'With --at: the recorded window around TIME whose intervals are replayed (the report is the worst one, with a timeline of every finding)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l enable-delayacct -d 'Turn kernel.task_delayacct on for this run (and back off after) to see I/O wait per process. Processes started before it stay unknown'
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -l exit-code -d 'Exit by the worst finding, for monitoring checks and cron (the Nagios/Icinga plugin convention): 0 none or only info, 1 warning, 2 critical, 3 could not diagnose'
complete -c iowhy -n "__fish_iowhy_using_subcommand diagnose" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l device -d 'Only these devices (repeatable)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -s x -d 'Extended statistics (r/s w/s ... aqu-sz %util), like `iostat -x`'
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -s z -d 'Leave out devices with no activity in the interval, like `iostat -z`'
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -s p -d 'Every device and partition, idle ones too, like `iostat -p ALL`'
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -s y -d 'Skip the first report (statistics since boot), like `iostat -y`'
complete -c iowhy -n "__fish_iowhy_using_subcommand iostat" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s n -l iterations -d 'Number of reports (default: until interrupted; 1 in batch mode without a terminal)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s d -l delay -d 'Seconds between reports' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l sort -d 'Sort by write, read, io (read + write) or wait (I/O wait %)' -r -f -a "write\t''
read\t''
io\t''
wait\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l limit -d 'Show at most this many processes per report' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l tracing -d 'The screen\'s tracing layer for FSYNC/s (auto means perf: it costs writers nothing measurable; off: no tracing). Batch mode does not trace' -r -f -a "auto\t''
ebpf\t''
perf\t''
sampling\t''
off\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s b -l batch -d 'Batch mode: print reports one after another instead of the interactive screen (also when stdout is not a terminal)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -l all -d 'Show every process, not only those doing I/O (iotop without -o)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s o -l only -d 'Only processes doing I/O (the default; iotop\'s -o)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s P -l processes -d 'Processes, not threads (the only mode; iotop\'s -P, accepted)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s a -l accumulated -d 'Accumulated bytes since the start instead of rates (iotop\'s -a)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s k -l kilobytes -d 'Kilobytes (K/s, KiB) instead of human units, batch mode (iotop\'s -k)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s t -l time -d 'Prefix each line with the time, UTC (implies -b; iotop\'s -t)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s q -l quiet -d '-q: column names only in the first report; -qq: never; -qqq: no summary lines either (implies -b; iotop\'s -q)'
complete -c iowhy -n "__fish_iowhy_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -s p -l pid -d 'Trace only this process (repeatable); the kernel filters out the others' -x -a "(__fish_complete_pids)"
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l comm -d 'Trace processes with this name (comm, repeatable)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -s d -l duration -r
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l tracing -d 'Force a tracing layer (default: the best available: ebpf, then perf, then sampling)' -r -f -a "auto\t''
ebpf\t''
perf\t''
sampling\t''
off\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l ring-size -d 'perf ring buffer per CPU' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand trace" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -s d -l duration -d 'Window for the growth of each file (0 for a single look, without growth)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l top -d 'How many of the biggest files and directories to list' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l depth -d 'Directory totals down to this depth below PATH (like du --max-depth)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -s d -l duration -d 'Window for growth and time-to-full (0 to skip)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand space" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -s d -l duration -d 'How long to watch (rates are averages over it)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -l enable-delayacct -d 'Turn kernel.task_delayacct on for this run (and back off after) to see I/O wait per container and shim. Processes started before it stay unknown'
complete -c iowhy -n "__fish_iowhy_using_subcommand containers" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l signal -d 'The signal that makes the writers reopen their log: HUP, USR1 or USR2' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l keep -d 'Keep N rotated files, like logrotate\'s `rotate N`: rotations beyond N are removed — except one still open in a process or whose holders cannot all be checked. This is the only thing a rotate ever deletes (--compress replaces PATH.N by PATH.N.gz). Default: keep all' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l timeout -d 'How long to wait for the writers to reopen' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l copytruncate -d 'Copy and truncate in place instead of renaming (for O_APPEND writers that cannot reopen)'
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l fallback-copytruncate -d 'If no writer reopens, undo the rename and copytruncate instead (O_APPEND writers only)'
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l compress -d 'gzip rotated files once no process holds them (owner and mode kept)'
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -l dry-run -d 'Say what would be done, and do nothing'
complete -c iowhy -n "__fish_iowhy_using_subcommand rotate" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l yes -d 'Truncate without asking (for scripts)'
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -l dry-run -d 'Say what would be freed, and do nothing'
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l for -d 'How long to keep it stopped (at most 10 minutes)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l measure -d 'How long to measure before and after the pause' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l yes -d 'Pause a process others depend on (a shim, a database) without asking'
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -l dry-run -d 'Say what would be done, and do nothing'
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l write-bps -d 'Write bandwidth limit, e.g. 10M (bytes per second)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l read-bps -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l write-iops -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l read-iops -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l for -d 'Lift the limit after this long (iowhy waits; a guardian lifts it if iowhy dies). Without it, the limit stays until `iowhy throttle --undo PID`' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l device -d 'Limit on this disk instead of the ones behind the process\'s files (repeatable)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l measure -d 'How long to measure the process\'s I/O rate before and after' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l undo -d 'Lift a throttle set earlier'
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l yes -d 'Throttle a process others depend on without asking'
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -l dry-run
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -s d -l duration -d 'Stop after this long' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l dir -d 'Work in a new directory under DIR instead of a loop-device filesystem of the lab\'s own' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l size -d 'Size of the lab\'s own filesystem [default: 256M for disk-fill, 1G otherwise]' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l writers -d 'fsync-logger: how many writer processes (each with its own log)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l rate -d 'fsync-logger: lines per second per writer; disk-fill: bytes per second (e.g. 8M). 0 = as fast as possible' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l sync -d 'fsync-logger: how each line is made durable' -r -f -a "fsync\t''
fdatasync\t''
sync-file-range\t''
o-dsync\t'Open with O_DSYNC: every write is synchronous, no explicit sync call'
none\t'No sync at all (a buffered writer)'"
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l lines -d 'fsync-logger: write exactly this many lines per writer, then idle (0 = no limit)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l start-after -d 'Let the writers wait this long before their first write (for tracers to attach)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -s f -l format -d 'json: JSON Lines, a "started" event (pids, paths, mountpoint, device) and a "stopped" one' -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l reader -d 'pipe-block: what the reader does' -r -f -a "stopped\t'The reader drains the pipe for a moment, then the lab stops it (SIGSTOP)'
idle\t'The reader is alive but never reads'"
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand playbook" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l web.listen-address -d 'Address to listen on (repeatable). Localhost only unless you say otherwise: the metrics name processes and files of this host' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l web.telemetry-path -d 'Path under which the metrics are served' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l web.max-requests -d 'Requests served at once; more get 503 at once' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l interval -d 'How often to sample (and the window of the rules): every scrape gets the latest sample. Shorter than your scrape interval gives Prometheus every change' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.timeout -d 'A sample older than two intervals plus this is reported stale (iowhy_scrape_collector_success{collector="sampler"} 0); each kernel read has its own --read-timeout' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.process.top-n -d 'Process groups (namespace, pod, container, comm) with their own series: the top N by I/O, I/O wait or sync calls; the rest add to comm="other"' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.process.linger -d 'How long a group (or file) keeps its series after it drops out of the top' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.fds.refresh -d 'Every process\'s fd table is read again this often; in between, only those of processes that did I/O in the last window (an idle process\'s files do not grow)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.files.top-n -d 'Files with their own iowhy_file_write_bytes_total series (the fastest written)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l tracing -d 'The tracing layer for sync calls and per-file writes. auto here means perf (it costs writers nothing measurable); ebpf adds block latency at a cost' -r -f -a "auto\t''
ebpf\t''
perf\t''
sampling\t''
off\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l record -d 'Also keep a flight recording of every sample in DIR (as `iowhy record --dir DIR` does): one agent, both jobs. --retain, --max-size and --min-free apply to it' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l retain -d 'Remove segments older than this (0: keep by age forever)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l max-size -d 'Remove the oldest segments while the store is bigger than this (0: no limit)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l min-free -d 'Remove the oldest segments while its filesystem has less free than this' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l incident-psi-full -d 'PSI io `full` share (of a window, or of any second with a kernel trigger) that starts an incident; a critical finding starts one too' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.process -d 'Per-process counters: /proc/PID/io, delay accounting, D state (on by default)'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l no-collector.process -d 'Turn off --collector.process.'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.fds -d 'fd tables: deleted-open bytes and the rules\' view of files (on by default)'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l no-collector.fds -d 'Turn off --collector.fds.'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.containers -d 'Container runtimes and pod logs (on by default)'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l no-collector.containers -d 'Turn off --collector.containers.'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.tracing -d 'Sync calls and per-file writes by tracing (on by default)'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l no-collector.tracing -d 'Turn off --collector.tracing.'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l collector.findings -d 'The rules over each window: iowhy_findings and /diagnosis (on by default)'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l no-collector.findings -d 'Turn off --collector.findings.'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -l no-incidents -d 'Do not capture incidents (a stall\'s 1 s samples and its note)'
complete -c iowhy -n "__fish_iowhy_using_subcommand serve" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l dir -d 'The store: one segment file per start and per UTC hour' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l interval -d 'How often to sample' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l retain -d 'Remove segments older than this (0: keep by age forever)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l max-size -d 'Remove the oldest segments while the store is bigger than this (0: no limit)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l min-free -d 'Remove the oldest segments while its filesystem has less free than this' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l tracing -d 'The tracing layer for sync calls and per-file writes (auto = perf: it costs writers nothing measurable)' -r -f -a "auto\t''
ebpf\t''
perf\t''
sampling\t''
off\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l level -d 'zstd level of the samples' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l key-every -d 'A sample compressed on its own every N (the others against the previous one)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l incident-psi-full -d 'PSI io `full` share (of a window, or of any second with a kernel trigger) that starts an incident; a critical finding starts one too' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -l no-incidents -d 'Do not capture incidents (a stall\'s 1 s samples and its note)'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -f -a "ls" -d 'What the store holds: segments, coverage, gaps, reboots, bytes per day'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -f -a "export" -d 'Write the samples between two times into one file that `iowhy diagnose --file` reads on any machine (attach it to a ticket)'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and not __fish_seen_subcommand_from ls export when" -f -a "when" -d 'Print what a TIME means (local time and UTC), as --at reads it'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l dir -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l dir -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l from -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l to -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -s o -l output -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand record; and __fish_seen_subcommand_from when" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l dir -d 'The recorder\'s store (iowhy record --dir, serve --record)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -s f -l format -r -f -a "text\t''
json\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and not __fish_seen_subcommand_from show" -f -a "show" -d 'One incident\'s note: the report of its worst window'
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l dir -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -s f -l format -r -f -a "text\t''
json\t''
markdown\t''"
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand incidents; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l repeat -d 'Take this many snapshots in a row and print only a summary line (for timing)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -l light -d 'Read only stat, status and io of each process (what `top` reads every interval), not cmdline, wchan, cgroup, threads and fd tables'
complete -c iowhy -n "__fish_iowhy_using_subcommand snapshot" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -s d -l duration -d 'Time between the captured time points' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l count -d 'Number of time points' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand capture" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand completions" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l out -d 'The docs directory: pages go to DIR/man, completion scripts to DIR/completions' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l path -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l rate -d 'Bytes per second (disk-fill, deleted-open growth) or lines per second (fsync-logger); 0 = unlimited' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l max-bytes -d 'Size cap: fsync-logger truncates its log (O_APPEND keeps that safe), buffered-flood rewinds, deleted-open writes this much before deleting' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l sync -r -f -a "fsync\t''
fdatasync\t''
sync-file-range\t''
o-dsync\t'Open with O_DSYNC: every write is synchronous, no explicit sync call'
none\t'No sync at all (a buffered writer)'"
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l fill-to-pct -d 'disk-fill stops writing at this use % of its filesystem' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l name -d 'The process name (comm) to take' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l lines -d 'fsync-logger: write exactly this many lines, then idle with the file open (0 = forever)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l on-hup -d 'numbered-logger: what to do on SIGHUP' -r -f -a "reopen\t'Reopen the log by name, like a well-behaved daemon'
ignore\t'Ignore the signal (SIG_IGN): keeps writing to the file it has'"
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l first -d 'numbered-logger: the first number (two loggers on one file count apart)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l threads -d 'numbered-logger: write from this many threads, sharing one counter and one file' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l start-after -d 'Wait this long before the first write (lets tracers attach first)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l proc-root -l path.procfs -d 'Where procfs is mounted (node_exporter\'s --path.procfs)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l sys-root -l path.sysfs -d 'Where sysfs is mounted' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -l idle -d 'pipe-reader: hold the read end but never read'
complete -c iowhy -n "__fish_iowhy_using_subcommand lab-worker" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l undo -r -f -a "cont\t'SIGCONT the target (after `pause`)'
unthrottle\t'Restore the cgroup state saved in --state (after `throttle`)'"
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l pid -r
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l start-ticks -d 'The target\'s start time (stat field 22): refuse to act on a reused pid' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l deadline-ms -d 'Undo after this many milliseconds even if iowhy is still alive (stuck or stopped)' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l state -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l proc-root -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l sys-root -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l record-dir -d 'Where to record the stopped target (`Undo::Cont`), for a later run to resume it should this guardian die as well' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l root -l path.rootfs -d 'Where the host\'s / is mounted (for mountpoints and files)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l fixture -d 'Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live machine: offline diagnosis of a capture, and the tests' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l read-timeout -d 'How long one kernel read may take before it counts as stuck and is given up on (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then says what did not answer' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l at -d 'Read the flight recorder\'s samples from TIME on instead of the machine (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an offset, or none for local time), 03:00 (the last such local time), yesterday 03:00, 10m ago, epoch seconds' -r
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l store -d 'The store --at reads (iowhy record --dir)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -l file -d 'One recording file to read instead of the store: a segment, or the bundle of `iowhy record export` (from another machine)' -r -F
complete -c iowhy -n "__fish_iowhy_using_subcommand guardian" -s h -l help -d 'Print help (see more with \'--help\')'

# Added by iowhy: a positional PID completes to the live processes.
complete -c iowhy -n "__fish_iowhy_using_subcommand files" -f -a "(__fish_complete_pids)"
complete -c iowhy -n "__fish_iowhy_using_subcommand reclaim" -f -a "(__fish_complete_pids)"
complete -c iowhy -n "__fish_iowhy_using_subcommand pause" -f -a "(__fish_complete_pids)"
complete -c iowhy -n "__fish_iowhy_using_subcommand throttle" -f -a "(__fish_complete_pids)"
