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
