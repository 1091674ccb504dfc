//! Containers and pipes on fixture trees: two captured from this VM's own labs
//! (`container-log-flood`: a real containerd container started with `ctr`; `pipe-block`),
//! and `k8s-node`, hand-built by `tests/fixtures/make-k8s-node.py` for the runtime layouts
//! this machine cannot run (kubelet + containerd CRI, Docker, CRI-O, Podman, cgroupfs
//! kubepods). Each checks attribution, logs, rotation and the findings through the JSON
//! contract types.

mod common;

use common::{fixture, golden, ok};
use iowhy::wire::containers::{ContainerJson, ContainersReport};
use iowhy::wire::diagnose::{FindingJson, Report};

fn containers(name: &str) -> ContainersReport {
    let dir = fixture(name);
    let text = ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "containers",
        "--format",
        "json",
    ]);
    golden(&format!("{name}.containers.json"), &text);
    common::wire(&text)
}

fn diagnose(name: &str) -> Report {
    let dir = fixture(name);
    let text = ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "diagnose",
        "--format",
        "json",
    ]);
    common::wire(&text)
}

fn lab(name: &str) -> common::LabEvent {
    common::lab_event(name)
}

fn find<'a>(
    fs: &'a [FindingJson],
    kind: &str,
    pred: impl Fn(&FindingJson) -> bool,
) -> &'a FindingJson {
    fs.iter()
        .find(|f| f.kind == kind && pred(f))
        .unwrap_or_else(|| {
            panic!(
                "expected a {kind} finding; got {:#?}",
                fs.iter()
                    .map(|f| (&f.kind, &f.severity, &f.summary))
                    .collect::<Vec<_>>()
            )
        })
}

fn ctr<'a>(r: &'a ContainersReport, id: &str) -> &'a ContainerJson {
    r.containers
        .iter()
        .find(|c| c.container.id == id)
        .unwrap_or_else(|| {
            panic!(
                "no container {id} in {:#?}",
                r.containers
                    .iter()
                    .map(|c| &c.container.id)
                    .collect::<Vec<_>>()
            )
        })
}

#[test]
fn a_real_containerd_container_flooding_its_log_file() {
    let l = lab("container-log-flood");
    let id = l.container_id.as_deref().unwrap();
    let log = l.paths[0].as_str();
    let r = containers("container-log-flood");
    let c = ctr(&r, id);
    assert_eq!(c.container.runtime, "containerd");
    assert_eq!(c.container.runtime_namespace.as_deref(), Some("iowhy-lab"));
    assert_eq!(c.shim_pid, l.shim_pid);
    assert!(c.pids.contains(&l.pids[0]));
    assert!(c.container.sources.iter().any(|s| s == "cgroup"));
    let lg = &c.logs[0];
    assert_eq!(lg.path, log);
    assert_eq!(lg.kind, "shim-file");
    assert_eq!(lg.writer_pid, c.shim_pid);
    // The lab prints 4 MiB/s.
    let g = lg.growth_bytes_per_s.unwrap();
    assert!(g > 3.0e6 && g < 5.0e6, "growth {g}");
    assert!(lg.lines_per_s.unwrap() > 10_000.0);
    assert_eq!(lg.rotation.state, "missing");
    assert_eq!(lg.mountpoint, l.mountpoint);
    assert!(lg.time_to_full_s.is_some());
    // I/O by shim: the shim is the one writing to disk.
    let shim = r.shims.iter().find(|s| Some(s.pid) == c.shim_pid).unwrap();
    assert!(shim.write_bytes_per_s.unwrap() > 1e6);
    // Captured with kernel.task_delayacct=1 set before the lab started (capture.sh
    // records when): the shim's I/O wait is a measured number, zero included.
    let w = shim.io_wait_pct.expect("I/O wait by shim is a number");
    assert!((0.0..=100.0).contains(&w), "{w}");
    assert!(c.io_wait_pct.is_some() && c.shim_io_wait_pct == shim.io_wait_pct);
    let f = find(&r.findings, "container_log_flood", |f| {
        f.subject.container_id.as_deref() == Some(id)
    });
    assert_eq!(f.subject.path.as_deref(), Some(log));
    assert_eq!(f.evidence["runtime_namespace"], "iowhy-lab");
    assert!(f.evidence["log_bytes_per_s"].as_f64().unwrap() > 3e6);
    assert!(
        f.remediation
            .iter()
            .any(|s| s.contains("/etc/logrotate.d/"))
    );
    assert!(!f.remediation.iter().any(|s| s.starts_with("rm ")));
    find(&r.findings, "log_rotation_missing", |f| {
        f.subject.path.as_deref() == Some(log)
    });
    // Diagnose: the container's process and its shim carry their container object, and
    // runaway_log does not repeat the flood without the container.
    let d = diagnose("container-log-flood");
    let p = d.processes.iter().find(|p| p.pid == l.pids[0]);
    if let Some(p) = p {
        let cj = p.container.as_ref().expect("container object");
        assert_eq!(cj.container.id, id);
        assert_eq!(cj.role, "container");
    }
    let s = d
        .processes
        .iter()
        .find(|p| Some(p.pid) == l.shim_pid)
        .expect("shim listed");
    assert_eq!(s.container.as_ref().unwrap().role, "shim");
    assert!(
        !d.findings
            .iter()
            .any(|f| f.kind == "runaway_log" && f.subject.path.as_deref() == Some(log))
    );
    assert!(d.containers.iter().any(|c| c.container.id == id));
    assert!(
        d.shims
            .iter()
            .any(|s| Some(s.pid) == c.shim_pid && s.io_wait_pct.is_some())
    );
}

