//! How a command talks to its user: human text on a terminal, one JSON document with `--json`,
//! JSON Lines events with `--events`, nothing but errors with `-q`. Every byte a command
//! prints goes through here, and credentials (`Basic ...`, `Bearer ...`, token fields) are
//! redacted from all of it, whatever a registry relayed.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::progress::Bar;
use bundle_file::{NoProgress, Progress};
use registry::redact_credentials;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Output settings shared by every command.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Print the result as one JSON document on stdout instead of text; no progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print JSON Lines on stdout as the command goes: one object per event, each with an
    /// "event" field, the result last as {"event":"done",...} (or {"event":"error",...}).
    #[arg(long, global = true, conflicts_with = "json")]
    pub events: bool,
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with_all = ["json", "events"])]
    pub quiet: bool,
}

/// The output mode a command runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Text for people: information and warnings on stderr, the result on stdout.
    Text,
    /// One JSON document (the result) on stdout.
    Json,
    /// JSON Lines on stdout: events, then the result.
    Events,
    /// Nothing but errors.
    Quiet,
}

/// Where a command's messages, progress and result go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    mode: Mode,
}

impl Output {
    /// Output for the given flags.
    pub fn new(args: OutputArgs) -> Self {
        let mode = if args.json {
            Mode::Json
        } else if args.events {
            Mode::Events
        } else if args.quiet {
            Mode::Quiet
        } else {
            Mode::Text
        };
        Output { mode }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether stdout is for a program (`--json` or `--events`).
    pub fn machine_readable(&self) -> bool {
        matches!(self.mode, Mode::Json | Mode::Events)
    }

    /// Whether progress is drawn: text mode on a terminal, outside CI.
    pub fn interactive(&self) -> bool {
        self.mode == Mode::Text
            && std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
    }

    /// A progress reporter: a bar when [`Output::interactive`], else nothing.
    pub fn progress(&self) -> Box<dyn Progress> {
        if self.interactive() {
            Box::new(Bar::new())
        } else {
            Box::new(NoProgress)
        }
    }

    /// A line of information: on stderr in text mode, an `info` event with `--events`.
    pub fn info(&self, message: impl Display) {
        match self.mode {
            Mode::Text => eprintln!("{}", redact_credentials(&message.to_string())),
            Mode::Events => self.event(
                "info",
                &serde_json::json!({ "message": message.to_string() }),
            ),
            Mode::Json | Mode::Quiet => {}
        }
    }

    /// A warning: on stderr in every mode but quiet (and a `warning` event with `--events`).
    pub fn warn(&self, message: impl Display) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Events => self.event(
                "warning",
                &serde_json::json!({ "message": message.to_string() }),
            ),
            Mode::Text | Mode::Json => {
                eprintln!("warning: {}", redact_credentials(&message.to_string()))
            }
        }
    }

    /// One event line (only with `--events`): `fields` (an object) with `"event": kind` first.
    pub fn event(&self, kind: &str, fields: &impl Serialize) {
        if self.mode == Mode::Events {
            print_line(&tagged(kind, fields));
        }
    }

    /// One event line (only with `--events`) of a value that names its own kind in an
    /// `"event"` field, as the library's event enums do.
    pub fn event_of(&self, event: &impl Serialize) {
        if self.mode == Mode::Events {
            match serde_json::to_string(event) {
                Ok(line) => print_line(&line),
                Err(e) => print_line(&tagged("unprintable", &e.to_string())),
            }
        }
    }

    /// The command's result: `human` on stdout as text, `json` as the one JSON document, or
    /// as the final `done` event.
    pub fn result(&self, human: impl Display, json: &impl Serialize) {
        let text = match self.mode {
            Mode::Json => match serde_json::to_string_pretty(json) {
                Ok(doc) => format!("{doc}\n"),
                Err(e) => format!(
                    "{}\n",
                    serde_json::json!({ "ok": false, "error": e.to_string() })
                ),
            },
            Mode::Events => format!("{}\n", tagged("done", json)),
            Mode::Quiet => String::new(),
            Mode::Text => human.to_string(),
        };
        let mut stdout = std::io::stdout().lock();
        let written = stdout.write_all(redact_credentials(&text).as_bytes());
        // A closed stdout (e.g. piped into `head`) is not an error of the command.
        let _ = written.and_then(|()| stdout.flush());
    }

    /// A command that printed its result but did not fully succeed: `message` on stderr, and
    /// the failing exit status. (The result document already says what failed.)
    pub fn partial_failure(&self, message: impl Display) -> ExitCode {
        eprintln!("error: {}", redact_credentials(&message.to_string()));
        ExitCode::FAILURE
    }

    /// Reports a failed command: the error chain on stderr and, in JSON modes, an error object
    /// on stdout. Returns the exit status.
    pub fn failure(&self, error: &anyhow::Error) -> ExitCode {
        let chain = redact_credentials(&oci::error_chain(error.as_ref()));
        eprintln!("error: {chain}");
        match self.mode {
            Mode::Json => {
                print_line(&serde_json::json!({ "ok": false, "error": chain }).to_string())
            }
            Mode::Events => print_line(&tagged("error", &serde_json::json!({ "error": chain }))),
            Mode::Text | Mode::Quiet => {}
        }
        ExitCode::FAILURE
    }
}

/// One JSON line: `"event": kind` first, then the fields of `fields` (an object; anything
/// else goes under `"value"`).
fn tagged(kind: &str, fields: &impl Serialize) -> String {
    let mut object = Map::new();
    match serde_json::to_value(fields) {
        Ok(Value::Object(fields)) => {
            object.extend(fields.into_iter().filter(|(k, _)| k != "event"))
        }
        Ok(Value::Null) => {}
        Ok(other) => {
            object.insert("value".into(), other);
        }
        Err(e) => {
            object.insert("unprintable".into(), Value::from(e.to_string()));
        }
    }
    let kind = Value::from(kind);
    if object.is_empty() {
        return format!("{{\"event\":{kind}}}");
    }
    let rest = Value::Object(object).to_string();
    format!("{{\"event\":{kind},{}", &rest[1..])
}

fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", redact_credentials(line)).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_kind_first_and_results_keep_their_fields() {
        let line = tagged(
            "done",
            &serde_json::json!({ "bytes": 3, "event": "ignored" }),
        );
        assert_eq!(line, r#"{"event":"done","bytes":3}"#);
        assert_eq!(tagged("done", &()), r#"{"event":"done"}"#);
        assert_eq!(
            tagged("info", &"text"),
            r#"{"event":"info","value":"text"}"#
        );
    }
}
