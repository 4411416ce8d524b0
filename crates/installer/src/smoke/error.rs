//! What can go wrong talking to a homeserver.

use std::fmt;

/// A failed request to the homeserver.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The server answered with a non-success status.
    #[error("{method} {path}: HTTP {status}{}", Errcode(errcode, message))]
    Http {
        method: reqwest::Method,
        path: String,
        status: u16,
        errcode: Option<String>,
        message: Option<String>,
    },
    /// The request never got an answer (connection, TLS, time-out); `detail` is the whole
    /// cause chain.
    #[error("{method} {path}: {detail}")]
    Transport {
        method: reqwest::Method,
        path: String,
        detail: String,
    },
    /// The answer was not what the API promises.
    #[error("{method} {path}: unexpected response: {detail}")]
    Response {
        method: reqwest::Method,
        path: String,
        detail: String,
    },
    /// The server answered, but not with what the test expected.
    #[error("{0}")]
    Check(String),
    /// The client could not be set up (base URL, CA file).
    #[error("{0}")]
    Config(String),
}

impl MatrixError {
    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self {
            MatrixError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Matrix `errcode` of a refused request, when the server sent one.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            MatrixError::Http { errcode, .. } => errcode.as_deref(),
            _ => None,
        }
    }
}

/// Formats ` M_CODE: message` when the server sent them.
struct Errcode<'a>(&'a Option<String>, &'a Option<String>);

impl fmt::Display for Errcode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.0 {
            write!(f, " {code}")?;
        }
        if let Some(message) = self.1 {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}
