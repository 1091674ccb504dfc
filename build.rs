//! Build script: the git revision the binary was built from, as IOWHY_GIT_REVISION, read
//! by `iowhy --version` and by serve's `iowhy_build_info{revision}` (one value for both).
//! Outside a git checkout (a crates.io tarball, a source package) it is "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    // A packager may set it (a build from a tarball whose revision is known).
    println!("cargo:rerun-if-env-changed=IOWHY_GIT_REVISION");
    if let Ok(rev) = std::env::var("IOWHY_GIT_REVISION") {
        println!("cargo:rustc-env=IOWHY_GIT_REVISION={rev}");
        return;
    }
    let rev = git(&["rev-parse", "--short=12", "HEAD"]);
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the ref it points at (a
    // commit). In a worktree the git dir is not ./.git, so ask git where it is.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&["rev-parse", "--git-common-dir"]).map_or(dir.clone(), PathBuf::from);
            let loose = common.join(&r);
            if loose.exists() {
                println!("cargo:rerun-if-changed={}", loose.display());
            }
            // A packed ref has no file of its own. (A path that does not exist would make
            // cargo rerun this script, and rebuild the crate, on every build.)
            let packed = common.join("packed-refs");
            if packed.exists() {
                println!("cargo:rerun-if-changed={}", packed.display());
            }
        }
    }
    // No "-dirty" mark: edits to the work tree do not move HEAD, so the script would not
    // rerun to notice them and the mark would go stale.
    let rev = rev.unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=IOWHY_GIT_REVISION={rev}");
}