#[test]
fn a_writer_blocked_on_a_stopped_reader() {
    let l = lab("pipe-block");
    let (writer, reader) = (u64::from(l.pids[0]), u64::from(l.pids[1]));
    let d = diagnose("pipe-block");
    let f = find(&d.findings, "pipe_blocked", |f| {
        f.subject.pid.map(u64::from) == Some(writer)
    });
    assert_eq!(f.severity, "critical", "{}", f.summary);
    assert_eq!(f.subject.path.as_deref(), Some(l.paths[0].as_str()));
    assert_eq!(f.evidence["reader_pid"].as_u64(), Some(reader));
    assert_eq!(f.evidence["reader_state"], "stopped");
    assert_eq!(f.evidence["wchan"], "anon_pipe_write");
    assert!(f.evidence["fill_pct"].as_f64().unwrap() > 90.0);
    assert_eq!(f.evidence["blocked_whole_window"], 1);
    assert!(f.remediation[0].starts_with(&format!("kill -CONT {reader}")));
    // Nobody else on that machine was blocked on a pipe.
    assert_eq!(
        d.findings
            .iter()
            .filter(|f| f.kind == "pipe_blocked")
            .count(),
        1
    );
    let _ = containers("pipe-block");
}

const CID_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const CID_D: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
const CID_C: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
const CID_P: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";
const CID_F: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
const SB_A: &str = "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b";
const CID_G1: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
const CID_G2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const SB_G: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

#[test]
fn crio_cgroupfs_pod_of_two_containers_without_links() {
    let r = containers("k8s-node");
    // crio-<id> under a cgroupfs kubepods pod: CRI-O, its conmon, its pod.
    for (id, name, pid, conmon) in [
        (CID_G1, "parser", 40611, 40610),
        (CID_G2, "shipper", 40621, 40620),
    ] {
        let c = ctr(&r, id);
        assert_eq!(c.container.runtime, "cri-o", "{id}");
        assert_eq!(c.container.name.as_deref(), Some(name));
        assert_eq!(c.container.pod.as_deref(), Some("ingest-6f7b"));
        assert_eq!(c.container.namespace.as_deref(), Some("data"));
        assert_eq!(
            c.container.pod_uid.as_deref(),
            Some("6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f")
        );
        assert!(c.container.sources.iter().any(|s| s == "cgroup"));
        assert_eq!(c.pids, vec![pid]);
        assert_eq!(c.shim_pid, Some(conmon));
        assert_eq!(c.logs[0].kind, "cri");
        assert_eq!(c.logs[0].writer_pid, Some(conmon));
        assert!(c.logs[0].path.ends_with(&format!("/{name}/0.log")));
    }
    // The parser's names come (also) from CRI-O's config.json; the shipper has none,
    // only conmon's `-n k8s_shipper_ingest-6f7b_data_<uid>_0`.
    assert!(
        ctr(&r, CID_G1)
            .container
            .sources
            .iter()
            .any(|s| s == "bundle")
    );
    assert!(
        !ctr(&r, CID_G2)
            .container
            .sources
            .iter()
            .any(|s| s == "bundle")
    );
    // conmon's `k8s_POD_...` marks the sandbox.
    let sb = ctr(&r, SB_G);
    assert!(sb.container.sandbox);
    assert_eq!(sb.container.pod.as_deref(), Some("ingest-6f7b"));
    // Podman's config.json in its graph root is read too.
    let p = ctr(&r, CID_P);
    assert!(
        p.container.sources.iter().any(|s| s == "bundle"),
        "{:?}",
        p.container.sources
    );
    assert_eq!(p.container.runtime, "podman");
}

