//! `iowhy serve`: flags in node_exporter's style, mapped to [`crate::serve::ServeOptions`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, Tracing};
use crate::error::usage;
use crate::serve::exporter::ExportOptions;
use crate::serve::{self, Collectors, ServeOptions};
use crate::units::parse_duration;

#[derive(Args, Debug, Clone)]
#[command(after_help = AFTER_HELP)]
pub struct ServeArgs {
    /// Address to listen on (repeatable). Localhost only unless you say otherwise: the
    /// metrics name processes and files of this host.
    #[arg(
        long = "web.listen-address",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:10070"
    )]
    pub listen: Vec<String>,
    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    pub telemetry_path: String,
    /// Requests served at once; more get 503 at once.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40)]
    pub max_requests: usize,
    /// How often to sample (and the window of the rules): every scrape gets the latest
    /// sample. Shorter than your scrape interval gives Prometheus every change.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub interval: Duration,
    /// A sample older than two intervals plus this is reported stale
    /// (iowhy_scrape_collector_success{collector="sampler"} 0); each kernel read has its
    /// own --read-timeout.
    #[arg(long = "collector.timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub collector_timeout: Duration,
    /// Process groups (namespace, pod, container, comm) with their own series: the top N
    /// by I/O, I/O wait or sync calls; the rest add to comm="other".
    #[arg(
        long = "collector.process.top-n",
        value_name = "N",
        default_value_t = 20
    )]
    pub top_n: usize,
    /// How long a group (or file) keeps its series after it drops out of the top.
    #[arg(long = "collector.process.linger", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub linger: Duration,
    /// Every process's fd table is read again this often; in between, only those of
    /// processes that did I/O in the last window (an idle process's files do not grow).
    #[arg(long = "collector.fds.refresh", value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub fds_refresh: Duration,
    /// Files with their own iowhy_file_write_bytes_total series (the fastest written).
    #[arg(long = "collector.files.top-n", value_name = "N", default_value_t = 10)]
    pub files_top_n: usize,
    /// The tracing layer for sync calls and per-file writes. auto here means perf (it
    /// costs writers nothing measurable); ebpf adds block latency at a cost.
    #[arg(long, value_enum, default_value_t = Tracing::Auto)]
    pub tracing: Tracing,
    #[command(flatten)]
    pub collectors: CollectorFlags,
    /// Also keep a flight recording of every sample in DIR (as `iowhy record --dir DIR`
    /// does): one agent, both jobs. --retain, --max-size and --min-free apply to it.
    #[arg(long, value_name = "DIR")]
    pub record: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub retention: crate::cmd::record::RetentionArgs,
    #[command(flatten)]
    pub incidents: crate::cmd::record::IncidentArgs,
}

macro_rules! collector_flags {
    ($($field:ident, $no:ident, $name:literal, $no_name:literal, $help:literal;)*) => {
        /// `--collector.NAME` / `--no-collector.NAME`, the last one given wins.
        #[derive(Args, Debug, Clone)]
        pub struct CollectorFlags {
            $(
                #[doc = $help]
                #[arg(id = $name, long = $name, overrides_with = $no_name)]
                pub $field: bool,
                #[arg(id = $no_name, long = $no_name, overrides_with = $name, help = concat!("Turn off --", $name, "."))]
                pub $no: bool,
            )*
        }

        impl CollectorFlags {
            fn resolve(&self) -> Collectors {
                Collectors { $($field: !self.$no,)* }
            }
        }
    };
}

collector_flags! {
    process, no_process, "collector.process", "no-collector.process",
        "Per-process counters: /proc/PID/io, delay accounting, D state (on by default).";
    fds, no_fds, "collector.fds", "no-collector.fds",
        "fd tables: deleted-open bytes and the rules' view of files (on by default).";
    containers, no_containers, "collector.containers", "no-collector.containers",
        "Container runtimes and pod logs (on by default).";
    tracing, no_tracing, "collector.tracing", "no-collector.tracing",
        "Sync calls and per-file writes by tracing (on by default).";
    findings, no_findings, "collector.findings", "no-collector.findings",
        "The rules over each window: iowhy_findings and /diagnosis (on by default).";
}

const AFTER_HELP: &str = "\
Endpoints: /metrics (Prometheus text format 0.0.4, gzip when asked), /diagnosis (the
latest window's report: ?format=json|markdown|text), /healthz, /.

