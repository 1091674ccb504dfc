//! The runtimes' own records of a container: the OCI bundle's `config.json` (containerd
//! keeps one per task; the CRI plugin annotates it with the pod), and Docker's
//! `config.v2.json` / `hostconfig.json`. Pure functions of the JSON text.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::parse::ParseError;

/// The annotations worth keeping from a bundle: the pod and container names.
/// containerd's CRI plugin writes `io.kubernetes.cri.*`; CRI-O writes
/// `io.kubernetes.pod.*` / `io.kubernetes.container.name` (also Docker's labels under
/// cri-dockerd).
pub fn keep_annotation(k: &str) -> bool {
    k.starts_with("io.kubernetes.") || k.starts_with("io.iowhy.") || k == CONTAINER_MANAGER
}

/// Which tool created a containers/storage container: `cri-o` or `libpod` (Podman).
pub const CONTAINER_MANAGER: &str = "io.container.manager";

/// `config.json` → its kept annotations.
pub fn bundle_annotations(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ParseError::new("OCI config.json", e.to_string()))?;
    Ok(string_map(v.get("annotations"), keep_annotation))
}

fn string_map(v: Option<&Value>, keep: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| keep(k))
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Who a container is in Kubernetes terms, from annotations or labels of any runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct K8sNames {
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    pub container: Option<String>,
    /// The pod sandbox (pause container), not an application container.
    pub sandbox: bool,
    pub sandbox_id: Option<String>,
}

pub fn k8s_names(a: &BTreeMap<String, String>) -> K8sNames {
    let get = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k).cloned());
    let kind = get(&[
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
        "io.kubernetes.docker.type",
    ]);
    K8sNames {
        pod: get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        namespace: get(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
        pod_uid: get(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]),
        container: get(&[
            "io.kubernetes.cri.container-name",
            "io.kubernetes.container.name",
        ])
        .filter(|n| n != "POD"),
        sandbox: matches!(kind.as_deref(), Some("sandbox" | "podsandbox")),
        sandbox_id: get(&[
            "io.kubernetes.cri.sandbox-id",
            "io.kubernetes.cri-o.SandboxID",
        ]),
    }
}

/// What Docker's `config.v2.json` says about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerConfig {
    pub name: Option<String>,
    pub log_path: Option<String>,
    pub running: bool,
    pub pid: Option<u32>,
    pub labels: BTreeMap<String, String>,
}

pub fn docker_config(text: &str) -> Result<DockerConfig, ParseError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ParseError::new("config.v2.json", e.to_string()))?;
    let state = v.get("State");
    Ok(DockerConfig {
        name: v
            .get("Name")
            .and_then(Value::as_str)
            .map(|n| n.trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty()),
        log_path: v
            .get("LogPath")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        running: state
            .and_then(|s| s.get("Running"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        pid: state
            .and_then(|s| s.get("Pid"))
            .and_then(Value::as_u64)
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok()),
        labels: string_map(
            v.get("Config").and_then(|c| c.get("Labels")),
            keep_annotation,
        ),
    })
}

/// A log driver and its options.
pub type LogDriver = (String, BTreeMap<String, String>);

/// `hostconfig.json`'s `LogConfig`: the log driver and options this container was
/// created with (they override `daemon.json`, which only applies to new containers).
pub fn docker_host_log_config(text: &str) -> Result<Option<LogDriver>, ParseError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ParseError::new("hostconfig.json", e.to_string()))?;
    let Some(lc) = v.get("LogConfig") else {
        return Ok(None);
    };
    let driver = lc
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(Some((driver, string_map(lc.get("Config"), |_| true))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_bundle() {
        // Annotations of a container created by containerd 1.6's CRI plugin (trimmed
        // `config.json` of a kubeadm node).
        let t = r#"{"ociVersion":"1.0.2-dev","process":{"args":["/app"]},"annotations":{
          "io.kubernetes.cri.container-name":"logger","io.kubernetes.cri.container-type":"container",
          "io.kubernetes.cri.image-name":"docker.io/library/busybox:1.36",
          "io.kubernetes.cri.sandbox-id":"9c1f","io.kubernetes.cri.sandbox-name":"flood-7d9",
          "io.kubernetes.cri.sandbox-namespace":"prod","io.kubernetes.cri.sandbox-uid":"7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b",
          "org.opencontainers.image.title":"x"}}"#;
        let a = bundle_annotations(t).unwrap();
        assert!(!a.contains_key("org.opencontainers.image.title"));
        let n = k8s_names(&a);
        assert_eq!(n.pod.as_deref(), Some("flood-7d9"));
        assert_eq!(n.namespace.as_deref(), Some("prod"));
        assert_eq!(n.container.as_deref(), Some("logger"));
        assert_eq!(n.sandbox_id.as_deref(), Some("9c1f"));
        assert!(!n.sandbox);
        let mut s = a.clone();
        s.insert("io.kubernetes.cri.container-type".into(), "sandbox".into());
        assert!(k8s_names(&s).sandbox);
        // A `ctr run` bundle has no annotations at all.
        assert!(
            bundle_annotations(r#"{"ociVersion":"1.0.2-dev"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(bundle_annotations("{").is_err());
        assert!(
            bundle_annotations(r#"{"annotations":{"io.kubernetes.x":1}}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn docker_files() {
        let c = docker_config(r#"{"ID":"abc","Name":"/web","LogPath":"/var/lib/docker/containers/abc/abc-json.log",
            "State":{"Running":true,"Pid":4242},"Config":{"Labels":{"io.kubernetes.pod.name":"p","maintainer":"x"}}}"#).unwrap();
        assert_eq!(c.name.as_deref(), Some("web"));
        assert_eq!(c.pid, Some(4242));
        assert!(c.running);
        assert_eq!(c.labels.len(), 1);
        let c = docker_config(r#"{"State":{"Running":false,"Pid":0},"LogPath":""}"#).unwrap();
        assert_eq!((c.pid, c.log_path), (None, None));
        let (d, o) = docker_host_log_config(
            r#"{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m","max-file":"3"}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(d, "json-file");
        assert_eq!(o["max-size"], "10m");
        assert_eq!(docker_host_log_config("{}").unwrap(), None);
        assert!(docker_config("[").is_err());
    }
}
