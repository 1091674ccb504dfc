//! The text exposition format 0.0.4, through prometheus-client's encoder (it escapes
//! label values and HELP, writes `_total`, histogram buckets, `+Inf`): constant metrics
//! built from the latest sample on each scrape, as exporters should (no registry state
//! that concurrent scrapes could race on).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType as PcType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::exporter::{Family, Value};
use crate::fields::MetricType;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug)]
struct Families(Vec<Family>);

/// A counter whose value is given (prometheus-client's `ConstCounter` takes integers or
/// floats; ours are f64 for seconds).
#[derive(Debug)]
struct Counter(f64);

/// A count of bytes or calls prints as an integer; seconds keep their fraction.
fn as_integer(x: f64) -> Option<u64> {
    (x >= 0.0 && x.fract() == 0.0 && x < 9.0e15).then_some(x as u64)
}

impl EncodeMetric for Counter {
    fn encode(&self, mut e: MetricEncoder) -> Result<(), std::fmt::Error> {
        match as_integer(self.0) {
            Some(n) => e.encode_counter::<NoLabelSet, _, f64>(&n, None),
            None => e.encode_counter::<NoLabelSet, _, f64>(&self.0, None),
        }
    }
    fn metric_type(&self) -> PcType {
        PcType::Counter
    }
}

#[derive(Debug)]
struct Hist<'a> {
    buckets: &'a [(f64, u64)],
    sum: f64,
    count: u64,
}

impl EncodeMetric for Hist<'_> {
    fn encode(&self, mut e: MetricEncoder) -> Result<(), std::fmt::Error> {
        e.encode_histogram::<NoLabelSet>(self.sum, self.count, self.buckets, None)
    }
    fn metric_type(&self) -> PcType {
        PcType::Histogram
    }
}

fn pc_type(t: MetricType) -> PcType {
    match t {
        MetricType::Counter => PcType::Counter,
        MetricType::Gauge => PcType::Gauge,
        MetricType::Histogram => PcType::Histogram,
    }
}

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for fam in &self.0 {
            let f = &fam.field;
            // The encoder appends `_total` to counters itself.
            let name = f.name.strip_suffix("_total").unwrap_or(f.name);
            let mut me = enc.encode_descriptor(name, f.help, None, pc_type(f.kind))?;
            for (values, v) in &fam.samples {
                if matches!(v, Value::Num(x) if !x.is_finite()) {
                    // An unknown is absent, never printed as a number.
                    continue;
                }
                let labels: Vec<(&str, &str)> = f
                    .labels
                    .iter()
                    .copied()
                    .zip(values.iter().map(String::as_str))
                    .collect();
                let m = me.encode_family(&labels)?;
                match (f.kind, v) {
                    (MetricType::Counter, Value::Num(x)) => Counter(*x).encode(m)?,
                    (MetricType::Gauge, Value::Num(x)) => match as_integer(*x) {
                        Some(n) => ConstGauge::new(n as i64).encode(m)?,
                        None => ConstGauge::new(*x).encode(m)?,
                    },
                    (
                        MetricType::Histogram,
                        Value::Hist {
                            buckets,
                            sum,
                            count,
                        },
                    ) => Hist {
                        buckets,
                        sum: if sum.is_finite() { *sum } else { 0.0 },
                        count: *count,
                    }
                    .encode(m)?,
                    _ => return Err(std::fmt::Error),
                }
            }
        }
        Ok(())
    }
}

/// The families as text 0.0.4.
pub fn render(families: Vec<Family>) -> String {
    let mut reg = Registry::default();
    reg.register_collector(Box::new(Families(families)));
    let mut out = String::new();
    // Writing into a String cannot fail; a type mismatch between a field and its value
    // (a bug) ends the output where it happened.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
    out
}

