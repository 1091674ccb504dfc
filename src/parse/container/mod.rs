//! Pure parsers of what the container runtimes leave behind: cgroup paths, shim, conmon
//! and kubelet command lines, OCI and Docker records, CRI log lines, the kubelet's log
//! tree names and logrotate's configuration. Text in, values out; `source::containers`
//! reads the files and `container` combines the results.

pub mod cgroup;
pub mod cmdline;
pub mod crilog;
pub mod logrotate;
pub mod oci;
pub mod podlog;
