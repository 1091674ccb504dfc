//! Kubernetes names (container, pod, namespace, pod uid) from a runtime's `k8s_...`
//! container name and from annotations or labels.

use super::ContainerInfo;
use crate::parse::container::{cmdline, oci};

/// Names from a runtime's `k8s_...` container name: weaker than annotations (which
/// overwrite them later), so only filled in where unknown.
pub(super) fn apply_runtime_name(c: &mut ContainerInfo, k: &cmdline::K8sRuntimeName) {
    if k.is_sandbox() {
        c.r.sandbox = true;
    } else {
        c.r.name.get_or_insert_with(|| k.container.clone());
    }
    c.r.pod.get_or_insert_with(|| k.pod.clone());
    c.r.namespace.get_or_insert_with(|| k.namespace.clone());
    c.r.pod_uid.get_or_insert_with(|| k.uid.clone());
}

pub(super) fn apply_names(c: &mut ContainerInfo, n: &oci::K8sNames) {
    if n.pod.is_some() {
        c.r.pod = n.pod.clone();
    }
    if n.namespace.is_some() {
        c.r.namespace = n.namespace.clone();
    }
    if n.pod_uid.is_some() {
        c.r.pod_uid = n.pod_uid.clone();
    }
    if n.container.is_some() {
        c.r.name = n.container.clone();
    }
    c.r.sandbox |= n.sandbox;
}