/// What promtool 2.42 does not check in an exposition: each family's HELP and TYPE once
/// and before its samples, the samples of a family together, no label set twice. The
/// problems found, one line each.
pub fn lint(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut help = std::collections::HashSet::new();
    let mut typed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut done = std::collections::HashSet::new();
    let mut series = std::collections::HashSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("").to_string();
            if !help.insert(name.clone()) {
                problems.push(format!("HELP of {name} twice"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, t) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            if typed.insert(name.to_string(), t.to_string()).is_some() {
                problems.push(format!("TYPE of {name} twice"));
            }
            if let Some(c) = current.replace(name.to_string()) {
                done.insert(c);
            }
            if done.contains(name) {
                problems.push(format!("{name} is split"));
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = match line.rfind(' ') {
            Some(i) => &line[..i],
            None => {
                problems.push(format!("no value: {line}"));
                continue;
            }
        };
        let name = key.split('{').next().unwrap_or("");
        let family = current.clone().unwrap_or_default();
        let belongs = name == family
            || (typed.get(&family).map(String::as_str) == Some("histogram")
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{family}{s}")));
        if !belongs {
            problems.push(format!("{name} outside its family (after TYPE {family})"));
        }
        if !series.insert(key.to_string()) {
            problems.push(format!("duplicate series {key}"));
        }
    }
    for name in typed.keys() {
        if !help.contains(name) {
            problems.push(format!("{name} has no HELP"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields;

    #[test]
    fn lint_finds_what_promtool_lets_pass() {
        let bad = "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"1\"} 2\n# HELP b x\n# TYPE b gauge\nb 1\na_total{x=\"2\"} 1\n";
        let p = lint(bad);
        assert!(
            p.iter().any(|l| l.starts_with("duplicate series a_total")),
            "{p:?}"
        );
        assert!(p.iter().any(|l| l.contains("outside its family")), "{p:?}");
    }

    fn fam(field: fields::Field, samples: Vec<(Vec<&str>, Value)>) -> Family {
        Family {
            field,
            samples: samples
                .into_iter()
                .map(|(l, v)| (l.into_iter().map(String::from).collect(), v))
                .collect(),
        }
    }

    #[test]
    fn hostile_label_values_are_escaped_and_help_and_type_come_once() {
        let out = render(vec![
            fam(
                fields::PROCESS_WRITE_BYTES,
                vec![
                    (vec!["", "", "", "a\"b\\c\nd"], Value::Num(4096.0)),
                    (vec!["ns", "p", "c", "sp ace (x)"], Value::Num(1.0)),
                ],
            ),
            fam(
                fields::FSYNC_DURATION,
                vec![(
                    vec!["vda"],
                    Value::Hist {
                        buckets: vec![(0.001, 2), (0.002, 1)],
                        sum: 0.004,
                        count: 3,
                    },
                )],
            ),
        ]);
        let want = "\
# HELP iowhy_process_write_bytes_total ";
        assert!(out.starts_with(want), "{out}");
        assert_eq!(
            out.matches("# TYPE iowhy_process_write_bytes_total counter\n")
                .count(),
            1
        );
        assert!(out.contains(
            "iowhy_process_write_bytes_total{namespace=\"\",pod=\"\",container=\"\",comm=\"a\\\"b\\\\c\\nd\"} 4096"
        ), "{out}");
        assert!(out.contains("comm=\"sp ace (x)\"} 1"), "{out}");
        assert!(out.contains("# TYPE iowhy_fsync_duration_seconds histogram\n"));
        assert!(
            out.contains("iowhy_fsync_duration_seconds_bucket{device=\"vda\",le=\"0.001\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("iowhy_fsync_duration_seconds_bucket{device=\"vda\",le=\"0.002\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("iowhy_fsync_duration_seconds_bucket{device=\"vda\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("iowhy_fsync_duration_seconds_count{device=\"vda\"} 3\n"),
            "{out}"
        );
        assert!(!out.contains("# EOF"), "text 0.0.4, not OpenMetrics");
    }

    #[test]
    fn an_unknown_value_is_absent_never_zero() {
        let out = render(vec![fam(
            fields::COLLECTOR_DURATION,
            vec![
                (vec!["process"], Value::Num(f64::NAN)),
                (vec!["disk"], Value::Num(f64::INFINITY)),
                (vec!["mounts"], Value::Num(0.25)),
            ],
        )]);
        assert!(!out.contains("collector=\"process\""), "{out}");
        assert!(!out.contains("collector=\"disk\""), "{out}");
        assert!(
            out.contains("iowhy_scrape_collector_duration_seconds{collector=\"mounts\"} 0.25\n"),
            "{out}"
        );
    }
}
