//! The monitor: what each stage and capture site holds and what looks wrong — silent capture
//! sites, drops, work nobody picked up, jobs that never started, too much queued, failures,
//! a filling disk, users over quota.
//!
//! [`status`] reads the filesystem (the truth) into a [`Status`]; [`checks`] turns it into
//! problems with stable ids; [`events`] keeps them as events that begin and clear in the
//! monitor's tables ([`store`]); [`notify`] tells operators and users; [`run`] is the loop of
//! `lander monitor run`.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::Config;
use crate::layout::Spool;
use crate::sys;

pub mod checks;
pub mod disk;
pub mod events;
pub mod history;
pub mod notify;
pub mod run;
pub mod sites;
pub mod slurm;
mod stages;
pub mod store;
pub mod tell;
pub mod users;

pub use checks::{Problem, Severity};
pub use disk::DiskStatus;
pub use sites::SiteStatus;
pub use stages::StageStatus;
pub use users::UserStatus;

/// The whole picture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Unix time of the report.
    pub time: f64,
    /// Per capture site.
    pub sites: Vec<SiteStatus>,
    /// Per stage.
    pub stages: Vec<StageStatus>,
    /// Per user: files by state and disk use.
    pub users: Vec<UserStatus>,
    /// The spool's filesystem (none when it cannot be measured).
    pub disk: Option<DiskStatus>,
    /// What needs attention, one line each (the messages of `checks`).
    pub problems: Vec<String>,
    /// The same, with ids, severities and the thing concerned.
    pub open: Vec<Problem>,
    /// Everything quarantined, with why.
    pub quarantine: Vec<crate::quarantine::Reason>,
}

pub(crate) fn age_secs(path: &Path) -> f64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Collects the status of every site, stage and user, and the problems seen.
pub fn status(config: &Config) -> io::Result<Status> {
    let spool = Spool::new(&config.spool);
    let mut st = Status {
        time: sys::now(),
        ..Default::default()
    };
    let mut raw = Vec::new();
    for site in &config.sites {
        let (s, traces) = sites::site_status(&spool, site)?;
        raw.extend(traces);
        st.sites.push(s);
    }
    let mut scrub = stages::stage_status(config, "scrub", &spool.scrub_dirs(), &raw)?;
    for site in &config.sites {
        let found = crate::quarantine::list(&spool.scrub_quarantine(site))?;
        scrub.quarantined += found.len();
        st.quarantine.extend(found);
    }
    st.stages.push(scrub);
    for (user, cfg) in &config.users {
        let (s, found) = stages::user_stage(config, &spool, user, cfg)?;
        st.quarantine.extend(found);
        st.stages.push(s);
    }
    slurm::annotate(config, &mut st.stages);
    st.users = users::user_status(config)?;
    st.disk = disk::measure(&config.spool).ok();
    st.open = checks::evaluate(config, &st);
    st.problems = st.open.iter().map(|p| p.message.clone()).collect();
    Ok(st)
}
