//! Job arrays: one `sbatch --array=0-N%K` per batch, and one `squeue -r --name=...` per pass
//! for every array a stage has out, which also finds an array whose id was never recorded.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::Path;

use super::{flag_path, parse_submitted, state_of, stderr_text, SlurmBackend};
use crate::backend::{ArrayQueue, BackendError};

impl SlurmBackend {
    /// The `sbatch` arguments of an array of `tasks` tasks (the script comes on standard input).
    pub fn array_args(
        &self,
        name: &str,
        list: &Path,
        tasks: usize,
        time_minutes: Option<u64>,
    ) -> Vec<OsString> {
        let last = tasks.saturating_sub(1);
        let range = match self.settings.array_throttle {
            0 => format!("--array=0-{last}"),
            k => format!("--array=0-{last}%{k}"),
        };
        // Slurm's own messages (a cancel, a node failure) go beside the batch file.
        let err = list.with_extension("err");
        let mut args: Vec<OsString> = vec![
            "--parsable".into(),
            format!("--job-name={name}").into(),
            range.into(),
            // Retries are the dispatcher's (a requeued task would find its own start marker).
            "--no-requeue".into(),
            "--open-mode=append".into(),
            "--output=/dev/null".into(),
            flag_path("--error=", err.as_os_str()),
        ];
        if let Some(p) = &self.settings.partition {
            args.push(format!("--partition={p}").into());
        }
        match (&self.settings.time_limit, time_minutes) {
            (Some(t), _) => args.push(format!("--time={t}").into()),
            (None, Some(minutes)) => args.push(format!("--time={minutes}").into()),
            (None, None) => {}
        }
        args.extend(self.settings.extra_args.iter().map(OsString::from));
        args
    }

    pub(super) fn sbatch_array(
        &mut self,
        name: &str,
        list: &Path,
        tasks: usize,
        time_minutes: Option<u64>,
    ) -> Result<String, BackendError> {
        let err = |source| BackendError::SubmitArray {
            name: name.to_owned(),
            source,
        };
        let script = self.script(list);
        let args = self.array_args(name, list, tasks, time_minutes);
        let result = self.run(&self.settings.sbatch, &args, Some(&script));
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                self.backoff.failed();
                return Err(err(e));
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        match parse_submitted(&stdout) {
            Some(id) if out.status.success() => {
                self.backoff.succeeded();
                Ok(id)
            }
            _ => {
                let wait = self.backoff.failed();
                Err(err(io::Error::other(format!(
                    "{} exited with {}: {}{} (next try in {})",
                    self.settings.sbatch,
                    out.status,
                    stderr_text(&out),
                    stdout.trim(),
                    lander_spool::human::duration(wait.as_secs_f64())
                ))))
            }
        }
    }

    pub(super) fn squeue_arrays(&mut self, names: &[String]) -> Result<ArrayQueue, BackendError> {
        if names.is_empty() {
            return Ok(ArrayQueue::default());
        }
        let args: Vec<OsString> = vec![
            "-h".into(),
            "-r".into(),
            "-t".into(),
            "all".into(),
            format!("--name={}", names.join(",")).into(),
            "-o".into(),
            "%i|%j|%T".into(),
        ];
        let squeue = &self.settings.squeue;
        let out = self
            .run(squeue, &args, None)
            .map_err(|e| BackendError::Poll(e.to_string()))?;
        if !out.status.success() {
            return Err(BackendError::Poll(format!(
                "{squeue} exited with {}: {}",
                out.status,
                stderr_text(&out)
            )));
        }
        Ok(parse_array_queue(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// Parses `squeue -h -r -o '%i|%j|%T'` lines: each array's id by name, each task's state.
pub fn parse_array_queue(stdout: &str) -> ArrayQueue {
    let mut ids = HashMap::new();
    let mut tasks = HashMap::new();
    for line in stdout.lines() {
        let mut fields = line.trim().split('|');
        let (Some(id), Some(name), Some(state)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let id = id.trim();
        let Some((array, index)) = id.split_once('_') else {
            continue;
        };
        if array.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) || index.is_empty() {
            continue;
        }
        ids.insert(name.trim().to_owned(), array.to_owned());
        tasks.insert(id.to_owned(), state_of(state.trim()));
    }
    ArrayQueue { ids, tasks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::JobState;
    use crate::config::Slurm;

    #[test]
    fn array_lines_give_ids_by_name_and_task_states() {
        let q = parse_array_queue(
            "70_0|lander.scrub.a|RUNNING\n70_1|lander.scrub.a|PENDING\n\
             70_2|lander.scrub.a|COMPLETED\n71_0|lander.scrub.b|CANCELLED\n\
             72|lander.scrub.c|RUNNING\n73_[1-3%2]|lander.scrub.d|PENDING\ngarbage\n",
        );
        assert_eq!(q.ids["lander.scrub.a"], "70");
        assert_eq!(q.ids["lander.scrub.b"], "71");
        assert!(!q.ids.contains_key("lander.scrub.c"), "not an array task");
        assert!(
            !q.ids.contains_key("lander.scrub.d"),
            "a range is never read as a task"
        );
        assert_eq!(q.tasks["70_0"], JobState::Running);
        assert_eq!(q.tasks["70_1"], JobState::Pending);
        assert_eq!(q.tasks["70_2"], JobState::Unknown);
        assert_eq!(q.tasks.len(), 4);
    }

    #[test]
    fn array_arguments_carry_the_range_throttle_and_limits() {
        let settings = Slurm {
            array_throttle: 8,
            partition: Some("p".into()),
            ..Slurm::default()
        };
        let b = SlurmBackend::new(vec!["w".into()], settings);
        let args = b.array_args("lander.scrub.x", Path::new("/s/b/x.json"), 200, Some(3));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        for want in [
            "--job-name=lander.scrub.x",
            "--array=0-199%8",
            "--no-requeue",
            "--error=/s/b/x.err",
            "--partition=p",
            "--time=3",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        let b = SlurmBackend::new(
            vec!["w".into()],
            Slurm {
                array_throttle: 0,
                ..Slurm::default()
            },
        );
        let args = b.array_args("n", Path::new("/x.json"), 1, None);
        assert!(args.iter().any(|a| a == "--array=0-0"), "{args:?}");
    }
}
