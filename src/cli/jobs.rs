//! `lander jobs`: job control over the history and the spool.

use clap::Subcommand;
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::ledger::JobRow;

use super::common::{GlobalConfigArg, JsonArg};

/// Arguments of `lander jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: GlobalConfigArg,
    #[command(flatten)]
    json: JsonArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Job attempts, newest first.
    List {
        /// Only this stage: `scrub`, `user/<name>` or a user name.
        #[arg(long)]
        stage: Option<String>,
        /// Only this state: submitted, succeeded, retry, failed, ignored, stuck.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One job attempt: history, run record, start marker, claim, log files.
    Show {
        /// Job id.
        job: String,
    },
    /// A job's standard output and error.
    Logs {
        /// Job id.
        job: String,
    },
    /// End a running job, or drop a queued one.
    Cancel {
        /// Job id.
        job: String,
    },
    /// Queue another attempt of a failed job's file.
    Retry {
        /// Job id.
        job: String,
    },
    /// Start no new jobs in a stage (`scrub`, `user/<name>` or a user name).
    Pause {
        /// The stage.
        stage: String,
    },
    /// Resume a paused stage.
    Resume {
        /// The stage.
        stage: String,
    },
}

/// Runs `lander jobs`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let json = args.json.json;
    match args.command {
        Command::List {
            stage,
            state,
            limit,
        } => {
            let stage = stage.map(|s| stage_name(&config, &s));
            let rows = control::list(&config, stage.as_deref(), state.as_deref(), limit)?;
            print_rows(&rows, json)
        }
        Command::Show { job } => {
            let info = control::find(&config, &job)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_rows(std::slice::from_ref(&info.row), false)?;
                println!("reason: {}", info.row.reason.as_deref().unwrap_or("-"));
                println!(
                    "claim: {}",
                    info.claim
                        .map_or("none".into(), |c| format!("{:?} {}", c.state, c.job.job_id))
                );
                println!(
                    "running: {}",
                    info.marker.map_or("no".into(), |m| match m.is_fence() {
                        true => "no (judged never started; a late start steps aside)".into(),
                        false => format!("{} pid {}", m.host, m.pid),
                    })
                );
                println!(
                    "stdout: {}\nstderr: {}",
                    info.stdout.display(),
                    info.stderr.display()
                );
            }
            Ok(())
        }
        Command::Logs { job } => {
            let (out_path, out, err_path, err) = control::logs(&config, &job)?;
            if json {
                let v = serde_json::json!({"stdout_path": out_path, "stdout": out, "stderr_path": err_path, "stderr": err});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "==> {} <==\n{out}\n==> {} <==\n{err}",
                    out_path.display(),
                    err_path.display()
                );
            }
            Ok(())
        }
        Command::Cancel { job } => say(json, &job, control::cancel(&config, &job)?),
        Command::Retry { job } => say(json, &job, control::retry(&config, &job)?),
        Command::Pause { stage } => {
            let stage = stage_name(&config, &stage);
            control::pause(&config, &stage)?;
            say(json, &stage, "paused".into())
        }
        Command::Resume { stage } => {
            let stage = stage_name(&config, &stage);
            control::resume(&config, &stage)?;
            say(json, &stage, "resumed".into())
        }
    }
}

/// `alice` -> `user/alice` when alice is a configured user.
fn stage_name(config: &Config, s: &str) -> String {
    if config.users.contains_key(s) {
        format!("user/{s}")
    } else {
        s.to_owned()
    }
}

fn say(json: bool, what: &str, message: String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::json!({"target": what, "result": message}));
    } else {
        println!("{message}");
    }
    Ok(())
}

fn print_rows(rows: &[JobRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<60} {:<12} {:<10} {:>4} {:>10}  REASON",
        "JOB", "STAGE", "STATE", "EXIT", "SECONDS"
    );
    for r in rows {
        let secs = match (r.started, r.ended) {
            (Some(s), Some(e)) => format!("{:.2}", e - s),
            _ => "-".into(),
        };
        let exit = r.exit_code.map_or("-".into(), |c| c.to_string());
        let reason = r.reason.as_deref().unwrap_or("");
        println!(
            "{:<60} {:<12} {:<10} {:>4} {:>10}  {reason}",
            r.job_id, r.stage, r.state, exit, secs
        );
    }
    Ok(())
}
