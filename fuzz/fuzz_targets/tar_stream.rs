//! Any bytes as the decompressed tar stream of a well-framed bundle file, so the fuzzer spends
//! its time in the tar, manifest, layout and signature logic instead of failing zstd checks.
//! The first byte picks where frames are cut.
#![no_main]

use bundle_file::archive::frames::FrameCompressor;
use bundle_file::archive::SeekTable;
use bundle_file::verify::check_members;
use bundle_file::{Bundle, NoProgress, TrustPolicy};
use bundle_file::sign::{KeyId, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let frame_len = 512 * (usize::from(cut % 8) + 1);
    let Ok(mut compressor) = FrameCompressor::new(1) else {
        return;
    };
    let mut file = Vec::new();
    let mut table = SeekTable::default();
    for chunk in stream.chunks(frame_len) {
        let Ok(frame) = compressor.compress(chunk) else {
            return;
        };
        table.push(frame.len() as u32, chunk.len() as u32);
        file.extend(frame);
    }
    file.extend(table.encode());
    let Ok(bundle) = Bundle::open(file) else {
        return;
    };
    let _ = check_members(&bundle, None, 1, &NoProgress, None);
    let key = SecretKey::from_seed(KeyId([1; 8]), &[1; 32]);
    if let Ok(policy) = TrustPolicy::new(vec![key.public_key()], 1) {
        let _ = bundle_file::verify::verify(
            &bundle,
            &policy,
            1,
            bundle_file::verify::Depth::Stored,
            &NoProgress,
        );
    }
});
