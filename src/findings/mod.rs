//! Findings: small rules, each a pure function of an [`Interval`].
//!
//! A finding names its subject, its evidence (numbers) and its remediation (commands that
//! are correct and safe for that case). Kinds are snake_case and stable: add kinds, never
//! rename one (`DESIGN.md`).

pub mod container;
pub(crate) mod device;
pub(crate) mod fsync;
pub(crate) mod memory;
pub(crate) mod pipe;
pub(crate) mod pressure;
pub mod remedy;
pub(crate) mod space;
pub(crate) mod story;
pub(crate) mod stuck;
pub(crate) mod writer;

use serde::{Deserialize, Serialize, Serializer};

use crate::interval::Interval;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DeviceSaturated,
    TopIoWriter,
    FsyncStorm,
    FilesystemFull,
    InodeExhaustion,
    DeletedFileHeldOpen,
    RunawayLog,
    IoPressure,
    DStateTasks,
    DirtyWritebackPressure,
    PipeBlocked,
    ContainerLogFlood,
    LogRotationMissing,
    FilesystemUnresponsive,
    FilesystemFrozen,
}

impl Kind {
    /// Every kind, for exporters that print a series per kind.
    pub const ALL: [Kind; 15] = [
        Kind::DeviceSaturated,
        Kind::TopIoWriter,
        Kind::FsyncStorm,
        Kind::FilesystemFull,
        Kind::InodeExhaustion,
        Kind::DeletedFileHeldOpen,
        Kind::RunawayLog,
        Kind::IoPressure,
        Kind::DStateTasks,
        Kind::DirtyWritebackPressure,
        Kind::PipeBlocked,
        Kind::ContainerLogFlood,
        Kind::LogRotationMissing,
        Kind::FilesystemUnresponsive,
        Kind::FilesystemFrozen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DeviceSaturated => "device_saturated",
            Kind::TopIoWriter => "top_io_writer",
            Kind::FsyncStorm => "fsync_storm",
            Kind::FilesystemFull => "filesystem_full",
            Kind::InodeExhaustion => "inode_exhaustion",
            Kind::DeletedFileHeldOpen => "deleted_file_held_open",
            Kind::RunawayLog => "runaway_log",
            Kind::IoPressure => "io_pressure",
            Kind::DStateTasks => "d_state_tasks",
            Kind::DirtyWritebackPressure => "dirty_writeback_pressure",
            Kind::PipeBlocked => "pipe_blocked",
            Kind::ContainerLogFlood => "container_log_flood",
            Kind::LogRotationMissing => "log_rotation_missing",
            Kind::FilesystemUnresponsive => "filesystem_unresponsive",
            Kind::FilesystemFrozen => "filesystem_frozen",
        }
    }

    /// Where the story tells it: device, then process, then file, then filesystem, then
    /// the system-wide symptoms.
    pub fn story_rank(self) -> u8 {
        match self {
            // A filesystem that stopped answering stops everyone on it: the first cause.
            Kind::FilesystemFrozen | Kind::FilesystemUnresponsive => 0,
            Kind::DeviceSaturated => 0,
            Kind::IoPressure => 1,
            Kind::TopIoWriter => 2,
            Kind::FsyncStorm => 3,
            Kind::PipeBlocked => 4,
            Kind::ContainerLogFlood => 5,
            Kind::RunawayLog => 6,
            Kind::LogRotationMissing => 7,
            Kind::DeletedFileHeldOpen => 8,
            Kind::FilesystemFull => 9,
            Kind::InodeExhaustion => 10,
            Kind::DirtyWritebackPressure => 11,
            Kind::DStateTasks => 12,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A kind or severity read back from the JSON compares with its wire name
/// (`f.kind == "fsync_storm"`).
impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<&str> for Severity {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a finding is about. Every field is optional; the JSON leaves out absent ones.
/// The wire type of `findings[].subject` too ([`crate::wire::diagnose::FindingJson`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(f64),
    Text(String),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // Keep integers integral; round the rest by the wire's rule (null if unknown).
            Value::Num(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => s.serialize_i64(*v as i64),
            Value::Num(v) => match crate::wire::r2(*v) {
                Some(r) => s.serialize_f64(r),
                None => s.serialize_none(),
            },
            Value::Text(t) => s.serialize_str(t),
        }
    }
}

/// Named numbers and strings, in the order the rule added them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence(pub Vec<(&'static str, Value)>);

impl Evidence {
    pub fn num(&mut self, name: &'static str, v: f64) -> &mut Self {
        self.0.push((name, Value::Num(v)));
        self
    }
    pub fn opt(&mut self, name: &'static str, v: Option<f64>) -> &mut Self {
        if let Some(v) = v {
            self.num(name, v);
        }
        self
    }
    pub fn text(&mut self, name: &'static str, v: impl Into<String>) -> &mut Self {
        self.0.push((name, Value::Text(v.into())));
        self
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    pub fn get_num(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            Value::Num(v) => Some(*v),
            Value::Text(_) => None,
        }
    }
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    /// One line: what is wrong, with the key number.
    pub summary: String,
    pub subject: Subject,
    pub evidence: Evidence,
    /// Commands to run, in order, each with its reason as a trailing `# comment`.
    pub remediation: Vec<String>,
    /// The reasoning behind the summary, for the text and Markdown reports.
    pub explanation: String,
}

impl Finding {
    pub fn new(kind: Kind, severity: Severity, summary: impl Into<String>) -> Self {
        Finding {
            kind,
            severity,
            summary: summary.into(),
            subject: Subject::default(),
            evidence: Evidence::default(),
            remediation: Vec::new(),
            explanation: String::new(),
        }
    }
}

/// A rule: a pure function of the interval.
pub type Rule = fn(&Interval) -> Vec<Finding>;

const RULES: &[Rule] = &[
    device::device_saturated,
    pressure::io_pressure,
    writer::top_io_writer,
    fsync::fsync_storm,
    space::runaway_log,
    space::deleted_file_held_open,
    space::filesystem_full,
    space::inode_exhaustion,
    memory::dirty_writeback_pressure,
    pressure::d_state_tasks,
    pipe::pipe_blocked,
    container::container_log_flood,
    container::log_rotation_missing,
    stuck::filesystem_unresponsive,
    stuck::filesystem_frozen,
];

/// Run every rule and order the findings: most severe first, then in story order.
pub fn run_all(iv: &Interval) -> Vec<Finding> {
    run(iv, RULES)
}

pub fn run(iv: &Interval, rules: &[Rule]) -> Vec<Finding> {
    let mut out: Vec<Finding> = rules.iter().flat_map(|r| r(iv)).collect();
    sort(&mut out);
    out
}

pub fn sort(out: &mut [Finding]) {
    out.sort_by_key(|f| (f.severity, f.kind.story_rank()));
}

/// Test support: the interval between the two snapshots of a fixture captured from a
/// real lab incident (`tests/fixtures/NAME/t0`, `t1`), for rules to be shown firing and
/// not firing on real kernel data, with one number changed where a test needs it.
#[cfg(test)]
pub(crate) fn fixture_interval(name: &str) -> Interval {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut c = crate::source::Collector::fixture(&dir).expect("fixture");
    let o = crate::source::SnapshotOptions::full();
    let (a, b) = (c.snapshot(&o).unwrap(), c.snapshot(&o).unwrap());
    Interval::new(a, b)
}

/// Test support: the pids the lab reported for a fixture (`lab.json`).
#[cfg(test)]
pub(crate) fn fixture_lab_pids(name: &str) -> Vec<u32> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .join("lab.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("lab.json")).unwrap();
    v["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect()
}

#[cfg(test)]
mod rule_tests;
