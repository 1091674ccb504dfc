//! Who rotates a container's log, and at what size: the kubelet (for `/var/log/pods`),
//! Docker's log driver (`daemon.json`, or the options the container was created with),
//! conmon's `--log-size-max`, or logrotate. Pure parsers and one pure decision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::scan::RuntimeScan;
use crate::parse::ParseError;
use crate::parse::container::logrotate;

/// The kubelet's defaults (KubeletConfiguration v1beta1): `containerLogMaxSize: 10Mi`,
/// `containerLogMaxFiles: 5`, and it looks at the logs every `containerLogMonitorInterval`
/// (10s): a log that grows more than max-size in that time cannot be kept under it.
const KUBELET_DEFAULT_MAX_SIZE: u64 = 10 << 20;
const KUBELET_DEFAULT_MAX_FILES: u32 = 5;
const KUBELET_DEFAULT_MONITOR_S: f64 = 10.0;
/// Docker's `local` driver defaults (docs: "local" logging driver): 20 MB, 5 files.
const DOCKER_LOCAL_MAX_SIZE: u64 = 20 << 20;
const DOCKER_LOCAL_MAX_FILES: u32 = 5;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeletLogConfig {
    pub max_size_bytes: u64,
    pub max_files: u32,
    pub monitor_interval_s: f64,
    /// Where the values came from.
    pub source: String,
    /// The kubelet process was seen (false: only its files or `/var/log/pods` were).
    pub running: bool,
    /// The KubeletConfiguration file that was read (`--config`, else kubeadm's default),
    /// or that `--config` names when it could not be read: where a person changes them.
    #[serde(default)]
    pub config_file: Option<String>,
    /// The sizes come from command-line flags, which override the file.
    #[serde(default)]
    pub from_flags: bool,
}

impl KubeletLogConfig {
    pub fn defaults(source: &str, running: bool) -> Self {
        KubeletLogConfig {
            max_size_bytes: KUBELET_DEFAULT_MAX_SIZE,
            max_files: KUBELET_DEFAULT_MAX_FILES,
            monitor_interval_s: KUBELET_DEFAULT_MONITOR_S,
            source: source.to_string(),
            running,
            config_file: None,
            from_flags: false,
        }
    }

    /// Where to change the settings, for a remediation line.
    pub fn where_to_change(&self) -> String {
        let file = self
            .config_file
            .clone()
            .unwrap_or_else(|| super::paths::KUBELET_CONFIG.to_string());
        if self.from_flags {
            format!(
                "the kubelet's --container-log-max-size/--container-log-max-files flags (they override {file})"
            )
        } else {
            file
        }
    }
}

/// The log settings in a KubeletConfiguration file (YAML, or JSON which is YAML too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KubeletFile {
    pub max_size_bytes: Option<u64>,
    pub max_files: Option<u32>,
    pub monitor_interval_s: Option<f64>,
}

pub fn kubelet_file(text: &str) -> Result<KubeletFile, ParseError> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| ParseError::new("kubelet config", e.to_string()))?;
    let Some(doc) = docs.into_iter().next() else {
        return Ok(KubeletFile::default());
    };
    if !matches!(doc, Yaml::Hash(_)) {
        return Err(ParseError::new("kubelet config", "not a mapping"));
    }
    let scalar = |k: &str| match &doc[k] {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    };
    Ok(KubeletFile {
        // A quantity (`10Mi`) or, as the API's resource.Quantity also takes, a plain
        // number of bytes (`20971520`).
        max_size_bytes: scalar("containerLogMaxSize").and_then(|s| k8s_quantity_or_bytes(&s)),
        max_files: scalar("containerLogMaxFiles").and_then(|s| s.parse().ok()),
        monitor_interval_s: scalar("containerLogMonitorInterval")
            .and_then(|s| humantime::parse_duration(&s).ok())
            .map(|d| d.as_secs_f64()),
    })
}

