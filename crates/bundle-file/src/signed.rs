//! A bundle file opened for use: its signatures checked against a trust policy first (or
//! deliberately skipped), its members checked next, in the foreground or on a thread of its
//! own while the caller starts reading.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::parallel::default_threads;
use crate::archive::source::FileSource;
use crate::open::{Bundle, FoundSignature};
use crate::trust::{Signers, TrustPolicy};
use crate::verify::{check_bundle, Depth};
use crate::{BundleError, NoProgress, Progress};

/// A bundle whose signatures passed the trust policy (or were skipped on request); its
/// members are not checked yet.
pub struct SignedBundle {
    bundle: Bundle<FileSource>,
    /// The signature members, which the member check expects exactly (`None`: not checked).
    signatures: Option<Vec<FoundSignature>>,
    /// Who signed, when the signatures were checked.
    signers: Option<Signers>,
    path: PathBuf,
}

/// The verdict of a member check running on its own thread.
pub struct MemberCheck(tokio::sync::oneshot::Receiver<Result<(), BundleError>>);

impl MemberCheck {
    /// Waits for the check to finish.
    pub async fn verdict(self) -> Result<(), BundleError> {
        self.0.await.unwrap_or_else(|_| {
            Err(BundleError::Layout(
                "the member check ended without a verdict".into(),
            ))
        })
    }
}

impl SignedBundle {
    /// Opens the bundle at `path` and checks its signatures against `policy`; `None` skips
    /// the signatures (the caller says so loudly), and the member check then accepts any
    /// signature members.
    pub fn open(path: &Path, policy: Option<&TrustPolicy>) -> Result<SignedBundle, BundleError> {
        let failed = |source: BundleError| BundleError::Verification {
            path: path.display().to_string(),
            source: Box::new(source),
        };
        let bundle = Bundle::open_path(path)?;
        let (signatures, signers) = match policy {
            None => (None, None),
            Some(policy) => {
                let signatures: Vec<FoundSignature> = bundle
                    .signatures()
                    .map_err(|problem| failed(BundleError::Layout(problem.to_string())))?
                    .iter()
                    .map(|(_, signature)| signature.clone())
                    .collect();
                let signers = policy
                    .check(bundle.toc_bytes(), &signatures)
                    .map_err(|e| failed(e.into()))?;
                (Some(signatures), Some(signers))
            }
        };
        Ok(SignedBundle {
            bundle,
            signatures,
            signers,
            path: path.to_path_buf(),
        })
    }

    /// The open bundle (members not yet checked).
    pub fn bundle(&self) -> &Bundle<FileSource> {
        &self.bundle
    }

    /// Who signed, when the signatures were checked.
    pub fn signers(&self) -> Option<&Signers> {
        self.signers.as_ref()
    }

    /// The bundle file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks every member against bundle.json (by stored bytes where the bundle pins them).
    pub fn check_members(&self, progress: &dyn Progress) -> Result<(), BundleError> {
        check(
            &self.bundle,
            self.signatures.as_deref(),
            &self.path,
            progress,
        )
    }

    /// Checks every member, then hands the bundle over for use.
    pub fn into_verified(self, progress: &dyn Progress) -> Result<Bundle<FileSource>, BundleError> {
        self.check_members(progress)?;
        Ok(self.bundle)
    }

    /// Shares the bundle and runs the member check on its own thread meanwhile: whatever the
    /// caller does with the bundle before the verdict must be undoable or harmless.
    pub fn check_in_background(self) -> (Arc<Bundle<FileSource>>, MemberCheck) {
        let bundle = Arc::new(self.bundle);
        let checked = Arc::clone(&bundle);
        let (verdict, receiver) = tokio::sync::oneshot::channel();
        let (signatures, path) = (self.signatures, self.path);
        std::thread::spawn(move || {
            let result = check(&checked, signatures.as_deref(), &path, &NoProgress);
            let _ = verdict.send(result);
        });
        (bundle, MemberCheck(receiver))
    }
}

/// Checks every member of `bundle` against bundle.json; the error names the bundle file.
fn check(
    bundle: &Bundle<FileSource>,
    signatures: Option<&[FoundSignature]>,
    path: &Path,
    progress: &dyn Progress,
) -> Result<(), BundleError> {
    check_bundle(
        bundle,
        signatures,
        default_threads(),
        Depth::Stored,
        progress,
    )
    .map(|_| ())
    .map_err(|source| BundleError::Verification {
        path: path.display().to_string(),
        source: Box::new(source),
    })
}
