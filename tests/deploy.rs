//! The fleet artifacts in deploy/: the alerting rules pass promtool (lint and their unit
//! tests), the generated Kubernetes objects are current, the manifests validate against
//! the Kubernetes schemas, the systemd unit verifies, and every dashboard query runs and
//! returns data on a throw-away Prometheus scraping a stand-in of `iowhy serve`.
//!
//! promtool, prometheus, kubernetes-validate and systemd-analyze are skipped with
//! `SKIPPED:` when missing (a failure under IOWHY_REQUIRE_LIVE=1); root is not needed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::prom::{Prometheus, Scrape, TextTarget, grow_counters};
use yaml_rust2::{Yaml, YamlLoader};

/// The metric names issue 11 fixes; the rules, the dashboard and the stand-in exposition
/// may use these and no other `iowhy_` name.
const IOWHY_METRICS: &[&str] = &[
    "iowhy_process_read_bytes_total",
    "iowhy_process_write_bytes_total",
    "iowhy_process_cancelled_write_bytes_total",
    "iowhy_process_io_wait_seconds_total",
    "iowhy_process_fsync_calls_total",
    "iowhy_process_fsync_seconds_total",
    "iowhy_process_blocked_tasks",
    "iowhy_file_write_bytes_total",
    "iowhy_deleted_open_bytes",
    "iowhy_container_log_bytes",
    "iowhy_container_log_rotate_limit_bytes",
    "iowhy_container_log_appended_bytes_total",
    "iowhy_fsync_duration_seconds",
    "iowhy_disk_queue_capacity",
    "iowhy_findings",
    "iowhy_source_available",
    "iowhy_build_info",
    "iowhy_scrape_collector_success",
    "iowhy_scrape_collector_duration_seconds",
    "iowhy_last_sample_timestamp_seconds",
    "iowhy_incidents_total",
];
/// Histograms: their series are NAME_bucket, NAME_sum and NAME_count.
const IOWHY_HISTOGRAMS: &[&str] = &["iowhy_fsync_duration_seconds"];

/// node_exporter's series that the rules and the dashboard join with (node_exporter 1.x
/// names: diskstats, filesystem and pressure collectors).
const NODE_METRICS: &[&str] = &[
    "node_disk_io_time_seconds_total",
    "node_disk_io_time_weighted_seconds_total",
    "node_disk_read_time_seconds_total",
    "node_disk_write_time_seconds_total",
    "node_disk_reads_completed_total",
    "node_disk_writes_completed_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_filesystem_size_bytes",
    "node_pressure_io_waiting_seconds_total",
    "node_pressure_io_stalled_seconds_total",
];

fn deploy(rel: &str) -> PathBuf {
    common::root_dir().join("deploy").join(rel)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml_docs(p: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml(p: &Path) -> Yaml {
    yaml_docs(p).remove(0)
}

fn s(y: &Yaml) -> &str {
    y.as_str().unwrap_or("")
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(|v| v.as_slice()).unwrap_or_default()
}

/// Run a tool; panic with its output unless it exits 0. Returns (stdout, stderr).
fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{cmd:?} exited {}:\nstdout:\n{o}\nstderr:\n{e}",
        out.status
    );
    (o, e)
}

/// Every alerting rule: (name, expr, rule).
fn alerts() -> Vec<(String, String, Yaml)> {
    let rules = yaml(&deploy("prometheus/iowhy.rules.yml"));
    let mut out = Vec::new();
    for g in list(&rules["groups"]) {
        for r in list(&g["rules"]) {
            if let Some(a) = r["alert"].as_str() {
                out.push((a.to_string(), s(&r["expr"]).to_string(), r.clone()));
            }
        }
    }
    out
}

#[test]
fn rules_pass_promtool_check() {
    let Some(promtool) = common::need_tool("promtool") else {
        return;
    };
    let (out, _) = run_ok(
        Command::new(promtool)
            .args(["check", "rules"])
            .arg(deploy("prometheus/iowhy.rules.yml")),
    );
    let n = alerts().len();
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "promtool saw other rules than the {n} alerts: {out}"
    );
}

#[test]
fn rules_unit_tests_pass() {
    let Some(promtool) = common::need_tool("promtool") else {
        return;
    };
    let (out, err) = run_ok(
        Command::new(promtool)
            .args(["test", "rules", "iowhy.rules.test.yml"])
            .current_dir(deploy("prometheus")),
    );
    assert!(
        format!("{out}{err}").contains("SUCCESS"),
        "promtool test rules: {out}{err}"
    );
}