#[test]
fn a_ctr_log_on_tmpfs_rotated_by_an_included_logrotate_stanza() {
    let r = containers("k8s-node");
    let c = r
        .containers
        .iter()
        .find(|c| c.container.id == "web")
        .expect("ctr container default/web");
    assert_eq!(c.container.runtime_namespace.as_deref(), Some("default"));
    // A --log-uri file under /run is kept: tmpfs fills memory.
    let l = c
        .logs
        .iter()
        .find(|l| l.path == "/run/app/web.log")
        .unwrap_or_else(|| panic!("no /run/app/web.log in {:#?}", c.logs));
    assert_eq!((l.kind.as_str(), l.writer_pid), ("shim-file", Some(40700)));
    assert_eq!(l.size_bytes, Some(5 << 20));
    // /etc/logrotate.conf: weekly, rotate 4, include /etc/logrotate.d, rotate 9. The
    // stanza in /etc/logrotate.d/app gets the globals before the include only.
    assert_eq!(l.rotation.by, "logrotate");
    assert_eq!(l.rotation.max_size_bytes, Some(50 << 20));
    assert_eq!(l.rotation.max_files, Some(4), "{:?}", l.rotation);
    assert!(
        l.rotation.detail.contains("/etc/logrotate.d/app"),
        "{}",
        l.rotation.detail
    );
    assert!(
        l.rotation.detail.contains("weekly"),
        "{}",
        l.rotation.detail
    );
    assert_eq!(l.rotation.state, "ok");
}

const CID_J: &str = "a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7";
const CID_L: &str = "a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8";
const CID_K: &str = "a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9";

