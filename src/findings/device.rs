//! `device_saturated`: a disk that is busy all the time and makes its requests wait.
//!
//! %util alone misleads: it is the share of time with at least one request in flight, so a
//! single thread that syncs in a loop holds an SSD at 100% while the device could serve
//! dozens more requests in parallel. We weigh the queue (aqu-sz) against the device's own
//! service time and queue depth, and say which case it is:
//! - queueing: await far above the device's time per request (the seed: await 293 ms,
//!   svctm 2.2 ms) — requests wait behind each other, the device itself is fine;
//! - slow device: the device takes long for each request even without a queue;
//! - serial: busy, but about one request at a time — %util is not saturation here.

use crate::interval::{DeviceRates, Interval};

use super::{Finding, Kind, Severity, remedy::step};

/// sysstat's man page: saturation "when this value is close to 100% for devices serving
/// requests serially". 90 leaves room for sampling jitter.
const UTIL_BUSY_PCT: f64 = 90.0;
/// A request that waits 50 ms is felt by people as a stall (an SSD answers in < 1 ms, a
/// spinning disk in ~10 ms).
const AWAIT_STALL_MS: f64 = 50.0;
/// await this many times the device's own time per request means queueing.
const QUEUEING_FACTOR: f64 = 5.0;
/// With fewer requests than this in the queue on average, the device is not saturated.
const AQU_QUEUED: f64 = 1.5;
/// A queue this full (aqu-sz over nr_requests) leaves new requests waiting for a free
/// slot in the block layer, whatever the latency: the device takes no more at once.
const QUEUE_FULL_FRACTION: f64 = 0.5;
/// Device time per request above which the device itself is slow; also the latency below
/// which a busy device is keeping up (an SSD answers in well under a millisecond, a
/// spinning disk in ~10 ms with a seek).
const SLOW_SERVICE_MS_SSD: f64 = 10.0;
const SLOW_SERVICE_MS_ROTATIONAL: f64 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Queueing,
    SlowDevice,
    Serial,
    /// Many requests in flight, each answered fast: a parallel device doing its job.
    KeepingUp,
    Busy,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Queueing => "queueing",
            Cause::SlowDevice => "slow_device",
            Cause::Serial => "serial",
            Cause::KeepingUp => "keeping_up",
            Cause::Busy => "busy",
        }
    }
}

/// Block latency measured by tracing (eBPF): mean time in the device and in the queue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Traced {
    pub device_ms: f64,
    pub queue_ms: Option<f64>,
    pub device_p99_ms: Option<f64>,
}

/// The traced latency of one device over the window, all request kinds together.
pub fn traced(iv: &Interval, d: &DeviceRates) -> Option<Traced> {
    let b = iv.block_latency(d)?;
    Some(Traced {
        device_ms: b.device_mean_ms?,
        queue_ms: b.queue_mean_ms,
        device_p99_ms: b.device_p99_ms,
    })
}

/// Classify one device's interval; `None` when it is not busy or slow at all. With traced
/// block latency, the device's own time is measured; without, it is estimated from
/// busy time per request (sysstat's old svctm).
///
/// A device that serves requests in parallel (NVMe, SSD, virtio) can show 100% util with a
/// queue of 8 while answering each request in 0.4 ms: it keeps up, and busy-time per
/// request (0.05 ms) underestimates its own time by the parallelism. So latency must be
/// high in absolute terms before a queue counts as saturation, or the queue must come close
/// to the device's queue depth (`nr_requests`), where new requests wait for a free slot.
pub fn classify(d: &DeviceRates, traced: Option<Traced>) -> Option<(Severity, Cause)> {
    let svctm = traced
        .map(|t| t.device_ms)
        .or(d.svctm_est_ms)
        .unwrap_or(0.0);
    let rotational = d.rotational.unwrap_or(false);
    let slow_ms = if rotational {
        SLOW_SERVICE_MS_ROTATIONAL
    } else {
        SLOW_SERVICE_MS_SSD
    };
    let latency = d.await_ms.max(d.f_await_ms);
    let busy = d.util_pct >= UTIL_BUSY_PCT;
    let stalled = latency >= AWAIT_STALL_MS;
    let queued = d.aqu_sz >= AQU_QUEUED;
    let queue_full = queue_fill(d).is_some_and(|f| f >= QUEUE_FULL_FRACTION);
    if !(busy || stalled && queued || queue_full) {
        return None;
    }
    let cause =
        if queued && latency >= slow_ms && svctm > 0.0 && d.await_ms >= QUEUEING_FACTOR * svctm {
            Cause::Queueing
        } else if svctm >= slow_ms {
            Cause::SlowDevice
        } else if queue_full || rotational && queued {
            Cause::Busy
        } else if latency < slow_ms {
            // Busy but answering fast: one request at a time, or many in parallel.
            if queued {
                Cause::KeepingUp
            } else {
                Cause::Serial
            }
        } else if !queued {
            Cause::Serial
        } else {
            Cause::Busy
        };
    let severity = match cause {
        _ if stalled && queued && (busy || queue_full) => Severity::Critical,
        Cause::Serial | Cause::KeepingUp => Severity::Info,
        _ => Severity::Warning,
    };
    Some((severity, cause))
}

