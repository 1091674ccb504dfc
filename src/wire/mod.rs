//! The JSON wire types: the stable contract of `DESIGN.md`, one file per command family
//! (ripgrep's `jsont.rs` habit). Every type is `Serialize + Deserialize`, so the tests
//! read each command's `--format json` output back through the type that wrote it.
//! Scripts and tests depend on these names: add fields, never rename one.
//!
//! The snapshot JSON (`iowhy snapshot`) is [`crate::snapshot::Snapshot`] itself.

pub mod act;
pub mod containers;
pub mod diagnose;
pub mod files;
pub mod iostat;
pub mod lab;
pub mod record;
pub mod space;
pub mod top;
pub mod trace;

use serde::{Deserialize, Deserializer};

pub const VERSION: u32 = 1;

/// The one rounding rule of the JSON contract: `places` decimals. A value that is not a
/// number (NaN or ±∞, as a rate over a zero interval is) is unknown: `None`, which the JSON
/// prints as null — never as 0.
pub fn round(v: f64, places: i32) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    let m = 10f64.powi(places);
    let r = (v * m).round() / m;
    // Beyond ~1e306 the scaling overflows; such a number has no decimals to round.
    Some(if r.is_finite() { r } else { v })
}

/// Two decimals, sysstat's precision.
pub fn r2(v: f64) -> Option<f64> {
    round(v, 2)
}

/// [`r2`] of a value that may be unknown already.
pub fn r2o(v: Option<f64>) -> Option<f64> {
    v.and_then(r2)
}

/// [`r2`] for a field the contract types as a plain number (sysstat's columns, a rate or
/// a duration a consumer computes with): an unknown stays NaN, which serde_json writes as
/// null, never 0; read back with [`nan_if_null`].
pub fn r2n(v: f64) -> f64 {
    r2(v).unwrap_or(f64::NAN)
}

/// Deserialize a plain-number field that the JSON may carry as null (a value that was not
/// a number, see [`r2n`]) back into NaN.
pub fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_is_null_never_zero() {
        assert_eq!(r2(1.005_f64 * 1000.0), Some(1005.0));
        assert_eq!(r2(2.0 / 3.0), Some(0.67));
        assert_eq!(round(2.0 / 3.0, 4), Some(0.6667));
        assert_eq!(r2(f64::NAN), None);
        assert_eq!(r2(f64::INFINITY), None);
        assert_eq!(r2o(Some(f64::NEG_INFINITY)), None);
        assert_eq!(r2(f64::MAX), Some(f64::MAX));
        // A plain-number field: null in the JSON, NaN again when read back.
        #[derive(serde::Serialize, Deserialize)]
        struct T {
            #[serde(deserialize_with = "nan_if_null")]
            v: f64,
        }
        let s = serde_json::to_string(&T {
            v: r2n(f64::INFINITY - f64::INFINITY),
        })
        .unwrap();
        assert_eq!(s, r#"{"v":null}"#);
        assert!(serde_json::from_str::<T>(&s).unwrap().v.is_nan());
        assert_eq!(serde_json::from_str::<T>(r#"{"v":1.5}"#).unwrap().v, 1.5);
    }

    #[test]
    fn kinds_and_severities_travel_by_their_names() {
        use crate::findings::{Kind, Severity};
        for k in Kind::ALL {
            let s = serde_json::to_string(&k).unwrap();
            assert_eq!(s, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&s).unwrap(), k);
        }
        for v in [Severity::Critical, Severity::Warning, Severity::Info] {
            let s = serde_json::to_string(&v).unwrap();
            assert_eq!(s, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<Severity>(&s).unwrap(), v);
        }
        assert!(serde_json::from_str::<Kind>("\"no_such_kind\"").is_err());
    }
}
