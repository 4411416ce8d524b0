//! Countersigning: adding a signature to an existing bundle without rebuilding it. The content
//! frames are copied as they are, the new signature member is appended after the existing
//! ones, and a new end marker and seek table close the file, which replaces the old one
//! atomically.

use crate::archive::source::FileSource;
use crate::archive::writer::Member;
use crate::archive::{Writer, WriterOptions};
use crate::open::Bundle;
use crate::pack::{sign_toc, write_atomically, write_sidecar};
use crate::sign::{KeyId, SecretKey, Signature};
use crate::toc::{countersignature_path, FIRST_SIGNATURE_PATH};
use crate::verify::{check_bundle, Depth};
use crate::{BundleError, Progress};
use oci::time::parse_rfc3339;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Adds `key`'s signature to the bundle at `path` after checking that every member matches
/// `bundle.json`, and rewrites `<path>.minisig` with all signatures. Returns the member name.
pub fn add_signature(
    path: &Path,
    key: &SecretKey,
    threads: usize,
    progress: &dyn Progress,
) -> Result<String, BundleError> {
    let bundle = Bundle::open_path(path)?;
    let existing = bundle
        .signatures()
        .map_err(|problem| BundleError::Layout(problem.to_string()))?
        .to_vec();
    let mut texts = Vec::new();
    for (_, found) in &existing {
        let text = String::from_utf8_lossy(&found.bytes).into_owned();
        let sig = Signature::parse(&text).map_err(|source| {
            BundleError::Signature(crate::SignatureError::Malformed {
                member: found.path.clone(),
                source,
            })
        })?;
        if sig.key_id() == key.id() {
            return Err(already_signed(path, key.id()));
        }
        texts.push(text);
    }
    let sigs: Vec<_> = existing.iter().map(|(_, s)| s.clone()).collect();
    check_bundle(&bundle, Some(&sigs), threads, Depth::Stored, progress)?;

    let member = if existing.is_empty() {
        FIRST_SIGNATURE_PATH.to_string()
    } else {
        countersignature_path(&key.id().to_string())
    };
    let text = sign_toc(key, bundle.toc(), bundle.toc_bytes());
    texts.push(text.clone());
    let mut table = bundle.archive().table().clone();
    let keep = table.frames().len() - 1; // everything but the end-of-archive frame
    let keep_bytes = table.frames()[keep].offset;
    table.truncate(keep);
    let options = WriterOptions {
        mtime: parse_rfc3339(&bundle.toc().created).unwrap_or(0),
        threads: 1,
        ..WriterOptions::default()
    };
    drop(bundle);
    write_atomically(path, |mut out| {
        let mut src = std::fs::File::open(path).map_err(|e| BundleError::io(path, e))?;
        let copied = std::io::copy(&mut (&mut src).take(keep_bytes), &mut out)
            .map_err(|e| BundleError::io(path, e))?;
        if copied != keep_bytes {
            return Err(BundleError::Layout(
                "the bundle shrank while being signed".into(),
            ));
        }
        out.seek(SeekFrom::End(0))
            .map_err(|e| BundleError::io(path, e))?;
        let mut writer = Writer::resume(out, table, options);
        writer.write_stored_members(&[Member::bytes(member.clone(), text.into_bytes())])?;
        Ok(writer.finish()?.0)
    })?;
    write_sidecar(path, Some(&texts.concat()))?;
    // The file on disk must read back as a bundle with the new signature in place.
    let reopened = Bundle::<FileSource>::open_path(path)?;
    match reopened.signatures() {
        Ok(found) if found.iter().any(|(_, s)| s.path == member) => Ok(member),
        _ => Err(BundleError::Layout(
            "the signed bundle does not read back".into(),
        )),
    }
}

fn already_signed(path: &Path, id: KeyId) -> BundleError {
    BundleError::Input {
        path: path.display().to_string(),
        reason: format!("already signed by key {id}"),
    }
}