/// How full the device's request queue is on average: aqu-sz over `nr_requests`.
fn queue_fill(d: &DeviceRates) -> Option<f64> {
    d.nr_requests
        .filter(|&n| n > 0)
        .map(|n| d.aqu_sz / n as f64)
}

pub fn device_saturated(iv: &Interval) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in iv.whole_devices() {
        let t = traced(iv, d);
        let Some((severity, cause)) = classify(d, t) else {
            continue;
        };
        let svctm = t.map(|t| t.device_ms).or(d.svctm_est_ms).unwrap_or(0.0);
        let summary = match cause {
            Cause::Queueing => format!(
                "{} is saturated: {:.1}% util, requests wait {:.1} ms but the device needs only ~{:.1} ms each (queueing, not a slow disk)",
                d.name, d.util_pct, d.await_ms, svctm
            ),
            Cause::SlowDevice => format!(
                "{} is slow: {:.1} ms per request at {:.1}% util, queue {:.1}",
                d.name, svctm, d.util_pct, d.aqu_sz
            ),
            Cause::Serial => format!(
                "{} is busy {:.1}% of the time with ~{:.1} request in flight: a serial workload, not saturation",
                d.name, d.util_pct, d.aqu_sz
            ),
            Cause::KeepingUp => format!(
                "{} is busy {:.1}% of the time with ~{:.1} requests in flight, but answers each in {:.1} ms: it keeps up, not saturation",
                d.name, d.util_pct, d.aqu_sz, d.await_ms
            ),
            Cause::Busy => format!(
                "{} is busy: {:.1}% util, queue {:.1}{}, await {:.1} ms",
                d.name,
                d.util_pct,
                d.aqu_sz,
                d.nr_requests
                    .map(|n| format!(" of depth {n}"))
                    .unwrap_or_default(),
                d.await_ms
            ),
        };
        let mut f = Finding::new(Kind::DeviceSaturated, severity, summary);
        f.subject.device = Some(d.name.clone());
        f.evidence
            .num("util_pct", d.util_pct)
            .num("aqu_sz", d.aqu_sz)
            .num("await_ms", d.await_ms)
            .num("r_await_ms", d.r_await_ms)
            .num("w_await_ms", d.w_await_ms)
            .opt("svctm_est_ms", d.svctm_est_ms)
            .opt("traced_device_time_ms", t.map(|t| t.device_ms))
            .opt("traced_device_time_p99_ms", t.and_then(|t| t.device_p99_ms))
            .opt("traced_queue_time_ms", t.and_then(|t| t.queue_ms))
            .num("r_per_s", d.r_s)
            .num("w_per_s", d.w_s)
            .num("f_per_s", d.f_s)
            .num("f_await_ms", d.f_await_ms)
            .num("read_bytes_per_s", d.rkb_s * 1024.0)
            .num("write_bytes_per_s", d.wkb_s * 1024.0)
            .opt("queue_depth", d.nr_requests.map(|v| v as f64))
            .opt("queue_fill_pct", queue_fill(d).map(|f| f * 100.0))
            .text("cause", cause.as_str());
        if let Some(r) = d.rotational {
            f.evidence
                .text("media", if r { "rotational" } else { "non-rotational" });
        }
        if let Some(b) = iv
            .after
            .block_device(&d.name)
            .and_then(|b| b.loop_backing_file.clone())
        {
            f.evidence.text("loop_backing_file", b);
        }
        f.explanation = explain(d, cause);
        if let Some(t) = t {
            f.explanation.push_str(&format!(
                " Traced block requests: {:.3} ms in the device on average{}.",
                t.device_ms,
                t.queue_ms
                    .map(|q| format!(", {q:.3} ms waiting in the scheduler queue"))
                    .unwrap_or_default()
            ));
        }
        f.remediation = vec![
            step(
                "iowhy top -b -n 3 -d 1",
                "which processes write to it right now",
            ),
            step(
                "iowhy iostat -x -z 1 5",
                "watch await, aqu-sz and %util per second",
            ),
        ];
        if d.f_s > 0.0 && d.f_s >= 0.2 * d.w_s {
            f.remediation.push(step(
                "iowhy trace --duration 5s",
                "many flushes: find the process that syncs after every write",
            ));
        }
        out.push(f);
    }
    out
}