/// A Kubernetes quantity as bytes: `10Mi`, `512Ki`, `1Gi`, `10M` (= 10^6), `100`.
pub fn k8s_quantity(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = if split == 0 {
        return None;
    } else {
        s.split_at(split)
    };
    let mult: f64 = match unit {
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some((v * mult) as u64)
}

/// A plain number of bytes, or a quantity.
fn k8s_quantity_or_bytes(s: &str) -> Option<u64> {
    s.trim().parse().ok().or_else(|| k8s_quantity(s))
}

/// Docker's sizes (`units.RAMInBytes`): `10m`, `1g`, `100k`, `10MB`, `1024`; powers of
/// 1024, case-insensitive.
pub fn docker_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        c if c.is_ascii_digit() => (t, 1),
        _ => return None,
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some((v * mult as f64) as u64)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerLogConfig {
    pub driver: String,
    /// `None`: the driver keeps the file growing forever (json-file without max-size).
    pub max_size_bytes: Option<u64>,
    pub max_files: Option<u32>,
    pub source: String,
}

/// A driver and its options, with Docker's defaults applied: json-file grows without
/// limit unless `max-size` is set (`max-file` then defaults to 1); `local` keeps 5 files
/// of 20 MB.
pub fn docker_log_config(
    driver: &str,
    opts: &BTreeMap<String, String>,
    source: &str,
) -> DockerLogConfig {
    let driver = if driver.is_empty() {
        "json-file"
    } else {
        driver
    };
    let size = opts
        .get("max-size")
        .and_then(|s| docker_size(s))
        .filter(|s| *s > 0);
    let files = opts.get("max-file").and_then(|s| s.parse().ok());
    let (max_size_bytes, max_files) = match driver {
        "local" => (
            Some(size.unwrap_or(DOCKER_LOCAL_MAX_SIZE)),
            Some(files.unwrap_or(DOCKER_LOCAL_MAX_FILES)),
        ),
        _ => (size, size.map(|_| files.unwrap_or(1))),
    };
    DockerLogConfig {
        driver: driver.to_string(),
        max_size_bytes,
        max_files,
        source: source.to_string(),
    }
}

/// `/etc/docker/daemon.json`: `log-driver` and `log-opts`.
pub fn docker_daemon(text: &str, source: &str) -> Result<DockerLogConfig, ParseError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ParseError::new("daemon.json", e.to_string()))?;
    let driver = v.get("log-driver").and_then(|d| d.as_str()).unwrap_or("");
    let opts: BTreeMap<String, String> = v
        .get("log-opts")
        .and_then(|o| o.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(docker_log_config(driver, &opts, source))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotatedBy {
    Kubelet,
    Docker,
    Conmon,
    Logrotate,
    /// Nothing rotates it.
    Nothing,
    /// We could not tell (e.g. a Docker container whose config we could not read).
    Unknown,
}

impl RotatedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            RotatedBy::Kubelet => "kubelet",
            RotatedBy::Docker => "docker",
            RotatedBy::Conmon => "conmon",
            RotatedBy::Logrotate => "logrotate",
            RotatedBy::Nothing => "none",
            RotatedBy::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    pub by: RotatedBy,
    /// Rotated (or truncated) past this size.
    pub max_size_bytes: Option<u64>,
    pub max_files: Option<u32>,
    /// How often the rotator looks: a log growing faster than max-size per interval
    /// outruns it.
    pub check_interval_s: Option<f64>,
    /// One line for a person: the settings and where they come from.
    pub detail: String,
}

impl Rotation {
    fn nothing(detail: impl Into<String>) -> Self {
        Rotation {
            by: RotatedBy::Nothing,
            max_size_bytes: None,
            max_files: None,
            check_interval_s: None,
            detail: detail.into(),
        }
    }
}

