//! Jobs as their users: a root dispatcher runs alice's processor as the account her
//! configuration names (`run_as`); the processor can read its own file, but neither a raw
//! trace nor write into bob's directories. Creates the accounts (useradd; the tests run as
//! root).

mod dispatch_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use dispatch_support::{drain, script, Setup, Spool, SITE};
use lander_dispatch::config::Config;

/// Makes sure the system account `name` exists.
fn account(name: &str) -> u32 {
    let id = || Command::new("id").args(["-u", name]).output().unwrap();
    if !id().status.success() {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status()
            .expect("useradd (the passwd package) creates the test accounts; run as root");
        // 9: created meanwhile by another test run.
        assert!(st.success() || st.code() == Some(9), "useradd {name}: {st}");
    }
    let out = id();
    assert!(out.status.success(), "no account {name}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn open_up(dir: &Path, mode: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_processor_runs_as_its_account_and_can_read_no_raw_trace_nor_write_another_users_dirs() {
    let alice_uid = account("lander-alice");
    account("lander-bob");
    let tools = tempfile::tempdir().unwrap();
    open_up(tools.path(), 0o755);
    let reports = tools.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    open_up(&reports, 0o1777);
    let processor = script(
        tools.path(),
        "processor.sh",
        &format!(
            "r={reports:?}/$LANDER_NAME\n\
             {{\n\
             echo \"uid $(id -u) groups $(id -G)\"\n\
             if cat \"$LANDER_FILE\" >/dev/null 2>&1; then echo own-readable; else echo own-denied; fi\n\
             if cat \"$RAW\" >/dev/null 2>&1; then echo raw-readable; else echo raw-denied; fi\n\
             if ls \"$RAW_DIR\" >/dev/null 2>&1; then echo raw-listable; else echo raw-unlistable; fi\n\
             if touch \"$BOB/intruder\" 2>/dev/null; then echo bob-writable; else echo bob-denied; fi\n\
             }} > \"$r\"\n"
        ),
    );
    let spool = Spool::new(Setup {
        processor: vec![processor],
        ..Setup::default()
    });
    // Alice runs as lander-alice, Bob as lander-bob; the spool is reachable by both.
    open_up(spool.dir.path(), 0o755);
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let text = text
        .replace(
            "[users.alice]\n",
            "[users.alice]\nrun_as = \"lander-alice\"\n",
        )
        .replace("[users.bob]\n", "[users.bob]\nrun_as = \"lander-bob\"\n");
    std::fs::write(spool.config_path(), text).unwrap();
    let spool = Spool {
        config: Config::load(&spool.config_path()).unwrap(),
        ..spool
    };
    assert_eq!(
        spool.config.users["alice"].run_as.as_deref(),
        Some("lander-alice")
    );

    // The scrub stage (root) makes the raw directory private; one file goes through, one
    // raw trace stays behind for the processor to try.
    let mut scrub = spool.scrub_engine();
    let names = spool.add_raw(0..1);
    drain(&mut scrub);
    let raw = spool.add_raw(1..2);
    let raw_file = spool.raw_dir().join(&raw[0]);
    let bob_incoming = spool.user_dir("bob", "incoming");
    assert!(bob_incoming.is_dir());
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let env = format!(
        "[users.alice.env]\nRAW = {:?}\nRAW_DIR = {:?}\nBOB = {:?}\n",
        raw_file,
        spool.raw_dir(),
        bob_incoming
    );
    std::fs::write(
        spool.config_path(),
        text.replace("[users.bob]", &format!("{env}\n[users.bob]")),
    )
    .unwrap();
    let spool = Spool {
        config: Config::load(&spool.config_path()).unwrap(),
        ..spool
    };
    let mut alice = spool.user_engine("alice");
    drain(&mut alice);

    let report = std::fs::read_to_string(reports.join(&names[0])).unwrap_or_else(|e| {
        panic!(
            "the processor wrote no report ({e}); logs in {:?}",
            spool.root()
        )
    });
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].starts_with(&format!("uid {alice_uid} groups ")),
        "{report}"
    );
    assert!(
        !lines[0].split(' ').skip(3).any(|g| g == "0"),
        "no root group: {report}"
    );
    assert_eq!(
        &lines[1..],
        ["own-readable", "raw-denied", "raw-unlistable", "bob-denied"],
        "{report}"
    );
    assert!(!bob_incoming.join("intruder").exists());
    let done = spool.user_site_dir("alice", "done", SITE).join(&names[0]);
    assert!(done.exists(), "{done:?}");
}
