//! Sweeping: temporaries, stale takeover markers and scratch left by writers that are gone.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Dispatcher;
use crate::claim;
use crate::fsutil::{self, remove_if_exists};
use crate::stage::Stage;

impl<S: Stage> Dispatcher<S> {
    /// Removes temporary files in the state directories whose writers are gone (not running on
    /// this host, zombies included, or older than `foreign_age` from another host).
    pub fn sweep(&self, foreign_age: Duration) -> io::Result<usize> {
        let dirs = self.stage.dirs();
        let in_use = self
            .read_claims()?
            .into_iter()
            .map(|(_, _, c)| c.job.job_id);
        let mut removed = self.stage.sweep_scratch(&in_use.collect(), foreign_age)?;
        let mut all = vec![
            dirs.jobs.clone(),
            dirs.records.clone(),
            dirs.claims.clone(),
            dirs.batches.clone(),
        ];
        all.extend(subdirs(&dirs.claims)?);
        for dir in all {
            for name in fsutil::list_all(&dir)? {
                if name.ends_with(".takeover") && claim::remove_stale_marker(&dir.join(&name))? {
                    removed += 1;
                }
            }
            for left in fsutil::abandoned_temporaries(&dir, foreign_age).unwrap_or_default() {
                remove_if_exists(&left)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}