/// The rules' shape, without tools: each alert has a severity and says what to do, and
/// its unit tests show it firing and, at another time or for other series, not firing.
#[test]
fn every_alert_is_actionable_and_tested_both_ways() {
    let tests = yaml(&deploy("prometheus/iowhy.rules.test.yml"));
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for t in list(&tests["tests"]) {
        for a in list(&t["alert_rule_test"]) {
            let name = s(&a["alertname"]).to_string();
            if list(&a["exp_alerts"]).is_empty() {
                silent.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    let all = alerts();
    let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
    for want in [
        "IowhyDown",
        "IowhyCollectorFailing",
        "IowhyFsyncStorm",
        "IowhyProcessIOWaitHigh",
        "IowhyContainerLogOverLimit",
        "IowhyDeletedOpenBytesHigh",
        "IowhyPipeBlocked",
        "IowhyFindingCritical",
    ] {
        assert!(names.contains(&want), "no alert {want} in {names:?}");
    }
    for (name, _, rule) in &all {
        let sev = s(&rule["labels"]["severity"]);
        assert!(
            ["critical", "warning", "info"].contains(&sev),
            "{name}: severity {sev:?}"
        );
        let desc = s(&rule["annotations"]["description"]);
        assert!(
            !s(&rule["annotations"]["summary"]).is_empty() && desc.contains("iowhy"),
            "{name}: a summary, and a description that says what to run"
        );
        assert!(fires.contains(name), "{name}: no unit test where it fires");
        assert!(
            silent.contains(name),
            "{name}: no unit test where it does not fire"
        );
    }
}

/// `iowhy_...` and `node_...` metric names in a PromQL expression.
fn metric_names(expr: &str, prefix: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = expr[i..].find(prefix) {
        let at = i + off;
        let mut end = at;
        while end < b.len() && word(b[end]) {
            end += 1;
        }
        if at == 0 || !word(b[at - 1]) {
            out.push(expr[at..end].to_string());
        }
        i = end.max(at + 1);
    }
    out
}

fn known_iowhy(name: &str) -> bool {
    IOWHY_METRICS.contains(&name)
        || IOWHY_HISTOGRAMS.iter().any(|h| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suf| name == format!("{h}{suf}"))
        })
}

/// The dashboard: its JSON, every panel query, and the variables' `label_values(...)`.
struct Dashboard {
    json: serde_json::Value,
    exprs: Vec<(String, String)>,
    variables: Vec<(String, String)>,
}

fn dashboard() -> Dashboard {
    let json: serde_json::Value =
        serde_json::from_str(&read(&deploy("grafana/iowhy.json"))).expect("iowhy.json parses");
    fn walk(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
        let title = v["title"].as_str().unwrap_or(title);
        for t in v["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((
                    format!("{title} ({})", t["refId"].as_str().unwrap_or("?")),
                    e.into(),
                ));
            }
        }
        for p in v["panels"].as_array().into_iter().flatten() {
            walk(p, title, out);
        }
    }
    let mut exprs = Vec::new();
    walk(&json, "", &mut exprs);
    let variables = json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or("");
            (v["name"].as_str().unwrap_or("?").to_string(), q.to_string())
        })
        .collect();
    Dashboard {
        json,
        exprs,
        variables,
    }
}

/// Grafana's variables as the test Prometheus can take them: every node and namespace.
fn substitute(expr: &str) -> String {
    let e = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
        .replace("$node", ".*")
        .replace("$namespace", ".*");
    assert!(!e.contains('$'), "an unknown Grafana variable in {expr}");
    e
}

/// `label_values(SELECTOR, LABEL)` -> (SELECTOR, LABEL).
fn label_values(q: &str) -> (String, String) {
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(...): {q}"));
    let (sel, label) = inner
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    (sel.trim().to_string(), label.trim().to_string())
}

/// The metric families of a text exposition (from its TYPE lines).
fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

fn fixture(name: &str) -> String {
    read(&common::fixture("serve").join(name))
}

