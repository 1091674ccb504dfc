//! Containers: which container (and pod) each process belongs to, where a container's
//! stdout goes, and what (if anything) rotates it.
//!
//! Everything here is a pure function of text or of a [`Snapshot`](crate::snapshot::Snapshot):
//! `source::containers` reads the runtimes' files under `--root`, `interval::container`
//! turns two snapshots into rates, and the rules in `findings::container` judge them.
//! Each runtime leaves several traces, and no single one is always there (a DaemonSet may
//! see `/proc` but not `/run`; a plain `ctr run` has no pod): attribution combines the
//! cgroup path, the shim or conmon that parents the process, the OCI bundle's
//! annotations, Docker's container directory and the kubelet's `/var/log/pods` tree.

pub mod attribute;
pub mod cgroup;
pub mod cmdline;
pub mod crilog;
pub mod logrotate;
pub mod oci;
pub mod paths;
pub mod podlog;
pub mod rotation;
pub mod scan;

pub use attribute::{Attribution, ContainerInfo, ContainerRef, LogRef, Role};
pub use cgroup::Runtime;
pub use rotation::{LogKind, RotatedBy, Rotation};
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
                let _ = super::cgroup::parse_path(x);
                let _ = super::crilog::tail_stats(x, true);
                let _ = super::crilog::tail_stats(x, false);
                let _ = super::crilog::unix_seconds(x);
                let _ = super::podlog::pod_dir(x);
                let _ = super::podlog::link_name(x);
                let _ = super::podlog::log_file_name(x);
                let _ = super::logrotate::parse(x, "f", &mut Default::default());
                let _ = super::logrotate::parse_size(x);
                let _ = super::rotation::kubelet_file(x);
                let _ = super::rotation::docker_daemon(x, "f");
                let _ = super::rotation::k8s_quantity(x);
                let _ = super::rotation::docker_size(x);
                let _ = super::oci::bundle_annotations(x);
                let _ = super::oci::docker_config(x);
                let _ = crate::parse::stack::parse_stack(x);
                let _ = crate::parse::stack::parse_syscall(x);
                let argv: Vec<String> = x.split(' ').map(str::to_string).collect();
                let _ = super::cmdline::shim(&argv);
                let _ = super::cmdline::conmon(&argv);
                let _ = super::cmdline::kubelet(&argv);
            }
        }

        #[test]
        fn cri_lines_round_trip(sec in 0u32..86400, frac in 0u32..1_000_000_000, err in any::<bool>(), text in "[ -~]{0,80}") {
            let line = format!(
                "2026-11-24T{:02}:{:02}:{:02}.{frac:09}Z {} F {text}",
                sec / 3600, (sec / 60) % 60, sec % 60, if err { "stderr" } else { "stdout" }
            );
            let l = super::crilog::parse_cri_line(&line).unwrap();
            prop_assert_eq!(l.stderr, err);
            prop_assert_eq!(l.text, text.as_str());
        }
    }
}