fn explain(d: &DeviceRates, cause: Cause) -> String {
    let svctm = d.svctm_est_ms.unwrap_or(0.0);
    let depth = d
        .nr_requests
        .map(|n| format!(" (queue depth {n})"))
        .unwrap_or_default();
    let flush = if d.f_s > 0.0 {
        format!(" {:.0} flushes/s wait {:.1} ms each.", d.f_s, d.f_await_ms)
    } else {
        String::new()
    };
    match cause {
        Cause::Queueing => format!(
            "On average {:.1} requests are queued{depth}. Each takes the device ~{svctm:.1} ms, but a request waits {:.1} ms in total: \
             the time goes to waiting in line behind other requests. Every task that touches this disk waits too, \
             which is why the machine feels hung while the CPU is idle.{flush}",
            d.aqu_sz, d.await_ms
        ),
        Cause::SlowDevice => format!(
            "The device needs ~{svctm:.1} ms per request even with a short queue ({:.1}): the device (or what is behind it) is slow, \
             not merely busy.{flush}",
            d.aqu_sz
        ),
        Cause::Serial => format!(
            "%util counts time with at least one request in flight. With ~{:.1} request at a time at {:.0} requests per second, a single \
             thread waiting for each request (typically a sync after every write) keeps %util near 100 while a non-rotational \
             device could serve many more in parallel. Look at the latency each request sees ({:.1} ms) rather than %util.{flush}",
            d.aqu_sz,
            d.r_s + d.w_s + d.f_s,
            d.await_ms
        ),
        Cause::KeepingUp => format!(
            "%util counts time with at least one request in flight, so a device that serves requests in parallel shows 100% long \
             before it is full. Here ~{:.1} requests are in flight{depth} and each completes in {:.1} ms: the device keeps up. \
             If the machine still stalls, look at I/O pressure and at who syncs, not at this disk's %util.{flush}",
            d.aqu_sz, d.await_ms
        ),
        Cause::Busy => format!(
            "The device is busy {:.0}% of the time with {:.1} requests queued on average{depth}; requests take {:.1} ms.{}{flush}",
            d.util_pct,
            d.aqu_sz,
            d.await_ms,
            if queue_fill(d).is_some_and(|f| f >= QUEUE_FULL_FRACTION) {
                " The queue is close to its depth: new requests wait for a free slot before the device even sees them."
            } else {
                ""
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_(d: &DeviceRates) -> Option<(Severity, Cause)> {
        classify(d, None)
    }

    #[test]
    fn traced_device_time_overrides_the_estimate() {
        // Busy-time-per-request says 0.1 ms, but tracing measured 40 ms in the device.
        let d = dev(95.0, 1.2, 45.0, 0.1, false);
        let t = Traced {
            device_ms: 40.0,
            queue_ms: Some(1.0),
            device_p99_ms: Some(90.0),
        };
        assert_eq!(
            classify(&d, Some(t)),
            Some((Severity::Warning, Cause::SlowDevice))
        );
        assert_eq!(classify_(&d).map(|x| x.1), Some(Cause::Serial));
    }

    fn dev(util: f64, aqu: f64, await_ms: f64, svctm: f64, rot: bool) -> DeviceRates {
        DeviceRates {
            name: "nvme0n1".into(),
            util_pct: util,
            aqu_sz: aqu,
            await_ms,
            w_await_ms: await_ms,
            svctm_est_ms: Some(svctm),
            rotational: Some(rot),
            w_s: 42.0,
            ..Default::default()
        }
    }

    #[test]
    fn the_seed_incident_is_queueing_and_critical() {
        // iostat -xz in the seed: util 99.8, avgqu-sz 12.4, await 293.5, svctm 2.2.
        assert_eq!(
            classify_(&dev(99.8, 12.4, 293.5, 2.2, false)),
            Some((Severity::Critical, Cause::Queueing))
        );
    }

    #[test]
    fn idle_device_is_not_flagged() {
        assert_eq!(classify_(&dev(3.0, 0.01, 0.4, 0.3, false)), None);
    }

    #[test]
    fn one_request_at_a_time_on_ssd_is_serial_info() {
        assert_eq!(
            classify_(&dev(99.0, 1.0, 1.0, 1.0, false)),
            Some((Severity::Info, Cause::Serial))
        );
    }

    #[test]
    fn slow_rotational_disk() {
        assert_eq!(
            classify_(&dev(95.0, 1.2, 45.0, 40.0, true)),
            Some((Severity::Warning, Cause::SlowDevice))
        );
    }

    #[test]
    fn long_waits_with_a_queue_count_even_below_full_util() {
        let r = classify_(&dev(70.0, 6.0, 120.0, 5.0, false));
        assert_eq!(r, Some((Severity::Warning, Cause::Queueing)));
    }

    #[test]
    fn a_parallel_device_at_full_util_that_answers_fast_is_not_saturated() {
        // NVMe: 100% util, 8 in flight, 0.4 ms per request; busy time per request is
        // 0.05 ms because it serves eight at once. Not a stall, whatever %util says.
        let r = classify_(&dev(100.0, 8.0, 0.4, 0.05, false));
        assert_eq!(r, Some((Severity::Info, Cause::KeepingUp)));
    }

    #[test]
    fn a_queue_near_its_depth_is_saturation_even_with_moderate_latency() {
        let mut d = dev(100.0, 60.0, 6.0, 0.1, false);
        d.nr_requests = Some(64);
        assert_eq!(classify_(&d), Some((Severity::Warning, Cause::Busy)));
        // The same queue on a device with a deep queue keeps up.
        d.nr_requests = Some(1023);
        assert_eq!(classify_(&d), Some((Severity::Info, Cause::KeepingUp)));
        // A full queue and long waits: critical, even below 90% util.
        let mut d = dev(80.0, 60.0, 120.0, 1.0, false);
        d.nr_requests = Some(64);
        assert_eq!(classify_(&d), Some((Severity::Critical, Cause::Queueing)));
    }

    #[test]
    fn the_finding_carries_the_queue_depth_it_was_weighed_against() {
        let mut d = dev(99.8, 12.4, 293.5, 2.2, false);
        d.nr_requests = Some(64);
        let mut iv = crate::findings::fixture_interval("quiet");
        assert!(
            device_saturated(&iv).is_empty(),
            "a quiet machine's disks are fine"
        );
        iv.devices = vec![d];
        let f = device_saturated(&iv);
        assert_eq!(f.len(), 1, "{f:#?}");
        let e = &f[0].evidence;
        assert_eq!(e.get_num("queue_depth"), Some(64.0));
        let fill = e.get_num("queue_fill_pct").unwrap();
        assert!((fill - 12.4 / 64.0 * 100.0).abs() < 1e-9, "{fill}");
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(f[0].explanation.contains("(queue depth 64)"));
    }
}
