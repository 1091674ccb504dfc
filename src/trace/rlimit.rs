//! Resource limits the tracing layers need raised for their run, and put back after:
//! RLIMIT_NOFILE for perf (one fd per CPU and tracepoint), RLIMIT_MEMLOCK for eBPF on
//! kernels before 5.11, which charge BPF maps to it (5.11 moved them to the memory
//! cgroup; the default 64 KiB holds none of our maps).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// A limit raised for a session; dropping it puts the old one back (after the fds or
/// maps it was raised for are gone: drop it last).
pub struct Raised {
    resource: Resource,
    previous: Option<Rlimit>,
}

impl Raised {
    /// Nothing was changed.
    fn none(resource: Resource) -> Raised {
        Raised {
            resource,
            previous: None,
        }
    }

    #[cfg(test)]
    pub fn changed(&self) -> bool {
        self.previous.is_some()
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        if let Some(p) = self.previous.take() {
            let _ = setrlimit(self.resource, p);
        }
    }
}

/// Raise the soft fd limit to the hard one if `needed` fds (and some slack) do not fit;
/// the limits in force after, and the guard that restores them.
pub fn raise_nofile(needed: usize) -> (u64, u64, Raised) {
    let r = getrlimit(Resource::Nofile);
    let (soft, hard) = (r.current.unwrap_or(u64::MAX), r.maximum.unwrap_or(u64::MAX));
    if (soft as usize) < needed.saturating_add(64) && soft < hard {
        let mut n = r;
        n.current = r.maximum;
        if setrlimit(Resource::Nofile, n).is_ok() {
            return (
                hard,
                hard,
                Raised {
                    resource: Resource::Nofile,
                    previous: Some(r),
                },
            );
        }
    }
    (soft, hard, Raised::none(Resource::Nofile))
}

/// `major.minor` of a kernel release string (`5.10.0-21-amd64`, `4.18.0-513.el8`).
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// What to do about RLIMIT_MEMLOCK before loading BPF maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemlockPlan {
    /// 5.11+ (memory cgroup accounting), or already unlimited.
    NotNeeded,
    /// Set the soft (and, when allowed, hard) limit to this.
    Raise(Option<u64>, Option<u64>),
}

/// The plan for a kernel `version` and the limits `soft`/`hard` (`None`: unlimited);
/// `privileged`: CAP_SYS_RESOURCE, which may raise the hard limit too.
fn memlock_plan(
    version: Option<(u32, u32)>,
    soft: Option<u64>,
    hard: Option<u64>,
    privileged: bool,
) -> MemlockPlan {
    // An unknown version is treated as old: raising is harmless where it is not needed.
    if version.is_some_and(|v| v >= (5, 11)) || soft.is_none() {
        return MemlockPlan::NotNeeded;
    }
    if privileged {
        MemlockPlan::Raise(None, None)
    } else {
        MemlockPlan::Raise(hard, hard)
    }
}

/// Before loading BPF maps on a kernel older than 5.11: raise RLIMIT_MEMLOCK (unlimited
/// as root) for the session. An error says why eBPF cannot be used (the caller falls
/// back to perf with it as the note).
pub fn raise_memlock_for_bpf(release: &str) -> anyhow::Result<Raised> {
    let version = kernel_version(release);
    let r = getrlimit(Resource::Memlock);
    let privileged = rustix::process::geteuid().is_root();
    match memlock_plan(version, r.current, r.maximum, privileged) {
        MemlockPlan::NotNeeded => Ok(Raised::none(Resource::Memlock)),
        MemlockPlan::Raise(soft, hard) => {
            let want = Rlimit {
                current: soft,
                maximum: hard,
            };
            if want == r {
                return Err(too_low(release, r.current));
            }
            setrlimit(Resource::Memlock, want).map_err(|e| {
                anyhow::anyhow!("{}; raising it failed ({e})", too_low(release, r.current))
            })?;
            Ok(Raised {
                resource: Resource::Memlock,
                previous: Some(r),
            })
        }
    }
}

fn too_low(release: &str, soft: Option<u64>) -> anyhow::Error {
    anyhow::anyhow!(
        "kernel {release} (before 5.11) charges BPF maps to RLIMIT_MEMLOCK, which is {} KiB here",
        soft.map(|s| (s / 1024).to_string())
            .unwrap_or_else(|| "unlimited".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_are_read_from_the_release() {
        assert_eq!(kernel_version("6.18.44-fc-v1252"), Some((6, 18)));
        assert_eq!(kernel_version("5.10.0-21-amd64"), Some((5, 10)));
        assert_eq!(kernel_version("4.18.0-513.el8_9.x86_64"), Some((4, 18)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn memlock_is_raised_only_before_5_11() {
        let kib64 = Some(64 * 1024);
        assert_eq!(
            memlock_plan(Some((6, 18)), kib64, kib64, true),
            MemlockPlan::NotNeeded
        );
        assert_eq!(
            memlock_plan(Some((5, 11)), kib64, kib64, false),
            MemlockPlan::NotNeeded
        );
        // Old kernel: unlimited as root, up to the hard limit otherwise.
        assert_eq!(
            memlock_plan(Some((5, 10)), kib64, kib64, true),
            MemlockPlan::Raise(None, None)
        );
        assert_eq!(
            memlock_plan(Some((4, 18)), kib64, Some(1 << 30), false),
            MemlockPlan::Raise(Some(1 << 30), Some(1 << 30))
        );
        // Already unlimited.
        assert_eq!(
            memlock_plan(Some((4, 18)), None, None, false),
            MemlockPlan::NotNeeded
        );
        // Unknown version: raised, as for an old kernel.
        assert_eq!(
            memlock_plan(None, kib64, kib64, true),
            MemlockPlan::Raise(None, None)
        );
    }

    #[test]
    fn an_old_kernel_with_a_low_limit_that_cannot_be_raised_falls_back_with_a_reason() {
        if rustix::process::geteuid().is_root() {
            // Root may raise it: check the message of the unprivileged case only.
            let e = too_low("5.10.0-21-amd64", Some(64 * 1024));
            assert_eq!(
                e.to_string(),
                "kernel 5.10.0-21-amd64 (before 5.11) charges BPF maps to RLIMIT_MEMLOCK, which is 64 KiB here"
            );
            return;
        }
        let r = getrlimit(Resource::Memlock);
        if r.current.is_some() && r.current == r.maximum {
            let e = raise_memlock_for_bpf("5.10.0").err().unwrap();
            assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
        }
    }
}
