//! Containers: which container (and pod) each process belongs to, where a container's
//! stdout goes, and what (if anything) rotates it.
//!
//! Everything here is a pure function of a [`Snapshot`](crate::snapshot::Snapshot) (the
//! runtimes' files are parsed in `parse::container`): `scan` is the snapshot's data,
//! `attribute` and `rotation` what is made of it. `source::containers` reads the
//! runtimes' files under `--root`, `interval::container`
//! turns two snapshots into rates, and the rules in `findings::container` judge them.
//! Each runtime leaves several traces, and no single one is always there (a DaemonSet may
//! see `/proc` but not `/run`; a plain `ctr run` has no pod): attribution combines the
//! cgroup path, the shim or conmon that parents the process, the OCI bundle's
//! annotations, Docker's container directory and the kubelet's `/var/log/pods` tree.

pub mod attribute;
pub mod paths;
pub mod rotation;
pub mod scan;

pub use crate::parse::container::cgroup::Runtime;
pub use attribute::{ContainerInfo, Role};
pub use scan::RuntimeScan;

#[cfg(test)]
mod hostile {
    //! Every parser of runtime files takes any text without panicking.
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}", b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let t = String::from_utf8_lossy(&b);
            for x in [s.as_str(), t.as_ref()] {
                let _ = crate::parse::container::cgroup::parse_path(x);
                let _ = crate::parse::container::crilog::tail_stats(x, true);
                let _ = crate::parse::container::crilog::tail_stats(x, false);
                let _ = crate::parse::container::crilog::unix_seconds(x);
                let _ = crate::parse::container::podlog::pod_dir(x);
                let _ = crate::parse::container::podlog::link_name(x);
                let _ = crate::parse::container::podlog::log_file_name(x);
                let _ = crate::parse::container::logrotate::parse(x, "f", &mut Default::default());
                let _ = crate::parse::container::logrotate::parse_size(x);
                let _ = super::rotation::kubelet_file(x);
                let _ = super::rotation::docker_daemon(x, "f");
                let _ = super::rotation::k8s_quantity(x);
                let _ = super::rotation::docker_size(x);
                let _ = crate::parse::container::oci::bundle_annotations(x);
                let _ = crate::parse::container::oci::docker_config(x);
                let _ = crate::parse::stack::parse_stack(x);
                let _ = crate::parse::stack::parse_syscall(x);
                let argv: Vec<String> = x.split(' ').map(str::to_string).collect();
                let _ = crate::parse::container::cmdline::shim(&argv);
                let _ = crate::parse::container::cmdline::conmon(&argv);
                let _ = crate::parse::container::cmdline::kubelet(&argv);
            }
        }

        /// Up to 4 KiB of any bytes, as lossy text and as a lossless host string, through
        /// every parser and pure function of this module (the kubelet and Docker config
        /// parsers included), and as an argv split the way /proc/PID/cmdline is (NUL).
        #[test]
        fn every_parser_takes_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            use std::collections::BTreeMap;
            for x in [String::from_utf8_lossy(&b).into_owned(), crate::hoststr::from_bytes(&b)] {
                let x = x.as_str();
                let _ = crate::parse::container::cgroup::parse_path(x);
                let _ = crate::parse::container::cgroup::is_hex_id(x);
                let _ = crate::parse::container::cgroup::is_identifier(x);
                for line in x.lines() {
                    let _ = crate::parse::container::crilog::parse_cri_line(line);
                }
                let _ = crate::parse::container::crilog::tail_stats(x, true);
                let _ = crate::parse::container::crilog::tail_stats(x, false);
                let _ = crate::parse::container::crilog::unix_seconds(x);
                let _ = crate::parse::container::podlog::pod_dir(x);
                let _ = crate::parse::container::podlog::link_name(x);
                let _ = crate::parse::container::podlog::log_file_name(x);
                let mut d = Default::default();
                if let Ok((stanzas, _)) = crate::parse::container::logrotate::parse(x, "f", &mut d) {
                    for s in &stanzas {
                        let _ = s.covers(x);
                        let _ = s.size_trigger_bytes();
                        let _ = s.describe();
                    }
                }
                let _ = crate::parse::container::logrotate::parse_size(x);
                if let Ok(k) = super::rotation::kubelet_file(x) {
                    let _ = super::rotation::kubelet_effective(Some((&k, "f")), Some(x), Some(x), true);
                }
                let _ = super::rotation::kubelet_effective(None, Some(x), Some(x), false);
                let _ = super::rotation::docker_daemon(x, "f");
                let _ = super::rotation::k8s_quantity(x);
                let _ = super::rotation::docker_size(x);
                let opts = BTreeMap::from([
                    ("max-size".to_string(), x.to_string()),
                    ("max-file".to_string(), x.to_string()),
                ]);
                let _ = super::rotation::docker_log_config(x, &opts, "f");
                let _ = super::rotation::docker_log_config("local", &opts, "f");
                if let Ok(a) = crate::parse::container::oci::bundle_annotations(x) {
                    let _ = crate::parse::container::oci::k8s_names(&a);
                }
                let _ = crate::parse::container::oci::keep_annotation(x);
                let _ = crate::parse::container::oci::docker_config(x);
                let _ = crate::parse::container::oci::docker_host_log_config(x);
                let _ = crate::parse::container::cmdline::k8s_runtime_name(x);
                for exe in ["", "containerd-shim-runc-v2", "conmon", "/usr/bin/kubelet", "dockerd"] {
                    let mut argv = vec![exe.to_string()];
                    argv.extend(x.split('\0').map(str::to_string));
                    let _ = crate::parse::container::cmdline::shim(&argv);
                    let _ = crate::parse::container::cmdline::conmon(&argv);
                    let _ = crate::parse::container::cmdline::kubelet(&argv);
                    let _ = crate::parse::container::cmdline::dockerd(&argv);
                    let _ = crate::parse::container::cmdline::flag_values(&argv, "config", Some("c"));
                }
            }
        }

        /// A flag value of any bytes (a hostile `kubelet --config=...`) comes back whole.
        #[test]
        fn kubelet_config_flag_round_trips(v in proptest::collection::vec(any::<u8>(), 0..256), inline in any::<bool>()) {
            let v = crate::hoststr::from_bytes(&v);
            let argv: Vec<String> = if inline {
                vec!["kubelet".into(), format!("--config={v}")]
            } else {
                vec!["kubelet".into(), "--config".into(), v.clone()]
            };
            let k = crate::parse::container::cmdline::kubelet(&argv).unwrap();
            prop_assert_eq!(k.config.as_deref(), Some(v.as_str()));
        }

        /// Sizes in logrotate's and Docker's units are the number times the unit, or
        /// nothing when that overflows; never a wrapped value.
        #[test]
        fn sizes_are_exact_or_none(n in any::<u64>(), unit in 0usize..4) {
            let (suffix, mult) = [("", 1u64), ("k", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)][unit];
            let v = crate::parse::container::logrotate::parse_size(&format!("{n}{suffix}"));
            prop_assert_eq!(v, n.checked_mul(mult));
        }

        /// Pod directory names round trip for any DNS-label-like parts.
        #[test]
        fn pod_dir_round_trips(ns in "[a-z0-9-]{1,20}", pod in "[a-z0-9.-]{1,40}", uid in "[a-f0-9-]{1,36}") {
            let d = crate::parse::container::podlog::pod_dir(&format!("{ns}_{pod}_{uid}")).unwrap();
            prop_assert_eq!((d.namespace, d.pod, d.uid), (ns, pod, uid));
        }

        #[test]
        fn cri_lines_round_trip(sec in 0u32..86400, frac in 0u32..1_000_000_000, err in any::<bool>(), text in "[ -~]{0,80}") {
            let line = format!(
                "2026-11-24T{:02}:{:02}:{:02}.{frac:09}Z {} F {text}",
                sec / 3600, (sec / 60) % 60, sec % 60, if err { "stderr" } else { "stdout" }
            );
            let l = crate::parse::container::crilog::parse_cri_line(&line).unwrap();
            prop_assert_eq!(l.stderr, err);
            prop_assert_eq!(l.text, text.as_str());
        }
    }
}
