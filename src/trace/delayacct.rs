//! `--enable-delayacct`: turn `kernel.task_delayacct` on for one run and put it back
//! afterwards — only when asked. Tasks that started before it was turned on have no delay
//! record at all, so their I/O wait stays unknown (null); the report says so.

use anyhow::{Context, Result};

use crate::roots::Roots;

pub struct DelayAcctGuard {
    path: std::path::PathBuf,
    previous: Option<String>,
    /// Uptime (s) when we turned it on; `None` when it was already on.
    pub enabled_at_uptime_s: Option<f64>,
}

impl DelayAcctGuard {
    pub fn enable(roots: &Roots) -> Result<DelayAcctGuard> {
        let path = roots.proc("sys/kernel/task_delayacct");
        let old = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: this kernel has no delay accounting switch (needs 5.14+)",
                path.display()
            )
        })?;
        if old.trim() == "1" {
            return Ok(DelayAcctGuard {
                path,
                previous: None,
                enabled_at_uptime_s: None,
            });
        }
        std::fs::write(&path, "1")
            .with_context(|| format!("turning on {} (needs root)", path.display()))?;
        let up = std::fs::read_to_string(roots.proc("uptime"))
            .ok()
            .and_then(|t| crate::parse::kv::parse_uptime(&t).ok());
        Ok(DelayAcctGuard {
            path,
            previous: Some(old.trim().to_string()),
            enabled_at_uptime_s: up,
        })
    }
}

impl Drop for DelayAcctGuard {
    fn drop(&mut self) {
        if let Some(v) = &self.previous {
            let _ = std::fs::write(&self.path, v);
        }
    }
}
