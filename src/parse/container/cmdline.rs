//! Command lines that name containers: containerd's shims, conmon (CRI-O and Podman's
//! monitor), the kubelet and dockerd. Pure functions of argv.

use serde::{Deserialize, Serialize};

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A flag's value in Go's `flag`/`pflag` and glib's spellings: `-name v`, `--name v`,
/// `-name=v`, `--name=v` (and a short `-c v` when `short` is given).
fn flag_value<'a>(argv: &'a [String], long: &str, short: Option<&str>) -> Option<&'a str> {
    flag_values(argv, long, short).into_iter().next()
}

/// Every value of a repeatable flag, in order.
pub fn flag_values<'a>(argv: &'a [String], long: &str, short: Option<&str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        let name = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        if let Some(n) = name {
            let (n, inline) = match n.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (n, None),
            };
            if n == long || Some(n) == short {
                match inline {
                    Some(v) => out.push(v),
                    None => {
                        if let Some(v) = argv.get(i + 1) {
                            out.push(v.as_str());
                            i += 1;
                        }
                    }
                }
            }
        }
        i += 1;
    }
    out
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimArgs {
    /// containerd namespace: `k8s.io` (CRI), `moby` (Docker), `default` (ctr), ...
    pub namespace: Option<String>,
    /// The task id. With the runc v2 shim one shim serves a whole pod, so for Kubernetes
    /// this is the pod sandbox's id, not each container's.
    pub id: Option<String>,
}

/// `containerd-shim-runc-v2 -namespace NS -id ID -address ...`, the v1 shim
/// `containerd-shim -namespace NS -workdir .../NS/ID ...`, and other v2 shims
/// (`containerd-shim-kata-v2`, `containerd-shim-runsc-v1`).
pub fn shim(argv: &[String]) -> Option<ShimArgs> {
    let exe = basename(argv.first()?);
    if !exe.starts_with("containerd-shim") {
        return None;
    }
    let id = flag_value(argv, "id", None)
        .map(str::to_string)
        .or_else(|| flag_value(argv, "workdir", None).map(|w| basename(w).to_string()));
    Some(ShimArgs {
        namespace: flag_value(argv, "namespace", None).map(str::to_string),
        id: id.filter(|s| !s.is_empty()),
    })
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConmonArgs {
    pub cid: Option<String>,
    pub name: Option<String>,
    /// The log file (`-l k8s-file:/path` or `-l /path`), without the driver prefix.
    pub log_path: Option<String>,
    /// `--log-size-max`: conmon truncates the log past this many bytes; absent or -1 =
    /// unlimited.
    pub log_size_max: Option<i64>,
    /// Podman passes `--exit-command .../podman`; CRI-O does not.
    pub podman: bool,
    /// `-b`: the OCI bundle directory (holds `config.json`).
    #[serde(default)]
    pub bundle: Option<String>,
}

/// conmon, CRI-O's and Podman's per-container monitor: it holds the container's stdio and
/// writes its log.
pub fn conmon(argv: &[String]) -> Option<ConmonArgs> {
    if basename(argv.first()?) != "conmon" {
        return None;
    }
    let log_path = flag_values(argv, "log-path", Some("l"))
        .into_iter()
        .find_map(|l| match l.split_once(':') {
            Some(("k8s-file", p)) => Some(p.to_string()),
            Some(("journald" | "passthrough" | "none", _)) => None,
            _ if l.starts_with('/') => Some(l.to_string()),
            _ => None,
        });
    Some(ConmonArgs {
        cid: flag_value(argv, "cid", Some("c")).map(str::to_string),
        name: flag_value(argv, "name", Some("n")).map(str::to_string),
        log_path,
        log_size_max: flag_value(argv, "log-size-max", None).and_then(|v| v.parse().ok()),
        podman: argv
            .iter()
            .skip(1)
            .any(|a| basename(a) == "podman" || a.contains("/podman")),
        bundle: flag_value(argv, "bundle", Some("b")).map(str::to_string),
    })
}

/// A Kubernetes container as its runtime names it: `k8s_<container>_<pod>_<namespace>_
/// <uid>_<attempt>` (CRI-O's conmon `-n`, dockershim's and cri-dockerd's Docker names).
/// Kubernetes names cannot contain `_`, so the split is unambiguous. The sandbox's
/// container is `POD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sRuntimeName {
    pub container: String,
    pub pod: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
}

