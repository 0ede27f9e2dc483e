//! `lander-capture` as tcpdump runs: the interface in promiscuous mode unless `--no-promisc`,
//! and `-Z USER` dropping root once the capture handle and the output directory are open. On
//! a veth pair between two network namespaces made by the test; needs root, iproute2 and
//! tcpreplay.

mod capture_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use capture_support::*;

/// The interface's promiscuity count (`ip -details link`), as the kernel keeps it.
fn promiscuity(veth: &Veth) -> u64 {
    let out = in_ns(&veth.rx_ns, "ip")
        .args(["-details", "link", "show", "dev", &veth.rx])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "promiscuity")
        .nth(1);
    word.and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no promiscuity in {text}"))
}

/// Waits until the capture has opened the interface (its log says so), or panics.
fn wait_until_open(child: &mut Child, log: &Path) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("capturing") || text.contains("dropped root") {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "capture ended: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "capture never opened: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Uid lines of a process (`Uid: real effective saved fs`).
fn uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

fn nobody() -> (u32, u32) {
    let out = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = Command::new("id").args(["-g", "nobody"]).output().unwrap();
    (
        uid,
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
    )
}

#[test]
fn promiscuous_by_default_and_not_with_no_promisc() {
    let dir = tempfile::tempdir().unwrap();
    let veth = Veth::new("p");
    assert_eq!(promiscuity(&veth), 0);
    for (args, want) in [(&[][..], 1), (&["--no-promisc"][..], 0)] {
        let log = dir.path().join(format!("capture{want}.log"));
        let out = dir.path().join(format!("out{want}"));
        let mut child = veth.capture(&out, &log, args);
        wait_until_open(&mut child, &log);
        assert_eq!(promiscuity(&veth), want, "{args:?}");
        signal(&child, libc::SIGTERM);
        let (st, _) = wait_for(&mut child, Duration::from_secs(20));
        assert!(st.success(), "{}", std::fs::read_to_string(&log).unwrap());
    }
    assert_eq!(promiscuity(&veth), 0, "left as it was");
}

#[test]
fn user_drops_root_after_opening_and_still_writes_the_packets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let input = gen_trace(dir.path(), 500);
    let (uid, gid) = nobody();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(uid), Some(gid)).unwrap();
    let veth = Veth::new("z");
    let log = dir.path().join("capture.log");
    let mut child = veth.capture(
        &out,
        &log,
        &["-Z", "nobody", "--filter", "tcp", "--count", "500"],
    );
    wait_until_open(&mut child, &log);
    assert_eq!(
        uids(child.id()),
        vec![uid; 4],
        "real, effective, saved and fs uid"
    );
    veth.replay(&input);
    let (st, _) = wait_for(&mut child, Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(st.success(), "{text}");
    assert!(text.contains("dropped root: running as nobody"), "{text}");
    let files = traces(&out);
    assert_eq!(
        files.iter().map(|p| count_packets(p)).sum::<u64>(),
        500,
        "{text}"
    );
    for f in &files {
        assert_eq!(
            std::fs::metadata(f).unwrap().uid(),
            uid,
            "{} owned by nobody",
            f.display()
        );
    }
}

#[test]
fn user_who_cannot_write_the_output_is_refused_before_any_packet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let veth = Veth::new("y");
    let log = dir.path().join("capture.log");
    let mut child = veth.capture(&out, &log, &["-Z", "nobody"]);
    let (st, _) = wait_for(&mut child, Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(st.code(), Some(3), "{text}");
    assert!(
        text.contains("--user nobody: cannot write to") && text.contains("chown nobody"),
        "{text}"
    );
    let no_user = veth
        .capture(&out, &log, &["-Z", "no-such-user-lander"])
        .wait()
        .unwrap();
    assert_eq!(no_user.code(), Some(2), "an unknown user is a usage error");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("no such user"));
}
