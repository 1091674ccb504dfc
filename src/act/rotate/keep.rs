//! The old rotations after a rotate: `--keep N` removes those beyond N and `--compress`
//! gzips the rest, except any still held open or whose holders cannot all be known.

use std::path::Path;

use super::{RotateOptions, RotateReport};
use crate::act::holders;
use crate::act::rotated::{self, Gzipped, Rotated, existing};
use crate::act::safe_open::{Identity, kind_of};
use crate::roots::Roots;

pub(super) enum Kept {
    Open(String),
    Unknown(String),
}

/// Why an old rotation must stay (held open, or holders unknown); `None`: free to go.
pub(super) fn keep_reason(roots: &Roots, p: &Path) -> Option<Kept> {
    let spelled = roots.host_path_of(p).display().to_string();
    match holders::free(roots, p, &spelled) {
        Ok(()) => None,
        Err(why) if why.starts_with("still open") => Some(Kept::Open(why)),
        Err(why) => Some(Kept::Unknown(why)),
    }
}

/// `--keep` and `--compress` on the old rotations. Problems become notes: the rotation
/// itself is done by now and must not be reported as failed.
pub(super) fn old_files(
    roots: &Roots,
    a: &RotateOptions,
    dir: &Path,
    base: &str,
    removals: &[String],
    report: &mut RotateReport,
) {
    let host = |p: &Path| roots.host_path_of(p).display().to_string();
    for r in removals {
        let p = dir.join(r);
        match keep_reason(roots, &p) {
            Some(Kept::Open(why)) => {
                report.notes.push(format!("kept {}: {why}", host(&p)));
                report.kept_open.push(host(&p));
            }
            Some(Kept::Unknown(why)) => {
                report.notes.push(format!("kept {}: {why}", host(&p)));
                report.kept_unknown.push(host(&p));
            }
            None => match std::fs::remove_file(&p) {
                Ok(()) => report.removed.push(host(&p)),
                Err(e) => report
                    .notes
                    .push(format!("could not remove {}: {e}", host(&p))),
            },
        }
    }
    if !a.compress {
        return;
    }
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            report.notes.push(format!("not compressing: {e}"));
            return;
        }
    };
    for r in existing(base, &names).into_iter().filter(|r| !r.gz) {
        let p = dir.join(r.name(base));
        // Judged by the name itself: a symlink, FIFO or device put there by the
        // directory's owner is left alone (its holders say nothing of its target).
        let checked = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => Identity::of(&m),
            Ok(m) => {
                report.notes.push(format!(
                    "not compressed {}: it is {}, not a regular file",
                    host(&p),
                    kind_of(m.file_type())
                ));
                continue;
            }
            Err(e) => {
                report
                    .notes
                    .push(format!("not compressed {}: {e}", host(&p)));
                continue;
            }
        };
        match keep_reason(roots, &p) {
            Some(Kept::Open(_)) => {
                report.kept_open.push(host(&p));
                continue;
            }
            Some(Kept::Unknown(_)) => {
                report.kept_unknown.push(host(&p));
                continue;
            }
            None => {}
        }
        let gz = dir.join(Rotated { n: r.n, gz: true }.name(base));
        match rotated::gzip(&p, &gz, checked) {
            Ok(Gzipped::Done(to)) => report.compressed.push(host(&to)),
            Ok(Gzipped::Skipped(why)) => report
                .notes
                .push(format!("not compressed {}: {why}", host(&p))),
            Err(e) => report
                .notes
                .push(format!("not compressed {}: {e:#}", host(&p))),
        }
    }
}