/// What a container log is, for deciding who rotates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// A CRI log under `/var/log/pods`, rotated by the kubelet.
    Cri,
    /// Docker's json-file (or local) log.
    DockerJson,
    /// A file the containerd shim writes (`ctr run --log-uri file://`).
    ShimFile,
    /// A file conmon writes (CRI-O, Podman `k8s-file`).
    Conmon,
    /// Any other log file a process holds open.
    Plain,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Cri => "cri",
            LogKind::DockerJson => "docker-json",
            LogKind::ShimFile => "shim-file",
            LogKind::Conmon => "conmon",
            LogKind::Plain => "file",
        }
    }
}

/// Who rotates the log at `path` (host spelling). `docker` is the container's own log
/// config when known; `conmon_max` is conmon's `--log-size-max`.
pub fn resolve(
    kind: LogKind,
    path: &str,
    docker: Option<&DockerLogConfig>,
    conmon_max: Option<i64>,
    scan: &RuntimeScan,
) -> Rotation {
    let lr = scan.logrotate.covering(path);
    let by_logrotate = |s: &logrotate::Stanza| Rotation {
        by: RotatedBy::Logrotate,
        max_size_bytes: s.size_trigger_bytes(),
        max_files: s.rotate,
        check_interval_s: Some(scan.logrotate.run_interval_s()),
        detail: s.describe(),
    };
    match kind {
        LogKind::Cri => {
            let k = scan.kubelet.clone().unwrap_or_else(|| {
                KubeletLogConfig::defaults("kubelet defaults (kubelet not seen)", false)
            });
            Rotation {
                by: RotatedBy::Kubelet,
                max_size_bytes: Some(k.max_size_bytes),
                max_files: Some(k.max_files),
                check_interval_s: Some(k.monitor_interval_s),
                detail: format!(
                    "kubelet: containerLogMaxSize={} containerLogMaxFiles={} every {}s (from {})",
                    crate::units::bytes_u(k.max_size_bytes),
                    k.max_files,
                    k.monitor_interval_s,
                    k.source
                ),
            }
        }
        LogKind::DockerJson => {
            let cfg = docker.or(scan.docker_daemon.as_ref());
            match cfg {
                Some(c) if c.max_size_bytes.is_some() => Rotation {
                    by: RotatedBy::Docker,
                    max_size_bytes: c.max_size_bytes,
                    max_files: c.max_files,
                    check_interval_s: None,
                    detail: format!(
                        "docker {}: max-size={} max-file={} (from {})",
                        c.driver,
                        crate::units::bytes_u(c.max_size_bytes.unwrap_or(0)),
                        c.max_files.unwrap_or(1),
                        c.source
                    ),
                },
                _ => match lr {
                    Some(s) => by_logrotate(s),
                    None => Rotation::nothing(format!(
                        "docker json-file without max-size grows forever ({})",
                        cfg.map(|c| c.source.as_str())
                            .unwrap_or("no /etc/docker/daemon.json: Docker's default")
                    )),
                },
            }
        }
        LogKind::Conmon => match conmon_max.filter(|m| *m > 0) {
            Some(m) => Rotation {
                by: RotatedBy::Conmon,
                max_size_bytes: Some(m as u64),
                max_files: Some(1),
                check_interval_s: None,
                detail: format!("conmon --log-size-max {m}"),
            },
            None => match lr {
                Some(s) => by_logrotate(s),
                None => Rotation::nothing(
                    "conmon without --log-size-max, and no logrotate stanza covers it",
                ),
            },
        },
        LogKind::ShimFile | LogKind::Plain => match lr {
            Some(s) => by_logrotate(s),
            None => Rotation::nothing(if kind == LogKind::ShimFile {
                "containerd never rotates a --log-uri file, and no logrotate stanza covers it"
            } else {
                "no logrotate stanza covers it"
            }),
        },
    }
}

