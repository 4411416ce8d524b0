//! How build events reach the user: a total progress bar and a line per image on a terminal,
//! one JSON object per line with `--json`, nothing with `-q`.

use bundle::build::{BuildEvent, BuildEvents};
use bundle::cli::Output;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// Build events rendered for the chosen output mode.
pub struct CliEvents {
    mode: Mode,
    bar: Mutex<Option<ProgressBar>>,
    out: Output,
}

enum Mode {
    Quiet,
    Json,
    Lines,
    Terminal,
}

impl CliEvents {
    /// Events for `out`'s mode.
    pub fn new(out: &Output) -> Self {
        let mode = if out.json() {
            Mode::Json
        } else if out.quiet() {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Mode::Terminal
        } else {
            Mode::Lines
        };
        CliEvents {
            mode,
            bar: Mutex::new(None),
            out: *out,
        }
    }

    fn line(&self, text: String) {
        match &self.mode {
            Mode::Terminal => match self.bar.lock().ok().and_then(|b| b.clone()) {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            },
            // Through `info`, which `-q` silences.
            Mode::Lines => self.out.info(text),
            _ => {}
        }
    }
}

impl BuildEvents for CliEvents {
    fn event(&self, event: BuildEvent) {
        if let Mode::Json = self.mode {
            if !matches!(event, BuildEvent::Progress { .. }) {
                if let Ok(line) = serde_json::to_string(&event) {
                    println!("{line}");
                }
            }
            return;
        }
        match event {
            BuildEvent::Resolved {
                image,
                digest,
                platforms,
            } => self.line(format!(
                "resolved {image} -> {digest} ({})",
                platforms.join(", ")
            )),
            BuildEvent::FetchStarted { blobs, bytes } => {
                self.line(format!("fetching {blobs} blobs, {}", human(bytes)));
                if let Mode::Terminal = self.mode {
                    let bar = ProgressBar::new(bytes);
                    if let Ok(style) = ProgressStyle::with_template(
                        "   fetch [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    if let Ok(mut slot) = self.bar.lock() {
                        *slot = Some(bar);
                    }
                }
            }
            BuildEvent::Progress { bytes } => {
                if let Some(bar) = self.bar.lock().ok().and_then(|b| b.clone()) {
                    bar.inc(bytes);
                }
            }
            BuildEvent::ImageFetched {
                image,
                blobs,
                bytes,
                downloaded,
            } => self.line(format!(
                "  {image}: {blobs} blobs, {} ({} downloaded)",
                human(bytes),
                human(downloaded)
            )),
            BuildEvent::PackStarted { bytes } => {
                if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
                    bar.finish_and_clear();
                }
                self.line(format!("packing {}", human(bytes)));
            }
            BuildEvent::Done { .. } => {}
        }
    }
}

/// Bytes in binary units.
pub fn human(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}
