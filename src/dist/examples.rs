//! What the man pages say beyond the clap definitions: examples for each command, the
//! tools it stands in for, and exit statuses particular to it. The examples are real
//! command lines: a test parses every one with the clap definitions.

/// One example: what it does, then the command line.
pub type Example = (&'static str, &'static str);

/// The man-page extras of one command (`""` is `iowhy` itself).
pub struct Extras {
    pub examples: &'static [Example],
    /// Other manual pages, `name(section)`.
    pub see_also: &'static [&'static str],
    /// Exit statuses beyond the common 0/1/2, as (status, meaning).
    pub exit: &'static [(&'static str, &'static str)],
}

const NONE: Extras = Extras {
    examples: &[],
    see_also: &[],
    exit: &[],
};

/// The extras of the command named `name` (`""` for the top level); none for a command
/// not in the table (a test requires every visible command to have examples).
pub fn extras(name: &str) -> &'static Extras {
    EXTRAS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&NONE, |(_, e)| e)
}

const EXTRAS: &[(&str, Extras)] = &[
    (
        "",
        Extras {
            examples: &[
                (
                    "Diagnose this machine for 5 seconds (as root, to see every process):",
                    "sudo iowhy",
                ),
                (
                    "The same, as the stable JSON contract for scripts:",
                    "sudo iowhy diagnose --format json",
                ),
                (
                    "An incident note for a ticket:",
                    "sudo iowhy diagnose --duration 10s --format markdown",
                ),
                (
                    "A host mounted at /host (a DaemonSet or a rescue shell):",
                    "iowhy --proc-root /host/proc --sys-root /host/sys --root /host",
                ),
            ],
            see_also: &[
                "iostat(1)",
                "iotop(8)",
                "pidstat(1)",
                "strace(1)",
                "lsof(8)",
                "df(1)",
                "du(1)",
            ],
            exit: &[],
        },
    ),
    (
        "diagnose",
        Extras {
            examples: &[
                (
                    "Watch for 5 seconds and explain the stall:",
                    "sudo iowhy diagnose",
                ),
                (
                    "A longer window, as JSON:",
                    "sudo iowhy diagnose --duration 30s --format json",
                ),
                (
                    "A monitoring check (Nagios/Icinga convention):",
                    "iowhy diagnose --duration 2s --exit-code",
                ),
                (
                    "See per-process I/O wait on a kernel with delay accounting off:",
                    "sudo iowhy diagnose --enable-delayacct",
                ),
                (
                    "Diagnose a capture taken on another machine:",
                    "iowhy diagnose --fixture ./capture",
                ),
            ],
            see_also: &["iowhy-capture(1)", "iowhy-top(1)", "iowhy-trace(1)"],
            exit: &[
                ("0", "with --exit-code: no finding, or only info ones"),
                ("1", "with --exit-code: the worst finding is a warning"),
                ("2", "with --exit-code: the worst finding is critical"),
                (
                    "3",
                    "with --exit-code: the diagnosis could not run (UNKNOWN)",
                ),
            ],
        },
    ),
    (
        "iostat",
        Extras {
            examples: &[
                ("One report of every device since boot:", "iowhy iostat"),
                ("Every second, 10 times:", "iowhy iostat 1 10"),
                (
                    "Only vda, as JSON Lines with sysstat's keys:",
                    "iowhy iostat --device vda --format json 1 5",
                ),
            ],
            see_also: &["iostat(1)"],
            exit: &[],
        },
    ),
    (
        "top",
        Extras {
            examples: &[
                (
                    "Processes doing I/O, redrawn every second:",
                    "sudo iowhy top",
                ),
                (
                    "Three reports in batch mode, sorted by I/O wait:",
                    "sudo iowhy top -b -n 3 --sort wait",
                ),
                (
                    "Every process, as JSON:",
                    "sudo iowhy top -b -n 1 --all --format json",
                ),
            ],
            see_also: &["iotop(8)", "pidstat(1)"],
            exit: &[],
        },
    ),
    (
        "trace",
        Extras {
            examples: &[
                (
                    "Write and sync calls of every process for 5 seconds:",
                    "sudo iowhy trace",
                ),
                (
                    "Only process 1234, for 10 seconds:",
                    "sudo iowhy trace --pid 1234 --duration 10s",
                ),
                (
                    "Every process named postgres, with the perf layer:",
                    "sudo iowhy trace --comm postgres --tracing perf",
                ),
            ],
            see_also: &["strace(1)"],
            exit: &[],
        },
    ),
    (
        "files",
        Extras {
            examples: &[
                (
                    "Open files of process 1234 and how fast each grows:",
                    "sudo iowhy files 1234",
                ),
                (
                    "A single look, as JSON:",
                    "sudo iowhy files 1234 --duration 0 --format json",
                ),
            ],
            see_also: &["lsof(8)"],
            exit: &[],
        },
    ),
    (
        "space",
        Extras {
            examples: &[
                (
                    "Filesystems and space held by deleted open files:",
                    "sudo iowhy space",
                ),
                (
                    "The biggest files and directories under /var:",
                    "sudo iowhy space /var --top 20 --depth 2",
                ),
            ],
            see_also: &["df(1)", "du(1)", "iowhy-reclaim(1)"],
            exit: &[],
        },
    ),
    (
        "containers",
        Extras {
            examples: &[
                (
                    "Containers and pods by write rate, log rate and rotation:",
                    "sudo iowhy containers",
                ),
                (
                    "A 10-second window, as JSON:",
                    "sudo iowhy containers --duration 10s --format json",
                ),
            ],
            see_also: &["crictl(1)"],
            exit: &[],
        },
    ),
    (
        "rotate",
        Extras {
            examples: &[
                (
                    "See what rotating a log would do:",
                    "sudo iowhy rotate /var/log/app.log --dry-run",
                ),
                (
                    "Rotate it, signal the writers with USR1 and keep 5 compressed rotations:",
                    "sudo iowhy rotate /var/log/app.log --signal USR1 --keep 5 --compress",
                ),
                (
                    "An O_APPEND writer that never reopens:",
                    "sudo iowhy rotate /var/log/app.log --copytruncate",
                ),
            ],
            see_also: &["logrotate(8)", "iowhy-space(1)"],
            exit: &[],
        },
    ),
    (
        "reclaim",
        Extras {
            examples: &[
                (
                    "See what truncating fd 4 of process 1234 would free:",
                    "sudo iowhy reclaim 1234 4 --dry-run",
                ),
                ("Free it without asking:", "sudo iowhy reclaim 1234 4 --yes"),
            ],
            see_also: &["iowhy-space(1)", "iowhy-files(1)"],
            exit: &[],
        },
    ),
    (
        "pause",
        Extras {
            examples: &[
                (
                    "Stop process 1234 for 10 seconds and measure the disk:",
                    "sudo iowhy pause 1234 --for 10s",
                ),
                (
                    "Only say what would be done:",
                    "sudo iowhy pause 1234 --for 10s --dry-run",
                ),
            ],
            see_also: &["iowhy-throttle(1)", "kill(1)"],
            exit: &[],
        },
    ),
    (
        "throttle",
        Extras {
            examples: &[
                (
                    "Limit process 1234 to 10 MiB/s of writes for an hour:",
                    "sudo iowhy throttle 1234 --write-bps 10M --for 1h",
                ),
                ("Lift the limit:", "sudo iowhy throttle 1234 --undo"),
            ],
            see_also: &["iowhy-pause(1)", "systemd.resource-control(5)"],
            exit: &[],
        },
    ),
    (
        "lab",
        Extras {
            examples: &[
                (
                    "The seed's fsync-per-line logger, for a minute:",
                    "iowhy lab fsync-logger --duration 1m",
                ),
                (
                    "A small filesystem filling up (root):",
                    "sudo iowhy lab disk-fill",
                ),
                (
                    "Remove what an interrupted lab left behind:",
                    "sudo iowhy lab cleanup",
                ),
            ],
            see_also: &["iowhy-diagnose(1)"],
            exit: &[],
        },
    ),
    (
        "playbook",
        Extras {
            examples: &[(
                "The checklist as a Markdown file:",
                "iowhy playbook > io-stall-playbook.md",
            )],
            see_also: &["iowhy-diagnose(1)"],
            exit: &[],
        },
    ),
    (
        "record",
        Extras {
            examples: &[
                (
                    "Record every 10 seconds into /var/log/iowhy/rec, a week at most:",
                    "sudo iowhy record --retain 7d --max-size 1G",
                ),
                (
                    "What the store holds (coverage, gaps, reboots, bytes per day):",
                    "sudo iowhy record ls",
                ),
                (
                    "The last night's stall, for a ticket; diagnose --file reads it anywhere:",
                    "sudo iowhy record export --from 02:30 --to 03:30 -o stall.iowhyrec",
                ),
                (
                    "Then, what was it at 3 am:",
                    "sudo iowhy diagnose --at 03:00 --window 10m",
                ),
            ],
            see_also: &["iowhy-diagnose(1)", "iowhy-incidents(1)", "iowhy-serve(1)"],
            exit: &[],
        },
    ),
    (
        "incidents",
        Extras {
            examples: &[
                (
                    "The stalls the recorder caught (time, duration, worst finding, culprit):",
                    "sudo iowhy incidents",
                ),
                (
                    "One incident's note, for a ticket:",
                    "sudo iowhy incidents show 3 --format markdown",
                ),
            ],
            see_also: &["iowhy-record(1)", "iowhy-diagnose(1)"],
            exit: &[],
        },
    ),
    (
        "serve",
        Extras {
            examples: &[
                (
                    "Metrics on 127.0.0.1:10070 (the default):",
                    "sudo iowhy serve",
                ),
                (
                    "For a Prometheus on another machine, sampling every 15 seconds:",
                    "sudo iowhy serve --web.listen-address 0.0.0.0:10070 --interval 15s",
                ),
                (
                    "In a container with the host's /proc and /sys under /host:",
                    "iowhy serve --path.procfs /host/proc --path.sysfs /host/sys",
                ),
            ],
            see_also: &["node_exporter(1)", "prometheus(1)"],
            exit: &[],
        },
    ),
    (
        "snapshot",
        Extras {
            examples: &[
                (
                    "Every counter iowhy reads, once, as JSON:",
                    "sudo iowhy snapshot",
                ),
                (
                    "What top reads, 100 times, with only a summary:",
                    "sudo iowhy snapshot --light --repeat 100",
                ),
            ],
            see_also: &["iowhy-capture(1)"],
            exit: &[],
        },
    ),
    (
        "capture",
        Extras {
            examples: &[
                (
                    "Copy the kernel files at two time points 5 seconds apart:",
                    "sudo iowhy capture ./capture",
                ),
                (
                    "Diagnose it later, on any machine:",
                    "iowhy diagnose --fixture ./capture",
                ),
            ],
            see_also: &["iowhy-diagnose(1)"],
            exit: &[],
        },
    ),
    (
        "completions",
        Extras {
            examples: &[
                (
                    "Bash, for every user:",
                    "iowhy completions bash > /etc/bash_completion.d/iowhy",
                ),
                (
                    "Zsh (a directory on $fpath):",
                    "iowhy completions zsh > ~/.zfunc/_iowhy",
                ),
                (
                    "Fish:",
                    "iowhy completions fish > ~/.config/fish/completions/iowhy.fish",
                ),
            ],
            see_also: &["bash(1)", "zsh(1)", "fish(1)"],
            exit: &[],
        },
    ),
];
