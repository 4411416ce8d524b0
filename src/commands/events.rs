//! How build events reach the user: a progress bar and a line per image on a terminal, lines
//! on stderr elsewhere, JSON Lines with `--events`, nothing with `--json` or `-q`.

use cli_support::output::Mode;
use cli_support::progress::{human_bytes, Bar};
use cli_support::Output;
use online::build::{BuildEvent, BuildEvents};

/// Build events rendered for the chosen output mode.
pub struct CliEvents {
    out: Output,
    /// The fetch bar, when progress is drawn.
    bar: Option<Bar>,
}

impl CliEvents {
    /// Events for `out`'s mode.
    pub fn new(out: Output) -> Self {
        CliEvents {
            out,
            bar: out.interactive().then(Bar::new),
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(&text),
            None => self.out.info(text),
        }
    }
}

impl BuildEvents for CliEvents {
    fn event(&self, event: BuildEvent) {
        if self.out.mode() == Mode::Events {
            if !matches!(event, BuildEvent::Progress { .. }) {
                self.out.event_of(&event);
            }
            return;
        }
        use bundle_file::Progress as _;
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
                self.line(format!("fetching {blobs} blobs, {}", human_bytes(bytes)));
                if let Some(bar) = &self.bar {
                    bar.start("fetch", bytes);
                }
            }
            BuildEvent::Progress { bytes } => {
                if let Some(bar) = &self.bar {
                    bar.advance(bytes);
                }
            }
            BuildEvent::ImageFetched {
                image,
                blobs,
                bytes,
                downloaded,
            } => self.line(format!(
                "  {image}: {blobs} blobs, {} ({} downloaded)",
                human_bytes(bytes),
                human_bytes(downloaded)
            )),
            BuildEvent::PackStarted { bytes } => {
                if let Some(bar) = &self.bar {
                    bar.finish();
                }
                self.line(format!("packing {}", human_bytes(bytes)));
            }
            BuildEvent::Info { message } => self.line(message),
            BuildEvent::Warning { message } => self.out.warn(message),
        }
    }
}