impl K8sRuntimeName {
    pub fn is_sandbox(&self) -> bool {
        self.container == "POD"
    }
}

pub fn k8s_runtime_name(name: &str) -> Option<K8sRuntimeName> {
    let parts: Vec<&str> = name.trim_start_matches('/').split('_').collect();
    let ["k8s", container, pod, namespace, uid, attempt] = parts.as_slice() else {
        return None;
    };
    if [container, pod, namespace, uid]
        .iter()
        .any(|p| p.is_empty())
    {
        return None;
    }
    Some(K8sRuntimeName {
        container: container.to_string(),
        pod: pod.to_string(),
        namespace: namespace.to_string(),
        uid: uid.to_string(),
        attempt: attempt.parse().ok()?,
    })
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeletFlags {
    pub config: Option<String>,
    pub container_log_max_size: Option<String>,
    pub container_log_max_files: Option<String>,
}

pub fn kubelet(argv: &[String]) -> Option<KubeletFlags> {
    let exe = basename(argv.first()?);
    // k3s and rke2 run the kubelet inside their own binary (`k3s agent`, `k3s server`).
    if exe != "kubelet" {
        return None;
    }
    Some(KubeletFlags {
        config: flag_value(argv, "config", None).map(str::to_string),
        container_log_max_size: flag_value(argv, "container-log-max-size", None)
            .map(str::to_string),
        container_log_max_files: flag_value(argv, "container-log-max-files", None)
            .map(str::to_string),
    })
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerdFlags {
    pub config_file: Option<String>,
    pub log_driver: Option<String>,
    /// `--log-opt k=v`, in order.
    pub log_opts: Vec<(String, String)>,
}

pub fn dockerd(argv: &[String]) -> Option<DockerdFlags> {
    if basename(argv.first()?) != "dockerd" {
        return None;
    }
    Some(DockerdFlags {
        config_file: flag_value(argv, "config-file", None).map(str::to_string),
        log_driver: flag_value(argv, "log-driver", None).map(str::to_string),
        log_opts: flag_values(argv, "log-opt", None)
            .into_iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn shims() {
        // Captured on this VM (`ctr -n iowhy-exp run -d ... exp1`).
        let s = shim(&argv(
            "/usr/bin/containerd-shim-runc-v2 -namespace iowhy-exp -id exp1 -address /run/containerd/containerd.sock",
        ))
        .unwrap();
        assert_eq!(s.namespace.as_deref(), Some("iowhy-exp"));
        assert_eq!(s.id.as_deref(), Some("exp1"));
        // Docker 18.x and containerd 1.2's v1 shim name the task through its workdir.
        let s = shim(&argv(
            "containerd-shim -namespace moby -workdir /var/lib/containerd/io.containerd.runtime.v1.linux/moby/abc123 -address /run/containerd/containerd.sock -containerd-binary /usr/bin/containerd -runtime-root /var/run/docker/runtime-runc",
        ))
        .unwrap();
        assert_eq!(
            (s.namespace.as_deref(), s.id.as_deref()),
            (Some("moby"), Some("abc123"))
        );
        let s = shim(&argv("containerd-shim-runc-v2 --namespace=k8s.io --id=x1")).unwrap();
        assert_eq!(s.id.as_deref(), Some("x1"));
        assert!(shim(&argv("/usr/bin/containerd --config x")).is_none());
        assert!(shim(&[]).is_none());
        let s = shim(&argv("containerd-shim-runc-v2 -namespace")).unwrap();
        assert_eq!(s, ShimArgs::default());
    }

    #[test]
    fn conmons() {
        // CRI-O 1.2x's conmon command line (from `ps` on a CRI-O node).
        let c = conmon(&argv(
            "/usr/bin/conmon -b /run/containers/storage/overlay-containers/abc/userdata -c abc --exit-dir /var/run/crio/exits -l /var/log/pods/default_web_1234/nginx/0.log --log-level info -n k8s_nginx_web_default_1234_0 -P /run/containers/storage/overlay-containers/abc/userdata/conmon-pidfile -p /run/containers/storage/overlay-containers/abc/userdata/pidfile --persist-dir /var/lib/containers/storage/overlay-containers/abc/userdata -r /usr/bin/runc --runtime-arg --root=/run/runc --socket-dir-path /var/run/crio -u abc -s --log-size-max 52428800",
        ))
        .unwrap();
        assert_eq!(c.cid.as_deref(), Some("abc"));
        assert_eq!(
            c.log_path.as_deref(),
            Some("/var/log/pods/default_web_1234/nginx/0.log")
        );
        assert_eq!(c.log_size_max, Some(52428800));
        assert!(!c.podman);
        assert_eq!(
            c.bundle.as_deref(),
            Some("/run/containers/storage/overlay-containers/abc/userdata")
        );
        let n = k8s_runtime_name(c.name.as_deref().unwrap()).unwrap();
        assert_eq!(
            (n.container.as_str(), n.pod.as_str(), n.namespace.as_str()),
            ("nginx", "web", "default")
        );
        assert_eq!((n.uid.as_str(), n.attempt), ("1234", 0));
        assert!(!n.is_sandbox());
        // The sandbox, as CRI-O names it; Docker's names carry a leading slash.
        assert!(
            k8s_runtime_name("k8s_POD_web_default_1234_2")
                .unwrap()
                .is_sandbox()
        );
        assert!(k8s_runtime_name("/k8s_app_web_default_1234_0").is_some());
        for bad in [
            "web",
            "k8s_a_b_c_d",
            "k8s_a_b_c_d_x",
            "k8s__b_c_d_0",
            "k8s_a_b_c_d_0_e",
        ] {
            assert!(k8s_runtime_name(bad).is_none(), "{bad}");
        }
        // Podman 4's conmon.
        let c = conmon(&argv(
            "/usr/bin/conmon --api-version 1 -c def -u def -r /usr/bin/crun -b /var/lib/containers/storage/overlay-containers/def/userdata -p /run/containers/storage/overlay-containers/def/userdata/pidfile -n web --exit-dir /run/libpod/exits -l k8s-file:/var/lib/containers/storage/overlay-containers/def/userdata/ctr.log --log-level warning --exit-command /usr/bin/podman --exit-command-arg container",
        ))
        .unwrap();
        assert!(c.podman);
        assert_eq!(c.name.as_deref(), Some("web"));
        assert!(c.log_path.unwrap().ends_with("ctr.log"));
        let c = conmon(&argv("conmon -c x -l journald:")).unwrap();
        assert_eq!(c.log_path, None);
    }

    #[test]
    fn kubelet_and_dockerd() {
        let k = kubelet(&argv(
            "/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///run/containerd/containerd.sock --container-log-max-size 50Mi",
        ))
        .unwrap();
        assert_eq!(k.config.as_deref(), Some("/var/lib/kubelet/config.yaml"));
        assert_eq!(k.container_log_max_size.as_deref(), Some("50Mi"));
        assert_eq!(k.container_log_max_files, None);
        let d = dockerd(&argv(
            "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --log-opt max-size=10m --log-opt=max-file=3",
        ))
        .unwrap();
        assert_eq!(
            d.log_opts,
            vec![
                ("max-size".to_string(), "10m".to_string()),
                ("max-file".to_string(), "3".to_string())
            ]
        );
    }
}
