//! The commands: each wires a source, the pipeline and a renderer.

pub mod capture;
pub mod containers;
pub mod diagnose;
pub mod files;
pub mod iostat;
pub mod playbook;
pub mod snapshot;
pub mod space;
pub mod top;
pub mod trace;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A flag set by SIGINT, SIGTERM or SIGHUP, for commands that stop cleanly (finish the
/// report, undo an action, clean up a lab). SIGHUP is what an ssh session that drops
/// sends: without it, iowhy would die mid-action instead of undoing. Commands that do not
/// ask keep the default behaviour (exit at once).
///
/// The flag is the reader's own stop flag (`reader::guard::STOP`): reads stuck in the
/// kernel are given up on as soon as it is set, so a signal ends a command within the
/// readers' polling interval even while a read hangs.
pub fn stop_flag() -> Arc<AtomicBool> {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    let flag = Arc::clone(&crate::source::reader::guard::STOP);
    REGISTER.call_once(|| {
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
    });
    flag
}

/// Progress goes to stderr, and only when a person is watching.
pub fn progress_wanted() -> bool {
    std::io::stderr().is_terminal()
}
