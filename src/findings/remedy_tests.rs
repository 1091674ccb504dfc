use super::*;

fn w(append: bool, hup: Option<bool>) -> LogWriter<'static> {
    LogWriter {
        pid: 7,
        comm: "logger",
        cmdline: "/usr/bin/python3 /opt/app/log.py --out /var/log/a.log",
        fd: 3,
        append,
        handles_hup: hup,
        unit: None,
        mode: Some(0o640),
        uid: Some(0),
        gid: Some(4),
    }
}

#[test]
fn rotation_advice_follows_what_the_writer_can_do() {
    let s = rotate_steps("/var/log/a.log", w(true, Some(false)));
    assert!(s.iter().any(|x| x.starts_with("# do not: kill -HUP 7")));
    assert!(!s.iter().any(|x| x.starts_with("mv ")));
    assert!(s.iter().any(|x| x.contains("--copytruncate")));
    let s = rotate_steps("/var/log/a.log", w(false, Some(true)));
    let mv = s.iter().find(|x| x.starts_with("mv ")).expect("by hand");
    assert!(mv.contains("install -m 0640 -o 0 -g 4 /dev/null"), "{mv}");
    assert!(
        !s.iter().any(|x| x.contains("truncate -s 0")),
        "never truncate a non-append writer's file"
    );
    // Unknown handlers: iowhy rotate (which checks), never a bare kill -HUP.
    let s = rotate_steps("/var/log/a.log", w(false, None));
    assert!(
        s.iter()
            .any(|x| x.starts_with("iowhy rotate /var/log/a.log  #"))
    );
    assert!(
        !s.iter()
            .any(|x| x.contains("kill -HUP 7") && !x.starts_with('#'))
    );
}

#[test]
fn stanza_hup_in_a_systemd_service_signals_its_main_process() {
    let mut x = w(false, Some(true));
    x.unit = Some("app.service");
    let st = logrotate_stanza("/var/log/a.log", x).unwrap();
    assert!(st.contains("\n    create 0640 0 4\n"), "{st}");
    assert!(
        st.contains("systemctl kill -s HUP --kill-whom=main app.service || true"),
        "{st}"
    );
    assert!(
        !st.contains("copytruncate") && !st.contains("pkill"),
        "{st}"
    );
}

#[test]
fn stanza_hup_elsewhere_signals_the_exact_command_line() {
    let mut x = w(true, Some(true));
    x.cmdline = "/usr/bin/app --conf /etc/app.d/a+b.conf";
    let st = logrotate_stanza("/var/log/a.log", x).unwrap();
    assert!(
        st.contains(r"pkill -HUP -x -f '/usr/bin/app --conf /etc/app\.d/a\+b\.conf' || true"),
        "{st}"
    );
    assert!(
        !st.contains("copytruncate"),
        "a writer that reopens is renamed: {st}"
    );
    assert!(
        !st.contains("pkill -HUP -x logger"),
        "never by name alone: {st}"
    );
}

#[test]
fn stanza_without_hup_but_append_copytruncates() {
    let st = logrotate_stanza("/var/log/a.log", w(true, Some(false))).unwrap();
    assert!(st.contains("    copytruncate\n"), "{st}");
    assert!(!st.contains("create") && !st.contains("postrotate"), "{st}");
    assert!(st.contains("can lose the lines"), "{st}");
    // Unknown handlers with O_APPEND: copytruncate too, and it says why.
    let st = logrotate_stanza("/var/log/a.log", w(true, None)).unwrap();
    assert!(
        st.contains("copytruncate") && st.contains("could not be read"),
        "{st}"
    );
}

#[test]
fn stanza_neither_hup_nor_append_is_none_and_says_why() {
    let e = logrotate_stanza("/var/log/a.log", w(false, Some(false))).unwrap_err();
    assert!(
        e.contains("no SIGHUP handler") && e.contains("Fix the program"),
        "{e}"
    );
    let e = logrotate_stanza("/var/log/a.log", w(false, None)).unwrap_err();
    assert!(e.contains("could not be read"), "{e}");
    let step = logrotate_step("/var/log/a.log", w(false, Some(false)));
    assert!(
        step.starts_with("# no logrotate stanza  # lasting fix:"),
        "{step}"
    );
    // A HUP writer whose command line is unknown cannot be signalled alone.
    let mut x = w(false, Some(true));
    x.cmdline = "";
    assert!(logrotate_stanza("/var/log/a.log", x).is_err());
}

#[test]
fn stanza_names_the_file_as_logrotate_reads_it() {
    let st = logrotate_stanza("/var/log/my app.log", w(true, Some(false))).unwrap();
    assert!(st.contains("\n\"/var/log/my app.log\" {\n"), "{st}");
    let st = logrotate_stanza("/var/log/a\"b.log", w(true, Some(false))).unwrap();
    assert!(st.contains("\n'/var/log/a\"b.log' {\n"), "{st}");
    assert!(logrotate_stanza("/var/log/a*.log", w(true, Some(false))).is_err());
    // Mode known, owner not: create MODE (logrotate copies the rest from the log).
    let mut x = w(false, Some(true));
    x.uid = None;
    x.gid = None;
    let st = logrotate_stanza("/var/log/a.log", x).unwrap();
    assert!(st.contains("\n    create 0640\n"), "{st}");
}

#[test]
fn deleted_file_holders_get_kill_hup_only_with_a_handler() {
    assert!(restart_step(9, Some(true)).contains("kill -HUP 9"));
    let no = restart_step(9, Some(false));
    assert!(
        no.starts_with("systemctl restart <unit of pid 9>  #"),
        "{no}"
    );
    assert!(no.contains("not kill -HUP"));
    assert!(!restart_step(9, None).starts_with("kill"));
}