/// A rotated log twice its configured maximum has missed at least one rotation: the
/// rotator is not keeping up (the kubelet checks every 10 s; logrotate once a day).
const NOT_KEEPING_UP_FACTOR: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationState {
    /// Rotated, and within its limit.
    Ok,
    /// Nothing rotates it.
    Missing,
    /// Rotated in principle, but far past its maximum.
    NotKeepingUp,
    Unknown,
}

impl RotationState {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationState::Ok => "ok",
            RotationState::Missing => "missing",
            RotationState::NotKeepingUp => "not_keeping_up",
            RotationState::Unknown => "unknown",
        }
    }
}

pub fn state(r: &Rotation, size_bytes: Option<u64>) -> RotationState {
    match (r.by, r.max_size_bytes, size_bytes) {
        (RotatedBy::Nothing, _, _) => RotationState::Missing,
        (RotatedBy::Unknown, _, _) => RotationState::Unknown,
        (_, Some(max), Some(size)) if size as f64 >= NOT_KEEPING_UP_FACTOR * max as f64 => {
            RotationState::NotKeepingUp
        }
        _ => RotationState::Ok,
    }
}

/// Fold kubelet flags over its config file over the defaults.
pub fn kubelet_effective(
    file: Option<(&KubeletFile, &str)>,
    flag_size: Option<&str>,
    flag_files: Option<&str>,
    running: bool,
) -> KubeletLogConfig {
    let mut k = KubeletLogConfig::defaults("kubelet defaults", running);
    let mut sources = Vec::new();
    if let Some((f, src)) = file {
        if let Some(v) = f.max_size_bytes {
            k.max_size_bytes = v;
        }
        if let Some(v) = f.max_files {
            k.max_files = v;
        }
        if let Some(v) = f.monitor_interval_s {
            k.monitor_interval_s = v;
        }
        sources.push(src.to_string());
        k.config_file = Some(src.to_string());
    }
    if let Some(v) = flag_size.and_then(k8s_quantity_or_bytes) {
        k.max_size_bytes = v;
        k.from_flags = true;
        sources.push("--container-log-max-size".into());
    }
    if let Some(v) = flag_files.and_then(|s| s.parse().ok()) {
        k.max_files = v;
        k.from_flags = true;
        sources.push("--container-log-max-files".into());
    }
    if !sources.is_empty() {
        k.source = sources.join(" + ");
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(k8s_quantity("10Mi"), Some(10 << 20));
        assert_eq!(k8s_quantity("10M"), Some(10_000_000));
        assert_eq!(k8s_quantity("1.5Gi"), Some(3 << 29));
        assert_eq!(k8s_quantity("100"), None);
        assert_eq!(k8s_quantity_or_bytes("100"), Some(100));
        assert_eq!(k8s_quantity("Mi"), None);
        assert_eq!(k8s_quantity("10m"), None, "milli-bytes make no sense");
        assert_eq!(docker_size("10m"), Some(10 << 20));
        assert_eq!(docker_size("10MB"), Some(10 << 20));
        assert_eq!(docker_size("1g"), Some(1 << 30));
        assert_eq!(docker_size("2048"), Some(2048));
        assert_eq!(docker_size("ten"), None);
        assert_eq!(docker_size(""), None);
    }

    #[test]
    fn kubelet_config_file() {
        // The kubeadm-generated /var/lib/kubelet/config.yaml, trimmed, with log settings.
        let y = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\ncgroupDriver: systemd\ncontainerLogMaxSize: 50Mi\ncontainerLogMaxFiles: 3\ncontainerLogMonitorInterval: 5s\n";
        let f = kubelet_file(y).unwrap();
        assert_eq!(f.max_size_bytes, Some(50 << 20));
        assert_eq!(f.max_files, Some(3));
        assert_eq!(f.monitor_interval_s, Some(5.0));
        // Without the keys: the defaults apply.
        let f = kubelet_file("kind: KubeletConfiguration\n").unwrap();
        let k = kubelet_effective(Some((&f, "/var/lib/kubelet/config.yaml")), None, None, true);
        assert_eq!((k.max_size_bytes, k.max_files), (10 << 20, 5));
        // Flags win over the file.
        let f = kubelet_file("{\"containerLogMaxSize\": \"20Mi\"}").unwrap();
        let k = kubelet_effective(Some((&f, "c.json")), Some("100Mi"), Some("2"), true);
        assert_eq!((k.max_size_bytes, k.max_files), (100 << 20, 2));
        assert!(k.source.contains("--container-log-max-size"));
        assert!(k.from_flags);
        assert!(k.where_to_change().contains("--container-log-max-size"));
        // A plain number of bytes, as an integer or a string, is a size too.
        let f = kubelet_file("containerLogMaxSize: 20971520\n").unwrap();
        assert_eq!(f.max_size_bytes, Some(20 << 20));
        let f = kubelet_file("containerLogMaxSize: \"100\"\n").unwrap();
        assert_eq!(f.max_size_bytes, Some(100));
        let k = kubelet_effective(Some((&f, "/etc/kubernetes/kubelet.yaml")), None, None, true);
        assert_eq!(
            k.config_file.as_deref(),
            Some("/etc/kubernetes/kubelet.yaml")
        );
        assert_eq!(k.where_to_change(), "/etc/kubernetes/kubelet.yaml");
        assert!(kubelet_file("- a\n- b\n").is_err());
        assert!(kubelet_file("a: [\n").is_err());
        assert_eq!(kubelet_file("").unwrap(), KubeletFile::default());
    }

    #[test]
    fn docker_configs() {
        let d = docker_daemon("{}", "/etc/docker/daemon.json").unwrap();
        assert_eq!((d.driver.as_str(), d.max_size_bytes), ("json-file", None));
        let d = docker_daemon(
            r#"{"log-driver":"json-file","log-opts":{"max-size":"10m","max-file":"3"}}"#,
            "x",
        )
        .unwrap();
        assert_eq!((d.max_size_bytes, d.max_files), (Some(10 << 20), Some(3)));
        let d = docker_daemon(r#"{"log-driver":"local"}"#, "x").unwrap();
        assert_eq!(d.max_size_bytes, Some(DOCKER_LOCAL_MAX_SIZE));
        assert!(docker_daemon("{", "x").is_err());
    }

    #[test]
    fn who_rotates() {
        let mut scan = RuntimeScan::default();
        let r = resolve(
            LogKind::Cri,
            "/var/log/pods/a_b_c/d/0.log",
            None,
            None,
            &scan,
        );
        assert_eq!(r.by, RotatedBy::Kubelet);
        assert_eq!(r.max_size_bytes, Some(10 << 20));
        let r = resolve(
            LogKind::DockerJson,
            "/var/lib/docker/containers/x/x-json.log",
            None,
            None,
            &scan,
        );
        assert_eq!(r.by, RotatedBy::Nothing);
        let r = resolve(LogKind::ShimFile, "/srv/flood.log", None, None, &scan);
        assert_eq!(r.by, RotatedBy::Nothing);
        let mut d = logrotate::Defaults::default();
        let (st, _) = logrotate::parse(
            "/srv/*.log {\n size 100M\n}\n",
            "/etc/logrotate.d/srv",
            &mut d,
        )
        .unwrap();
        scan.logrotate.stanzas = st;
        let r = resolve(LogKind::ShimFile, "/srv/flood.log", None, None, &scan);
        assert_eq!(r.by, RotatedBy::Logrotate);
        assert_eq!(r.check_interval_s, Some(86400.0));
        let r = resolve(LogKind::Conmon, "/x.log", None, Some(1 << 20), &scan);
        assert_eq!(r.by, RotatedBy::Conmon);
        let r = resolve(LogKind::Conmon, "/x.log", None, Some(-1), &scan);
        assert_eq!(r.by, RotatedBy::Nothing);
    }
}
