//! Building the iostat wire types from an interval's device rates (the types themselves
//! are in [`crate::wire::iostat`]).

use crate::interval::DeviceRates;
use crate::wire::iostat::{IostatBasic, IostatDevice};
use crate::wire::{r2n, r2o};

impl IostatDevice {
    /// Exactly sysstat's columns (for `iowhy iostat --format json`).
    pub fn sysstat(d: &DeviceRates) -> Self {
        IostatDevice {
            disk_device: d.name.clone(),
            r_s: r2n(d.r_s),
            w_s: r2n(d.w_s),
            d_s: r2n(d.d_s),
            f_s: r2n(d.f_s),
            rkb_s: r2n(d.rkb_s),
            wkb_s: r2n(d.wkb_s),
            dkb_s: r2n(d.dkb_s),
            rrqm_s: r2n(d.rrqm_s),
            wrqm_s: r2n(d.wrqm_s),
            drqm_s: r2n(d.drqm_s),
            rrqm: r2n(d.rrqm_pct),
            wrqm: r2n(d.wrqm_pct),
            drqm: r2n(d.drqm_pct),
            r_await: r2n(d.r_await_ms),
            w_await: r2n(d.w_await_ms),
            d_await: r2n(d.d_await_ms),
            f_await: r2n(d.f_await_ms),
            rareq_sz: r2n(d.rareq_sz_kb),
            wareq_sz: r2n(d.wareq_sz_kb),
            dareq_sz: r2n(d.dareq_sz_kb),
            aqu_sz: r2n(d.aqu_sz),
            util: r2n(d.util_pct),
            ..Default::default()
        }
    }

    /// sysstat's columns plus ours (for `diagnose`).
    pub fn extended(d: &DeviceRates) -> Self {
        IostatDevice {
            svctm_est_ms: r2o(d.svctm_est_ms),
            in_flight: Some(d.in_flight),
            rotational: d.rotational,
            queue_depth: d.nr_requests,
            scheduler: d.scheduler.clone(),
            ..IostatDevice::sysstat(d)
        }
    }
}

impl IostatBasic {
    pub fn sysstat(d: &DeviceRates, itv_cs: u64) -> Self {
        let secs = itv_cs as f64 / 100.0;
        // kB over the interval from the per-second rate: sysstat prints the delta of
        // sectors / 2 in integer arithmetic; the epsilon undoes float error before the floor.
        let total = |kb_s: f64| (kb_s * secs + 1e-6).floor() as u64;
        IostatBasic {
            disk_device: d.name.clone(),
            tps: r2n(d.r_s + d.w_s + d.d_s),
            kb_read_s: r2n(d.rkb_s),
            kb_wrtn_s: r2n(d.wkb_s),
            kb_dscd_s: r2n(d.dkb_s),
            kb_read: total(d.rkb_s),
            kb_wrtn: total(d.wkb_s),
            kb_dscd: total(d.dkb_s),
        }
    }
}