iowhy samples every --interval on one thread and every scrape is served the latest
sample, so a scrape answers at once even while a read is stuck on a hung mount.
Counters are per group (namespace, pod, container, comm), never per pid: the top
--collector.process.top-n groups keep their own series for --collector.process.linger,
the rest add to comm=\"other\" of their container or of the host, so series stay bounded
and every counter only goes up.

In Kubernetes (deploy/kubernetes/daemonset.yaml):
    iowhy serve --web.listen-address=0.0.0.0:10070 \\
        --path.procfs=/host/root/proc --path.sysfs=/host/sys --path.rootfs=/host/root";

fn parse_listen(s: &str) -> Result<Vec<SocketAddr>> {
    let s = s.trim();
    // node_exporter accepts ":9100" for every address.
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    let addrs: Vec<SocketAddr> = full
        .to_socket_addrs()
        .map_err(|e| usage(format!("--web.listen-address {s:?}: {e} (want HOST:PORT)")))?
        .collect();
    if addrs.is_empty() {
        return Err(usage(format!("--web.listen-address {s:?}: no address")));
    }
    Ok(addrs)
}

impl ServeArgs {
    pub fn options(&self) -> Result<ServeOptions> {
        let mut listen = Vec::new();
        for l in &self.listen {
            listen.extend(parse_listen(l)?);
        }
        if !self.telemetry_path.starts_with('/') {
            return Err(usage(format!(
                "--web.telemetry-path {:?}: a path starts with /",
                self.telemetry_path
            )));
        }
        if self.interval < Duration::from_millis(500) {
            return Err(usage("--interval must be at least 500ms"));
        }
        if self.max_requests == 0 || self.top_n == 0 {
            return Err(usage(
                "--web.max-requests and --collector.process.top-n must be at least 1",
            ));
        }
        let mut collectors = self.collectors.resolve();
        if self.tracing == Tracing::Off {
            collectors.tracing = false;
        }
        Ok(ServeOptions {
            listen,
            telemetry_path: self.telemetry_path.clone(),
            max_requests: self.max_requests,
            interval: self.interval,
            collector_timeout: self.collector_timeout,
            export: ExportOptions {
                top_n: self.top_n,
                files_top_n: self.files_top_n,
                linger_s: self.linger.as_secs_f64(),
            },
            // The watcher must not tax the watched: eBPF times every block request
            // (7.5% of a flush-bound writer's speed here), perf costs nothing measurable.
            tracing: match self.tracing {
                Tracing::Auto => crate::trace::TracingChoice::Perf,
                t => t.into(),
            },
            collectors,
            fds_refresh: self.fds_refresh,
            record: self.record.as_ref().map(|d| {
                let mut r = crate::record::RecordOptions::new(d.clone(), self.interval);
                r.retention = self.retention.retention();
                r
            }),
            incidents: self.incidents.options(),
        })
    }
}

pub fn run(g: &Global, a: &ServeArgs) -> Result<()> {
    g.live_only("serve")?;
    let opts = a.options()?;
    serve::run(&g.roots(), opts, super::stop_flag())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServeArgs,
    }

    fn opts(args: &[&str]) -> Result<ServeOptions> {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::try_parse_from(v)?.a.options()
    }

    #[test]
    fn defaults_listen_on_localhost_and_collect_everything() {
        let o = opts(&[]).unwrap();
        assert_eq!(o.listen, vec!["127.0.0.1:10070".parse().unwrap()]);
        assert_eq!(o.telemetry_path, "/metrics");
        assert_eq!((o.export.top_n, o.export.files_top_n), (20, 10));
        assert!(o.collectors.process && o.collectors.tracing && o.collectors.fds);
        assert_eq!(o.tracing, crate::trace::TracingChoice::Perf);
    }

    #[test]
    fn collectors_turn_off_and_on_the_last_flag_winning() {
        let o = opts(&[
            "--no-collector.fds",
            "--no-collector.tracing",
            "--collector.tracing",
        ])
        .unwrap();
        assert!(!o.collectors.fds && o.collectors.tracing);
        let o = opts(&[
            "--web.listen-address",
            ":9999",
            "--web.listen-address",
            "[::1]:1",
        ])
        .unwrap();
        assert_eq!(o.listen.len(), 2);
        assert_eq!(o.listen[0].port(), 9999);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["--web.listen-address", "nohost"][..],
            &["--web.telemetry-path", "metrics"],
            &["--interval", "10ms"],
            &["--collector.process.top-n", "0"],
        ] {
            let e = opts(bad).unwrap_err();
            assert!(
                e.chain().any(|c| c.is::<crate::error::UsageError>()),
                "{bad:?}: {e:#}"
            );
        }
    }
}
