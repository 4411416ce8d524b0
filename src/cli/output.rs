//! How a command talks to its user: human text on a terminal, one JSON document with `--json`,
//! nothing but errors with `-q`.

use super::progress::Bar;
use crate::container::{NoProgress, Progress};
use serde::Serialize;
use std::fmt::Display;
use std::io::{IsTerminal, Write};

/// Output settings shared by every command.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Print one JSON document on stdout instead of text; no progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "json")]
    pub quiet: bool,
}

/// Where a command's messages, progress and result go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    args: OutputArgs,
}

impl Output {
    /// Output for the given flags.
    pub fn new(args: OutputArgs) -> Self {
        Output { args }
    }

    /// Whether JSON mode is on.
    pub fn json(&self) -> bool {
        self.args.json
    }

    /// Whether only errors may be printed.
    pub fn quiet(&self) -> bool {
        self.args.quiet
    }

    /// A progress reporter: a bar on a terminal, nothing in JSON or quiet mode or in CI.
    pub fn progress(&self) -> Box<dyn Progress> {
        let interactive = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        if self.args.json || self.args.quiet || !interactive {
            Box::new(NoProgress)
        } else {
            Box::new(Bar::new())
        }
    }

    /// A line of information on stderr (not in JSON or quiet mode).
    pub fn info(&self, message: impl Display) {
        if !self.args.json && !self.args.quiet {
            eprintln!("{message}");
        }
    }

    /// A warning on stderr, shown in every mode but quiet.
    pub fn warn(&self, message: impl Display) {
        if !self.args.quiet {
            eprintln!("warning: {message}");
        }
    }

    /// The command's result: `human` on stdout as text, or `json` as one JSON document.
    pub fn result(&self, human: impl Display, json: &impl Serialize) {
        let mut stdout = std::io::stdout().lock();
        let written = if self.args.json {
            serde_json::to_writer_pretty(&mut stdout, json)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        } else if self.args.quiet {
            Ok(())
        } else {
            write!(stdout, "{human}")
        };
        // A closed stdout (e.g. piped into `head`) is not an error of the command.
        let _ = written.and_then(|()| stdout.flush());
    }

    /// Reports a failed command: the error chain on stderr and, in JSON mode, an error object
    /// on stdout. Returns the exit code.
    pub fn failure(&self, error: &anyhow::Error) -> u8 {
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        eprintln!("error: {}", chain.join(": "));
        if self.args.json {
            let doc = serde_json::json!({ "ok": false, "error": chain.join(": ") });
            println!("{doc}");
        }
        1
    }
}