#[test]
fn rules_and_dashboard_use_only_issue_11s_metric_names() {
    let d = dashboard();
    let mut exprs: Vec<(String, String)> = alerts().into_iter().map(|(n, e, _)| (n, e)).collect();
    exprs.extend(d.exprs.iter().cloned());
    exprs.extend(d.variables.iter().cloned());
    assert!(
        d.exprs.len() >= 20,
        "only {} dashboard queries",
        d.exprs.len()
    );
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (who, e) in &exprs {
        for m in metric_names(e, "iowhy_") {
            if !known_iowhy(&m) {
                unknown.push(format!("{who}: {m}"));
            }
            used.insert(m);
        }
        for m in metric_names(e, "node_") {
            if !NODE_METRICS.contains(&m.as_str()) {
                unknown.push(format!("{who}: {m}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metric names issue 11 does not define: {unknown:#?}"
    );
    // The stand-in exposition has exactly issue 11's families, so that a dashboard query
    // that returns data there names real series.
    let want: BTreeSet<String> = IOWHY_METRICS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        families(&fixture("iowhy.prom")),
        want,
        "tests/fixtures/serve/iowhy.prom"
    );
    let node: BTreeSet<String> = NODE_METRICS.iter().map(|s| s.to_string()).collect();
    assert_eq!(families(&fixture("node_exporter.prom")), node);
    // And a panel shows every family: nothing iowhy exports is left off the dashboard.
    let shown: BTreeSet<String> = d
        .exprs
        .iter()
        .flat_map(|(_, e)| metric_names(e, "iowhy_"))
        .map(|m| {
            IOWHY_HISTOGRAMS
                .iter()
                .find(|h| m.starts_with(*h))
                .map(|h| h.to_string())
                .unwrap_or(m)
        })
        .collect();
    let missing: Vec<&&str> = IOWHY_METRICS
        .iter()
        .filter(|m| !shown.contains(**m))
        .collect();
    assert!(missing.is_empty(), "no dashboard panel shows {missing:?}");
    assert_eq!(d.json["uid"], "iowhy-fleet");
}

#[test]
fn fixture_expositions_pass_promtool_check_metrics() {
    let Some(promtool) = common::need_tool("promtool") else {
        return;
    };
    for name in ["iowhy.prom", "node_exporter.prom"] {
        let out = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(common::fixture("serve").join(name)).unwrap())
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool check metrics < {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn generated_kubernetes_objects_are_current() {
    let dir = tempfile::tempdir().expect("temp dir");
    run_ok(Command::new("sh").arg(deploy("generate")).arg(dir.path()));
    for name in ["prometheusrule.yaml", "grafana-dashboard.yaml"] {
        let got = read(&dir.path().join(name));
        let want = read(&deploy(&format!("kubernetes/{name}")));
        assert!(
            got == want,
            "deploy/kubernetes/{name} is not what deploy/generate writes from its source: run deploy/generate"
        );
    }
    // What they wrap is the source, unchanged.
    let rule = yaml(&deploy("kubernetes/prometheusrule.yaml"));
    assert_eq!(rule["kind"].as_str(), Some("PrometheusRule"));
    let src = yaml(&deploy("prometheus/iowhy.rules.yml"));
    assert_eq!(
        rule["spec"], src,
        "the PrometheusRule's spec is the rule file"
    );
    let cm = yaml(&deploy("kubernetes/grafana-dashboard.yaml"));
    assert_eq!(s(&cm["metadata"]["labels"]["grafana_dashboard"]), "1");
    let wrapped: serde_json::Value =
        serde_json::from_str(s(&cm["data"]["iowhy.json"])).expect("the ConfigMap's JSON");
    assert_eq!(wrapped, dashboard().json);
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// The built-in kinds against the Kubernetes schemas (strict: an unknown or misspelt field
/// fails), for the oldest and the newest version the validator knows. It has no schema
/// for prometheus-operator's PodMonitor and PrometheusRule and says so; those are checked
/// by `crds_agree_with_the_daemonset_and_the_sources` instead.
#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let Some(kv) = common::need_tool("kubernetes-validate") else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 6, "{files:?}");
    for version in ["1.25.0", "1.37.0"] {
        let (out, err) = run_ok(
            Command::new(&kv)
                .args(["--strict", "-k", version])
                .args(&files),
        );
        let all = format!("{out}{err}");
        let mut passed = BTreeSet::new();
        for line in all.lines() {
            if line.starts_with("INFO") && line.contains(" passed for resource ") {
                passed.insert(
                    line.split(" passed for resource ")
                        .nth(1)
                        .unwrap_or("")
                        .to_string(),
                );
            } else if line.starts_with("WARN") {
                assert!(
                    line.contains("Couldn't find schema for kind PodMonitor")
                        || line.contains("Couldn't find schema for kind PrometheusRule"),
                    "kubernetes-validate {version}: {line}"
                );
            } else if !line.trim().is_empty() {
                panic!("kubernetes-validate {version}: {line}");
            }
        }
        let passed: Vec<String> = passed.into_iter().collect();
        for kind in [
            "daemonset/iowhy",
            "namespace/iowhy",
            "serviceaccount/iowhy",
            "configmap/iowhy-dashboard",
        ] {
            assert!(
                passed.iter().any(|p| p.starts_with(kind)),
                "{kind} did not pass against {version}: {passed:?}\n{all}"
            );
        }
    }
}

fn find_kind(kind: &str) -> Yaml {
    for p in manifests() {
        for d in yaml_docs(&p) {
            if s(&d["kind"]) == kind {
                return d;
            }
        }
    }
    panic!("no {kind} in deploy/kubernetes");
}

/// What no schema checks: the objects agree with each other and with the brief's
/// security posture.
#[test]
fn crds_agree_with_the_daemonset_and_the_sources() {
    let ds = find_kind("DaemonSet");
    let pm = find_kind("PodMonitor");
    let ns = find_kind("Namespace");
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(s(&ds["metadata"]["namespace"]), s(&ns["metadata"]["name"]));
    assert_eq!(s(&pm["metadata"]["namespace"]), s(&ns["metadata"]["name"]));
    assert_eq!(
        s(&ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]),
        "privileged",
        "hostPID and hostPath need the privileged Pod Security level"
    );

    // The PodMonitor selects the DaemonSet's pods and scrapes its named port.
    let pod_labels = ds["spec"]["template"]["metadata"]["labels"]
        .as_hash()
        .expect("pod labels");
    for (k, v) in pm["spec"]["selector"]["matchLabels"]
        .as_hash()
        .expect("matchLabels")
    {
        assert_eq!(pod_labels.get(k), Some(v), "PodMonitor selects {k:?}={v:?}");
    }
    let ep = &pm["spec"]["podMetricsEndpoints"][0];
    let port = list(&c["ports"])
        .iter()
        .find(|p| p["name"] == ep["port"])
        .unwrap_or_else(|| panic!("no container port named {:?}", ep["port"]));
    assert_eq!(port["containerPort"].as_i64(), Some(10070));
    assert!(
        list(&c["args"])
            .iter()
            .any(|a| s(a) == "--web.listen-address=0.0.0.0:10070")
    );
    assert_eq!(ep["honorLabels"].as_bool(), Some(true));
    assert_eq!(pm["spec"]["sampleLimit"].as_i64(), Some(5000));
    let relabels = list(&ep["relabelings"]);
    assert!(relabels.iter().any(|r| {
        s(&r["targetLabel"]) == "instance"
            && list(&r["sourceLabels"])
                .iter()
                .any(|l| s(l) == "__meta_kubernetes_pod_node_name")
    }));
    assert!(
        relabels
            .iter()
            .any(|r| s(&r["targetLabel"]) == "job" && s(&r["replacement"]) == "iowhy"),
        "the rules select job=\"iowhy\""
    );

    // The pod: host PIDs, not the host network; root with exactly the capabilities.
    assert_eq!(pod["hostPID"].as_bool(), Some(true));
    assert_ne!(pod["hostNetwork"].as_bool(), Some(true));
    assert_eq!(s(&pod["priorityClassName"]), "system-node-critical");
    assert!(
        list(&pod["tolerations"])
            .iter()
            .any(|t| s(&t["operator"]) == "Exists" && t["key"].is_badvalue())
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"].as_i64(), Some(0));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_ne!(sc["privileged"].as_bool(), Some(true));
    let caps = |k: &str| -> Vec<&str> { list(&sc["capabilities"][k]).iter().map(s).collect() };
    assert_eq!(caps("drop"), ["ALL"]);
    assert_eq!(
        caps("add"),
        ["SYS_PTRACE", "DAC_READ_SEARCH", "PERFMON", "BPF"]
    );
    assert_eq!(s(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
    assert!(s(&c["image"]).starts_with("ghcr.io/iowhy/iowhy:"));
    // The host's / and /sys, read-only, seeing later host mounts.
    let mounts = list(&c["volumeMounts"]);
    for (path, host) in [("/host/root", "/"), ("/host/sys", "/sys")] {
        let m = mounts
            .iter()
            .find(|m| s(&m["mountPath"]) == path)
            .unwrap_or_else(|| panic!("no mount at {path}"));
        assert_eq!(m["readOnly"].as_bool(), Some(true), "{path}");
        assert_eq!(s(&m["mountPropagation"]), "HostToContainer", "{path}");
        let vol = list(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == m["name"])
            .expect("its volume");
        assert_eq!(s(&vol["hostPath"]["path"]), host);
    }
    for flag in [
        "--path.procfs=/host/root/proc",
        "--path.sysfs=/host/sys",
        "--path.rootfs=/host/root",
    ] {
        assert!(list(&c["args"]).iter().any(|a| s(a) == flag), "no {flag}");
    }
}

/// The unit as installed verifies, with ExecStart pointed at the built binary (verify
/// requires it to exist), and its sandbox scores as systemd rates it (exposure <= 4.0).
#[test]
fn systemd_unit_verifies() {
    let Some(sa) = common::need_tool("systemd-analyze") else {
        return;
    };
    let unit = read(&deploy("systemd/iowhy-serve.service"));
    let installed = "ExecStart=/usr/bin/iowhy serve ";
    assert!(unit.contains(installed), "the unit runs {installed}...");
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("iowhy-serve.service");
    std::fs::write(
        &copy,
        unit.replace(installed, &format!("ExecStart={} serve ", common::bin())),
    )
    .unwrap();
    let (_, err) = run_ok(Command::new(&sa).arg("verify").arg(&copy));
    assert!(
        err.trim().is_empty(),
        "systemd-analyze verify warns:\n{err}"
    );
    run_ok(
        Command::new(&sa)
            .args(["security", "--offline=yes", "--threshold=40"])
            .arg(&copy),
    );
    for want in [
        "ProtectSystem=strict",
        "ProtectHome=",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "Restart=always",
        "MemoryMax=",
        "CapabilityBoundingSet=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_PERFMON CAP_BPF\n",
    ] {
        assert!(unit.contains(want), "the unit lacks {want}");
    }
}

/// Every dashboard query against a real Prometheus scraping the stand-in exposition
/// (issue 11's names and labels) and node_exporter's series for one node: promtool
/// accepts it and it returns data.
#[test]
fn every_dashboard_query_runs_and_returns_data() {
    if common::need_tool("promtool").is_none() {
        return;
    }
    let iowhy = fixture("iowhy.prom");
    let node = fixture("node_exporter.prom");
    let t_iowhy = TextTarget::start(move |n| grow_counters(&iowhy, n));
    let t_node = TextTarget::start(move |n| grow_counters(&node, n));
    let Some(prom) = Prometheus::start(&[
        Scrape::new("iowhy", &t_iowhy.addr).instance("node-a"),
        Scrape::new("node-exporter", &t_node.addr).instance("node-a"),
    ]) else {
        return;
    };
    // Two scrapes of each: rate() has its two samples.
    let ready = Duration::from_secs(30);
    prom.wait_for("rate(iowhy_process_write_bytes_total[1m]) > 0", ready);
    prom.wait_for("rate(node_disk_io_time_seconds_total[1m]) > 0", ready);
    prom.wait_for("rate(iowhy_fsync_duration_seconds_bucket[1m]) > 0", ready);

    let d = dashboard();
    let mut failed = Vec::new();
    for (who, expr) in &d.exprs {
        let e = substitute(expr);
        if let Err(err) = prom.promtool_query(&e) {
            failed.push(format!("{who}: {e}\n  promtool: {err}"));
            continue;
        }
        match prom.query(&e) {
            Err(err) => failed.push(format!("{who}: {e}\n  {err}")),
            Ok(v) if v.is_empty() => failed.push(format!("{who}: {e}\n  no data")),
            Ok(v) if v.iter().all(|(_, x)| x.is_nan()) => {
                failed.push(format!("{who}: {e}\n  only NaN: {v:?}"))
            }
            Ok(_) => {}
        }
    }
    for (var, q) in &d.variables {
        let (sel, label) = label_values(&substitute(q));
        match prom.query(&sel) {
            Ok(v)
                if v.iter()
                    .any(|(l, _)| l.get(&label).is_some_and(|x| !x.is_empty())) => {}
            other => failed.push(format!("variable {var}: {sel} has no {label}: {other:?}")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} dashboard queries failed:\n{}",
        failed.len(),
        d.exprs.len() + d.variables.len(),
        failed.join("\n")
    );
    assert!(t_iowhy.requests.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[test]
fn the_rules_and_dashboard_know_exactly_the_families_serve_exports() {
    let exported: std::collections::BTreeSet<&str> =
        iowhy::fields::ALL.iter().map(|f| f.name).collect();
    let known: std::collections::BTreeSet<&str> = IOWHY_METRICS.iter().copied().collect();
    assert_eq!(exported, known, "src/fields.rs and IOWHY_METRICS disagree");
}
