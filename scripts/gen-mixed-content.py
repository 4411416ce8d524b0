#!/usr/bin/env python3
"""Writes a directory of mixed bundle-like content for benchmarks: compressible text (logs,
manifests, charts) and incompressible gzip blobs (image layers), about SIZE_MIB in total.

usage: gen-mixed-content.py DIR SIZE_MIB
"""
import gzip
import os
import random
import sys

WORDS = (
    "synapse worker event room sync federation media upload client reader persister "
    "stream typing receipt presence device account data push rule token access server "
    "matrix element haproxy postgres valkey sentinel backup object storage bucket chart "
    "image layer manifest index digest sha256 platform amd64 arm64 config annotation"
).split()


def text_block(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        n = rng.randrange(6, 18)
        line = "%d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s\n" % (
            2026, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24),
            rng.randrange(60), rng.randrange(60), rng.randrange(1000),
            rng.choice(["INFO", "DEBUG", "WARN"]),
            " ".join(rng.choices(WORDS, k=n)) + " id=%08x" % rng.getrandbits(32),
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def main() -> None:
    root, size_mib = sys.argv[1], int(sys.argv[2])
    rng = random.Random(42)
    text_mib = size_mib // 2
    blob_mib = size_mib - text_mib
    os.makedirs(os.path.join(root, "blobs/sha256"), exist_ok=True)
    os.makedirs(os.path.join(root, "docs"), exist_ok=True)
    # Compressible: text files of 1 to 16 MiB.
    written, i = 0, 0
    while written < text_mib:
        mib = min(rng.choice([1, 2, 4, 8, 16]), text_mib - written)
        with open(os.path.join(root, "docs", "log-%04d.txt" % i), "wb") as f:
            for _ in range(mib):
                f.write(text_block(rng, 1 << 20))
        written += mib
        i += 1
    # Many small JSON-ish files, as OCI manifests and configs are.
    for j in range(2000):
        with open(os.path.join(root, "blobs/sha256", "m%05d" % j), "wb") as f:
            f.write(text_block(rng, rng.randrange(500, 6000)))
    # Incompressible: gzip-compressed random data, 16 to 128 MiB per blob.
    written, i = 0, 0
    while written < blob_mib:
        mib = min(rng.choice([16, 32, 64, 128]), blob_mib - written)
        path = os.path.join(root, "blobs/sha256", "layer%04d" % i)
        with gzip.open(path, "wb", compresslevel=1) as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        written += mib
        i += 1


if __name__ == "__main__":
    main()
