//! The smoke test's step-by-step report.

use super::error::MatrixError;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::time::Instant;

/// How one step went.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: String,
    pub ok: bool,
    pub millis: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every step run, in order; the run stops at the first failure.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub base_url: String,
    pub ok: bool,
    pub steps: Vec<StepResult>,
}

impl Report {
    /// An empty report for the homeserver at `base_url`.
    pub fn new(base_url: &str) -> Self {
        Report {
            base_url: base_url.to_string(),
            ok: true,
            steps: Vec::new(),
        }
    }

    /// Runs one step, timing it and recording the outcome; `None` when it failed.
    pub async fn step<T>(
        &mut self,
        name: &str,
        work: impl Future<Output = Result<T, MatrixError>>,
    ) -> Option<T> {
        let start = Instant::now();
        let outcome = work.await;
        let millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, value, status, errcode, error) = match outcome {
            Ok(value) => (true, Some(value), None, None, None),
            Err(e) => (
                false,
                None,
                e.status(),
                e.errcode().map(str::to_string),
                Some(e.to_string()),
            ),
        };
        self.ok &= ok;
        self.steps.push(StepResult {
            step: name.to_string(),
            ok,
            millis,
            status,
            errcode,
            error,
        });
        value
    }

    /// The step that failed, if one did.
    pub fn failed_step(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| !s.ok)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "smoke test of {}", self.base_url)?;
        for step in &self.steps {
            let mark = if step.ok { "ok    " } else { "FAILED" };
            writeln!(f, "  {mark} {:<32} {:>6} ms", step.step, step.millis)?;
            if let Some(error) = &step.error {
                writeln!(f, "         {error}")?;
            }
        }
        let verdict = if self.ok { "passed" } else { "failed" };
        writeln!(f, "smoke test {verdict}")
    }
}
