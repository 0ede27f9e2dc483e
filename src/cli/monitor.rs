//! `lander monitor`: the checks, events and notifications of `[monitor]` and `[[notify]]`,
//! as a daemon (`run`) or one pass (`once`, from cron); `mail` turns a notification into a
//! message for `sendmail -t`.

use std::io::Read as _;

use anyhow::Context;
use clap::Subcommand;
use lander_dispatch::monitor::run::{describe, Monitor};

use super::common::{stop_flag, GlobalConfigArg, JsonArg};

/// Arguments of `lander monitor`.
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
    /// Pass after pass, every `monitor.poll_secs`, until TERM or INT.
    Run,
    /// One pass (safe from cron, also beside a running monitor).
    Once,
    /// Read a notification (JSON) on stdin, write a mail message for `sendmail -t`.
    Mail {
        /// Recipient(s).
        #[arg(long, required = true)]
        to: Vec<String>,
        /// Sender.
        #[arg(long)]
        from: Option<String>,
    },
}

/// Runs `lander monitor`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Mail { to, from } => mail(&to, from.as_deref()),
        Command::Once => {
            let config = args.config.load()?;
            let mut m = Monitor::open(&config)?;
            let s = m.once()?;
            if args.json.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("{}", describe(&s));
                for p in &s.status.open {
                    println!("{}  {}", p.severity.to_string().to_uppercase(), p.message);
                }
            }
            Ok(())
        }
        Command::Run => {
            let config = args.config.load()?;
            let mut m = Monitor::open(&config)?;
            tracing::info!(
                config = %config.path.display(),
                "monitor started: every {}, {} notification commands",
                lander_spool::human::duration(config.monitor.poll.as_secs_f64()),
                config.notify.len()
            );
            let stop = stop_flag()?;
            m.run(&stop, |s| tracing::info!("{}", describe(s)));
            tracing::info!("monitor stopped");
            Ok(())
        }
    }
}

/// A mail message from a notification on stdin.
fn mail(to: &[String], from: Option<&str>) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .take(16 << 20)
        .read_to_string(&mut input)
        .context("reading the notification on stdin")?;
    let v: serde_json::Value =
        serde_json::from_str(&input).context("the notification on stdin is not JSON")?;
    print!("{}", mail_message(&v, to, from));
    Ok(())
}

/// Headers without line breaks (a value cannot add a header).
fn header(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn mail_message(v: &serde_json::Value, to: &[String], from: Option<&str>) -> String {
    let summary = v["summary"].as_str().unwrap_or("[LANDER] notification");
    let text = v["text"].as_str().unwrap_or("");
    let mut out = format!("To: {}\n", header(&to.join(", ")));
    if let Some(f) = from {
        out += &format!("From: {}\n", header(f));
    }
    out += &format!(
        "Subject: {}\nContent-Type: text/plain; charset=utf-8\nX-LANDER-Kind: {}\n\n{text}",
        header(summary),
        header(v["kind"].as_str().unwrap_or(""))
    );
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_with_a_line_break_cannot_add_a_header() {
        let v = serde_json::json!({"summary": "x\nBcc: evil@example.org", "text": "body", "kind": "problem"});
        let m = mail_message(&v, &["ops@example.org".into()], None);
        assert!(m.starts_with("To: ops@example.org\nSubject: x Bcc: evil@example.org\n"));
        assert!(!m.contains("\nBcc:"));
        assert!(m.ends_with("\n\nbody\n"));
    }
}