#[test]
fn docker_cgroupfs_daemon_json_local_driver_and_kubelet_flags() {
    let r = containers("cgroupfs-node");
    // /docker/<id> with no hostconfig.json: daemon.json's max-size/max-file apply.
    let j = ctr(&r, CID_J);
    assert_eq!(
        (j.container.runtime.as_str(), j.container.name.as_deref()),
        ("docker", Some("web"))
    );
    assert_eq!(j.pids, vec![41011]);
    assert!(j.container.sources.iter().any(|s| s == "cgroup"));
    let l = &j.logs[0];
    assert_eq!(l.kind, "docker-json");
    assert_eq!(l.writer_pid, Some(41000));
    assert_eq!(l.rotation.by, "docker");
    assert_eq!(l.rotation.max_size_bytes, Some(20 << 20));
    assert_eq!(l.rotation.max_files, Some(4));
    assert!(
        l.rotation.detail.contains("/etc/docker/daemon.json"),
        "{}",
        l.rotation.detail
    );
    // 30 MiB is not twice 20 MiB: rotation is keeping up.
    assert_eq!(l.rotation.state, "ok");
    // The local driver writes local-logs/container.log, in protobuf: no line statistics.
    let lo = ctr(&r, CID_L);
    let l = &lo.logs[0];
    assert_eq!(
        l.path,
        format!("/var/lib/docker/containers/{CID_L}/local-logs/container.log")
    );
    assert_eq!(l.writer_pid, Some(41000));
    assert_eq!(l.size_bytes, Some(8 << 20));
    assert_eq!((l.lines_per_s, l.avg_line_bytes), (None, None));
    assert_eq!(l.rotation.by, "docker");
    assert_eq!(
        (l.rotation.max_size_bytes, l.rotation.max_files),
        (Some(20 << 20), Some(5))
    );
    // The kubelet's flags set the CRI log's limits (defaults would say 10 MiB, and a
    // 30 MiB log would not be keeping up).
    let k = ctr(&r, CID_K);
    assert_eq!(k.container.pod.as_deref(), Some("api-7c"));
    assert_eq!(k.container.name.as_deref(), Some("api"));
    let l = &k.logs[0];
    assert_eq!((l.kind.as_str(), l.writer_pid), ("cri", Some(41001)));
    assert_eq!(l.rotation.max_size_bytes, Some(50 << 20));
    assert_eq!(l.rotation.max_files, Some(3));
    assert!(
        l.rotation.detail.contains("--container-log-max-size"),
        "{}",
        l.rotation.detail
    );
    assert_eq!(l.rotation.state, "ok");
    assert!(
        !r.findings.iter().any(|f| f.kind == "log_rotation_missing"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn every_runtime_layout_is_attributed() {
    let r = containers("k8s-node");
    let a = ctr(&r, CID_A);
    assert_eq!(
        (
            a.container.runtime.as_str(),
            a.container.runtime_namespace.as_deref()
        ),
        ("containerd", Some("k8s.io"))
    );
    assert_eq!(a.container.pod.as_deref(), Some("flood-7d9"));
    assert_eq!(a.container.namespace.as_deref(), Some("prod"));
    assert_eq!(a.container.name.as_deref(), Some("logger"));
    assert_eq!(a.shim_pid, Some(40100));
    let d = ctr(&r, CID_D);
    assert_eq!(
        (d.container.runtime.as_str(), d.container.name.as_deref()),
        ("docker", Some("api"))
    );
    assert_eq!(d.logs[0].kind, "docker-json");
    assert_eq!(d.logs[0].writer_pid, Some(40190));
    let c = ctr(&r, CID_C);
    assert_eq!(c.container.runtime, "cri-o");
    assert_eq!(
        (c.container.pod.as_deref(), c.container.name.as_deref()),
        (Some("web-0"), Some("web"))
    );
    assert_eq!(c.shim_pid, Some(40300));
    let p = ctr(&r, CID_P);
    assert_eq!(
        (p.container.runtime.as_str(), p.container.name.as_deref()),
        ("podman", Some("cache"))
    );
    assert_eq!(p.logs[0].rotation.by, "conmon");
    // cgroupfs kubepods with nothing but /var/log/pods to go on.
    let f = ctr(&r, CID_F);
    assert_eq!(f.container.runtime, "unknown");
    assert_eq!(f.container.pod.as_deref(), Some("coredns-5d78c9869d-8xk2p"));
    assert_eq!(f.container.name.as_deref(), Some("coredns"));
    // The pod sandbox is known as such.
    assert!(
        r.containers
            .iter()
            .any(|c| c.container.sandbox && c.container.pod.as_deref() == Some("flood-7d9"))
    );
}

#[test]
fn pod_logs_rotation_and_the_stuck_shim() {
    let r = containers("k8s-node");
    let a = ctr(&r, CID_A);
    let lg = &a.logs[0];
    assert_eq!(lg.kind, "cri");
    assert_eq!(lg.writer_pid, Some(40000), "containerd writes CRI logs");
    assert_eq!(lg.rotation.by, "kubelet");
    // The kubelet's --config file says `containerLogMaxSize: 20971520`: bytes.
    assert_eq!(lg.rotation.max_size_bytes, Some(20 << 20));
    assert_eq!(lg.rotation.state, "not_keeping_up");
    // Lines per second agree with the growth over the window (6 MiB/s), whatever the
    // timestamps of the tail's last burst say (0.2 ms apart: 5000/s).
    let (lps, avg, g) = (
        lg.lines_per_s.unwrap(),
        lg.avg_line_bytes.unwrap(),
        lg.growth_bytes_per_s.unwrap(),
    );
    // 12 MiB over the captured window of about 2 s.
    assert!((g / (6.0 * 1048576.0) - 1.0).abs() < 0.05, "{g}");
    assert!(
        (lps * avg - g).abs() / g < 0.01,
        "{lps} lines/s x {avg} B != {g} B/s"
    );
    assert!(lps > 50_000.0, "{lps}");
    // A tenth on stderr.
    assert!(
        (lg.stderr_pct.unwrap() - 10.0).abs() < 2.0,
        "{:?}",
        lg.stderr_pct
    );
    // Log size by pod includes the rotated files.
    let pod = r.pods.iter().find(|p| p.pod == "flood-7d9").unwrap();
    assert!(pod.log_bytes > lg.size_bytes.unwrap() + (10 << 20));
    assert_eq!(pod.namespace, "prod");
    let flood = find(&r.findings, "container_log_flood", |f| {
        f.subject.container_id.as_deref() == Some(CID_A)
    });
    assert_eq!(flood.subject.pod.as_deref(), Some("flood-7d9"));
    assert_eq!(flood.subject.namespace.as_deref(), Some("prod"));
    assert!(flood.remediation[0].starts_with("kubectl -n prod logs flood-7d9 -c logger"));
    // The remediation names the file the kubelet reads, not kubeadm's default.
    assert!(
        flood
            .remediation
            .iter()
            .any(|s| s.starts_with("# /etc/kubernetes/kubelet-config.yaml: containerLogMaxSize")),
        "{:#?}",
        flood.remediation
    );
    assert!(
        !flood
            .remediation
            .iter()
            .any(|s| s.contains("/var/lib/kubelet/config.yaml"))
    );
    assert!(
        flood.explanation.contains("cannot keep up"),
        "{}",
        flood.explanation
    );
    let rot = find(&r.findings, "log_rotation_missing", |f| {
        f.subject.container_id.as_deref() == Some(CID_A)
    });
    assert_eq!(rot.evidence["rotation_state"], "not_keeping_up");
    // Docker's json-file without max-size: nothing rotates a 600 MiB growing log.
    let rot = find(&r.findings, "log_rotation_missing", |f| {
        f.subject.container_id.as_deref() == Some(CID_D)
    });
    assert_eq!(rot.evidence["rotated_by"], "none");
    // The app's stdout pipe is full and the shim holding its read end is not draining it.
    let p = find(&r.findings, "pipe_blocked", |f| {
        f.subject.pid == Some(40102)
    });
    assert_eq!(p.severity, "critical");
    assert_eq!(p.subject.container_id.as_deref(), Some(CID_A));
    assert_eq!(p.evidence["reader_pid"], 40100);
    assert_eq!(p.evidence["reader_state"], "not_reading");
    // The shim serves the whole pod under the sandbox's id: the finding names the
    // blocked writer's own container and pod, and its containerd task.
    assert!(
        p.explanation
            .contains("it is the shim of container logger (pod prod/flood-7d9)"),
        "{}",
        p.explanation
    );
    assert!(
        p.remediation.iter().any(|s| s.starts_with(&format!(
            "ctr -n k8s.io task ls; ctr -n k8s.io task metrics {CID_A} "
        ))),
        "{:#?}",
        p.remediation
    );
    assert!(!p.remediation.iter().any(|s| s.contains(SB_A)));
    assert_eq!(a.blocked_pipes, 1);
    // Quiet containers get no finding.
    assert!(
        !r.findings
            .iter()
            .any(|f| [CID_C, CID_P, CID_F]
                .contains(&f.subject.container_id.as_deref().unwrap_or("")))
    );
}

#[test]
fn diagnose_json_carries_containers_by_process() {
    let d = diagnose("k8s-node");
    let p = d
        .processes
        .iter()
        .find(|p| p.pid == 40102)
        .expect("the blocked app is listed");
    let c = p.container.as_ref().unwrap();
    assert_eq!(c.container.pod.as_deref(), Some("flood-7d9"));
    assert_eq!(c.role, "container");
    assert_eq!(c.shim_pid, Some(40100));
    // I/O wait by shim and log size by pod are numbers (null wait: no delay accounting).
    assert!(d.shims.iter().any(|s| s.pid == 40100 && s.role == "shim"));
    assert!(d.pods.iter().all(|p| p.log_bytes > 0));
    // Host processes stay unattributed.
    assert!(
        d.processes
            .iter()
            .filter(|p| p.pid < 40000)
            .all(|p| p.container.is_none())
    );
}

#[test]
fn containers_text_is_a_table() {
    let dir = fixture("k8s-node");
    let t = ok(&["--fixture", dir.to_str().unwrap(), "containers"]);
    for col in [
        "CONTAINER",
        "RUNTIME",
        "POD",
        "WRITE/s",
        "IO-WAIT%",
        "LOG/s",
        "LOG SIZE",
        "ROTATION",
        "PIPES",
    ] {
        assert!(t.contains(col), "no {col} column:\n{t}");
    }
    assert!(t.contains("prod/flood-7d9"));
    assert!(t.contains("Shims (I/O by shim)"));
    assert!(t.contains("Log size by pod"));
    let q = ok(&[
        "--fixture",
        fixture("quiet").to_str().unwrap(),
        "containers",
    ]);
    assert!(q.contains("No containers found"), "{q}");
}
