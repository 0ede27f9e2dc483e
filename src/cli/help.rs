//! What every `--help` ends with: the commands people actually run (EXAMPLES) and the exit
//! status contract, added to each command and subcommand of a binary in one pass, so man
//! pages and completions see the same text.

use clap::{Command, CommandFactory, FromArgMatches};

use super::exit;

/// Parses the command line of `T` with the examples and exit status added to every `--help`;
/// exits 2 on a usage error, as clap does.
pub fn parse<T: CommandFactory + FromArgMatches>() -> T {
    let matches = command::<T>().get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The full command of `T`, as `--help`, the man pages and the completions show it.
pub fn command<T: CommandFactory>() -> Command {
    let cmd = T::command();
    let path = cmd.get_name().to_string();
    decorate(cmd, &path)
}

/// Adds the examples of `path` (e.g. `lander info`) and the exit status to `cmd`'s help,
/// after what it already says, and does the same for each subcommand.
fn decorate(cmd: Command, path: &str) -> Command {
    let mut parts: Vec<String> = Vec::new();
    if let Some(own) = cmd.get_after_help() {
        parts.push(own.to_string());
    }
    if let Some(examples) = examples(path) {
        parts.push(format!("Examples:\n{examples}"));
    }
    parts.push(exit::HELP.to_string());
    let cmd = cmd.after_help(parts.join("\n\n"));
    let owned = path.to_string();
    cmd.mut_subcommands(move |sub| {
        let sub_path = format!("{owned} {}", sub.get_name());
        decorate(sub, &sub_path)
    })
}

/// The two or three commands people run, per command path.
pub fn examples(path: &str) -> Option<&'static str> {
    let path = path.strip_prefix("lander ").map_or(path, |rest| rest);
    Some(match path {
        "lander" => {
            "  lander info trace.pcap                     what a trace holds (like capinfos)
  lander keygen --out scrub.key              a fresh key (mode 0600)
  lander scrub --key scrub.key in.pcap out.pcap
  lander verify in.pcap out.pcap             prove nothing raw survived"
        }
        "lander-capture" | "capture" => {
            "  lander-capture -i eth0 -o /spool/raw/site1 --rotate-interval 5m
  lander-capture -i eth0 -o /spool/raw/site1 --filter 'not port 22' -Z lander
  lander-capture -r old.pcap -o /spool/raw/site1 --rotate-size 1GiB"
        }
        "lander-scrub" | "scrub" => {
            "  lander-scrub --key scrub.key in.pcap out.pcap
  lander-scrub --key scrub.key --in-dir raw/ --out-dir scrubbed/
  tcpdump -w - -i eth0 | lander-scrub --key scrub.key - - | tcpdump -r -"
        }
        "info" => {
            "  lander info trace.pcap
  lander info --hash *.pcap
  lander info --json trace.pcapng | jq .summary.packets"
        }
        "convert" => {
            "  lander convert in.pcapng out.pcap
  lander convert --snaplen 96 in.pcap short.pcap
  tcpdump -w - | lander convert - out.pcapng"
        }
        "gen" => {
            "  lander gen mixed -n 100000 --out mixed.pcap
  lander gen syn-flood --seed 7 --out - | tcpdump -nr - | head"
        }
        "verify" => {
            "  lander verify raw.pcap scrubbed.pcap
  lander verify --key scrub.key raw.pcap scrubbed.pcap
  lander verify --json raw.pcap scrubbed.pcap > report.json"
        }
        "keygen" => {
            "  lander keygen --out scrub.key
  lander keygen --mapping cryptopant --out cryptopant.key"
        }
        "anon" | "anon ip" => {
            "  lander anon ip --key scrub.key 192.0.2.1 2001:db8::1
  lander anon ip --key scrub.key --reverse < anonymized.txt"
        }
        "dispatch" => {
            "  lander dispatch --config /etc/lander/lander.toml run
  lander dispatch --config /etc/lander/lander.toml once --json"
        }
        "user" => {
            "  lander user --config /etc/lander/lander.toml --user alice run
  LANDER_CONFIG=/etc/lander/lander.toml lander user once --json"
        }
        "jobs" => {
            "  lander jobs --config /etc/lander/lander.toml list
  lander jobs list --state failed
  lander jobs logs JOB_ID"
        }
        "status" => {
            "  lander status --config /etc/lander/lander.toml
  lander status --config /etc/lander/lander.toml --check --html /var/www/lander/status.html
  lander status --config /etc/lander/lander.toml --serve 127.0.0.1:8080"
        }
        "monitor" => {
            "  lander monitor --config /etc/lander/lander.toml run
  lander monitor --config /etc/lander/lander.toml once
  lander monitor mail --to ops@example.org < event.json | sendmail -t"
        }
        "clean" => {
            "  lander clean --config /etc/lander/lander.toml --dry-run
  lander clean --config /etc/lander/lander.toml"
        }
        "quota" => "  lander quota --config /etc/lander/lander.toml --check\n  lander quota --json",
        "demo" => "  lander demo\n  lander demo --dir /tmp/lander-demo --json",
        "bench" => "  lander bench parse --json\n  lander bench scrub",
        "completions" => {
            "  lander completions bash > /etc/bash_completion.d/lander
  lander completions zsh --bin lander-capture > ~/.zfunc/_lander-capture
  lander completions fish --out-dir ~/.config/fish/completions"
        }
        "man" => "  lander man --out /usr/local/share/man/man1",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "lander")]
    struct Top {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        /// Info.
        #[command(after_help = "Own text.")]
        Info,
    }

    #[test]
    fn every_subcommand_ends_with_its_examples_and_the_exit_status() {
        let cmd = command::<Top>();
        let info = cmd.find_subcommand("info").expect("info");
        let help = info.get_after_help().expect("after help").to_string();
        assert!(help.starts_with("Own text."), "{help}");
        assert!(help.contains("lander info --hash"), "{help}");
        assert!(help.ends_with(exit::HELP), "{help}");
    }
}
