#!/usr/bin/env bash
# Fuzzes the archive reader: seeds two corpora with small real bundles, then runs each target
# for SECONDS (default 180) with cargo-fuzz (nightly toolchain).
#   bundle_file: the bytes are a bundle file;
#   tar_stream:  the bytes are the decompressed tar stream, framed into a valid file first.
# Leak detection is off: LeakSanitizer reports the 48-byte thread-local channel context of the
# standard library's worker threads, a known false positive with threads under libFuzzer.
set -euo pipefail
SECONDS_PER_TARGET=${1:-180}
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
cargo build -q
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p fuzz/corpus/bundle_file fuzz/corpus/tar_stream "$seeds/stage/docs" "$seeds/stage/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$seeds/stage/oci-layout"
echo "hello" > "$seeds/stage/docs/a.txt"
head -c 3000 /dev/urandom > "$seeds/stage/blobs/sha256/b"
mkdir -p "$seeds/stage/docs/$(printf 'long%.0s' {1..30})"
echo deep > "$seeds/stage/docs/$(printf 'long%.0s' {1..30})/c.txt"
export BUNDLE_KEY_PASSPHRASE=fuzz
target/debug/bundle -q keygen -o "$seeds/k" --force
target/debug/bundle -q pack "$seeds/stage" -o "$seeds/unsigned.tar.zst" --timestamp 1
target/debug/bundle -q pack "$seeds/stage" -o "$seeds/signed.tar.zst" --timestamp 1 --sign-key "$seeds/k.key"
for b in unsigned signed; do
  cp "$seeds/$b.tar.zst" "fuzz/corpus/bundle_file/seed-$b"
  { printf '\003'; zstd -dc "$seeds/$b.tar.zst"; } > "fuzz/corpus/tar_stream/seed-$b"
done
for target in bundle_file tar_stream; do
  (cd fuzz && cargo +nightly fuzz run -O "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1024 -max_len=262144 -detect_leaks=0)
done
