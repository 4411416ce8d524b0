//! A registry that fails and is retried is reported, not waited on in silence: a line on
//! stderr in text mode, a `retry` event with `--events`.

use registry::{Retry, RetryObserver};

use crate::output::Mode;
use crate::Output;

/// Reports the registry client's retries through the command's output.
#[derive(Debug)]
pub struct RetryReporter(pub Output);

impl RetryObserver for RetryReporter {
    fn retrying(&self, retry: &Retry) {
        if self.0.mode() == Mode::Events {
            self.0.event("retry", retry);
            return;
        }
        self.0.info(format!(
            "registry {}: {} failed ({}); attempt {} of {} in {:.1} s",
            retry.registry,
            retry.what,
            retry.reason,
            retry.failed + 1,
            retry.max_attempts,
            retry.wait_ms as f64 / 1000.0
        ));
    }
}
