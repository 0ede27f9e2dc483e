//! One bad item, one bad link, one unusable user directory stops only itself: it is recorded
//! as that item's trouble (history, status) and the pass goes on (issue 9, finding 4).

mod dispatch_support;

use dispatch_support::*;
use lander_dispatch::claim::ClaimState;

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_dangling_link_in_one_users_incoming_stops_only_that_item_for_that_user() {
    let spool = Spool::new(Setup::default());
    let bob = spool.user_dir("bob", "incoming");
    std::fs::create_dir_all(&bob).unwrap();
    let taken = Spool::name(1);
    std::os::unix::fs::symlink("/nonexistent/target", bob.join(&taken)).unwrap();
    let names = spool.add_raw(0..3);
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    // Alice has everything; bob everything but the one name his link holds.
    for name in &names {
        assert!(
            spool.user_dir("alice", "incoming").join(name).is_file(),
            "{name}"
        );
        let bobs = std::fs::symlink_metadata(bob.join(name)).unwrap();
        assert_eq!(bobs.is_file(), name != &taken, "{name}");
    }
    // The item is stuck with its reason, in the history and the status.
    let claim_path = spool.scrub_state().join("claims").join(SITE).join(&taken);
    let claim = lander_dispatch::claim::read(&claim_path).unwrap().unwrap();
    assert_eq!(claim.state, ClaimState::Stuck);
    let info = lander_dispatch::control::find(&spool.config, &claim.job.job_id).unwrap();
    let reason = info.row.reason.unwrap_or_default();
    assert!(
        reason.contains("user bob") && reason.contains("taken"),
        "{reason}"
    );
    assert_eq!(info.row.state, "stuck");
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert_eq!(st.stages[0].stuck, 1, "{st:?}");
    assert!(
        st.problems.iter().any(|p| p.contains("not put in place")),
        "{:?}",
        st.problems
    );
    // Bob's own dispatcher quarantines the link; the next scrub pass finishes the item.
    spool.user_engine("bob").pass().unwrap();
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert!(
        st.quarantine
            .iter()
            .any(|q| q.reason.contains("symbolic link")),
        "{st:?}"
    );
    drain(&mut engine);
    engine.pass().unwrap();
    assert!(bob.join(&taken).is_file());
    assert!(lander_dispatch::claim::read(&claim_path).unwrap().is_none());
    assert_eq!(
        lander_dispatch::control::find(&spool.config, &claim.job.job_id)
            .unwrap()
            .row
            .state,
        "succeeded"
    );
}

#[test]
fn an_over_long_name_is_quarantined_and_the_rest_goes_on() {
    let spool = Spool::new(Setup::default());
    let long = format!("{}.pcap", "x".repeat(240));
    let names = spool.add_raw(0..4);
    std::fs::write(spool.raw_dir().join(&long), b"long\n").unwrap();
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert_eq!(st.quarantine.len(), 1, "{:?}", st.quarantine);
    assert_eq!(st.quarantine[0].name, long);
    assert!(
        st.quarantine[0].reason.contains("longer than"),
        "{:?}",
        st.quarantine
    );
    let q = spool.root().join("state/quarantine").join(SITE);
    assert_eq!(read(&q.join(&st.quarantine[0].id)), "long\n");
}

#[test]
fn a_name_with_control_characters_is_quarantined() {
    let spool = Spool::new(Setup::default());
    spool.add_raw_file(SITE, "bad\nname.pcap", b"x");
    let names = spool.add_raw(0..2);
    drain(&mut spool.scrub_engine());
    spool.assert_scrubbed_exactly_once(&names);
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert!(
        st.quarantine[0].reason.contains("control characters"),
        "{st:?}"
    );
}

#[test]
fn an_unusable_user_directory_stops_only_that_user() {
    let spool = Spool::new(Setup::default());
    // Bob's incoming directory for the site is a file (as a full or broken disk would refuse).
    let bob = spool.user_dir("bob", "incoming");
    std::fs::create_dir_all(bob.parent().unwrap()).unwrap();
    std::fs::write(&bob, b"not a directory").unwrap();
    let names = spool.add_raw(0..3);
    let mut engine = spool.scrub_engine();
    let r = pass_until(&mut engine, "every item stuck", |r| r.stuck == 3);
    assert_eq!(r.errors, 0, "{r:?}");
    for name in &names {
        assert!(spool.user_dir("alice", "incoming").join(name).is_file());
    }
    // Fixed, the next passes finish every item; nothing was scrubbed twice.
    std::fs::remove_file(&bob).unwrap();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn a_fifo_in_a_users_incoming_is_quarantined_not_opened() {
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..2);
    drain(&mut spool.scrub_engine());
    let fifo = spool.user_dir("alice", "incoming").join("pipe.pcap");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    std::os::unix::fs::symlink(
        "/etc/hostname",
        spool.user_dir("alice", "incoming").join("l.pcap"),
    )
    .unwrap();
    drain(&mut spool.user_engine("alice"));
    assert_eq!(
        list(&spool.user_dir("alice", "done")).len(),
        names.len() * 2
    );
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert_eq!(st.quarantine.len(), 2, "{:?}", st.quarantine);
    assert_eq!(st.stages[1].quarantined, 2);
}
