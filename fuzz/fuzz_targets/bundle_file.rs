//! Any bytes as a bundle file: opening, summarising, checking and verifying must fail cleanly,
//! never panic, and never allocate without bound.
#![no_main]

use bundle_file::inspect::summarize;
use bundle_file::verify::{check_bundle, check_members, verify, Depth};
use bundle_file::{Bundle, NoProgress, TrustPolicy};
use bundle_file::sign::{KeyId, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::open(data.to_vec()) else {
        return;
    };
    let _ = summarize(&bundle);
    let _ = check_members(&bundle, None, 1, &NoProgress, None);
    let _ = check_bundle(&bundle, None, 2, Depth::Stored, &NoProgress);
    let key = SecretKey::from_seed(KeyId([1; 8]), &[1; 32]);
    if let Ok(policy) = TrustPolicy::new(vec![key.public_key()], 1) {
        let _ = verify(&bundle, &policy, 2, Depth::Stored, &NoProgress);
    }
});
