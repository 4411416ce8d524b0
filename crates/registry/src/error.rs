//! Errors of the registry client. Every message names the registry and the image or blob
//! concerned; causes (network errors, I/O errors) are chained as sources, not repeated.

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry (or its token service) rejected us, after authenticating if it asked.
    #[error("registry {registry} refused access to repository {repository}: {message}")]
    Unauthorized {
        /// The registry, and the mirror used if any.
        registry: String,
        /// The repository asked for.
        repository: String,
        /// What the registry said, and whether credentials were sent.
        message: String,
    },
    /// The registry understood who we are and forbids the operation (HTTP 403).
    #[error("registry {registry} forbids access to repository {repository}: {message}")]
    Forbidden {
        /// The registry, and the mirror used if any.
        registry: String,
        /// The repository asked for.
        repository: String,
        /// What the registry said.
        message: String,
    },
    /// The image, tag, repository or blob does not exist there.
    #[error("{what} not found in registry {registry}: {message}")]
    NotFound {
        /// What was asked for, such as `image docker.io/x/y:tag` or `blob sha256:... of ...`.
        what: String,
        /// The registry, and the mirror used if any.
        registry: String,
        /// What the registry said (`MANIFEST_UNKNOWN: ...`).
        message: String,
    },
    /// No HTTP answer at all: connection refused, DNS failure, TLS failure, time-out.
    #[error("cannot reach registry {registry} for {what}")]
    Unreachable {
        /// The registry, and the mirror used if any.
        registry: String,
        /// What was asked for.
        what: String,
        /// The network error.
        #[source]
        source: reqwest::Error,
    },
    /// Transient failures (5xx, 429, resets) went on past the retry budget.
    #[error("registry {registry} kept failing for {what}: gave up after {attempts} attempts, last: {last}")]
    TooManyAttempts {
        /// The registry, and the mirror used if any.
        registry: String,
        /// What was asked for.
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Content does not hash to the digest it was asked for or announced with.
    #[error("{what} from registry {registry} has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// The registry, and the mirror used if any.
        registry: String,
        /// What was fetched.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// Content is not of the size it was expected or announced to be.
    #[error("{what} from registry {registry} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The registry, and the mirror used if any.
        registry: String,
        /// What was fetched.
        what: String,
        /// The expected size in bytes.
        expected: u64,
        /// The size received (for an oversized download: at least this much).
        actual: u64,
    },
    /// The registry answered, but not as the distribution protocol says.
    #[error("registry {registry} gave an unexpected answer for {what}: {message}")]
    Protocol {
        /// The registry, and the mirror used if any.
        registry: String,
        /// What was asked for.
        what: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// Credentials cannot be read, or a credential helper failed.
    #[error("registry credentials: {message}")]
    Credentials {
        /// What failed, naming the file or helper and the registry.
        message: String,
    },
    /// Writing fetched content failed.
    #[error("cannot write {what} from registry {registry}")]
    Io {
        /// The registry, and the mirror used if any.
        registry: String,
        /// What was being written.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The client configuration is unusable (unreadable CA file, bad mirror name).
    #[error("registry client configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}
