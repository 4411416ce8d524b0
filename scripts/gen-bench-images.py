#!/usr/bin/env python3
"""Writes one OCI image layout DIR with COUNT single-platform images (tags img-00, img-01, ...)
of about SIZE_MIB distinct MiB in total, for the benchmarks: gzip layers of random data, a base
layer all images share, two runtime layers half the images share each, and two layers of each
image's own.

usage: gen-bench-images.py DIR SIZE_MIB COUNT
"""
import hashlib, io, json, os, sys, tarfile, zlib

out, size_mib, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MIB = 1 << 20
os.makedirs(f"{out}/blobs/sha256")


def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{digest}", "wb") as f:
        f.write(data)
    return "sha256:" + digest


def layer(name, size):
    """A gzip layer holding one file of `size` random bytes: (digest, size, diff_id)."""
    header = tarfile.TarInfo(name)
    header.size, header.mtime, header.mode = size, 1_700_000_000, 0o644
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as t:
        t.addfile(header, io.BytesIO(os.urandom(size)))
    raw = tar.getvalue()
    # Random data does not shrink: stored deflate blocks are what gzip -1 writes for it too,
    # without the time.
    gz = zlib.compressobj(0, zlib.DEFLATED, 31)
    data = gz.compress(raw) + gz.flush()
    return put(data), len(data), "sha256:" + hashlib.sha256(raw).hexdigest()


# 10 % in a base layer all images share, 7 % in each of two runtime layers half the images
# share, the rest in two layers of each image's own (two thirds and one third).
base = layer("base/os.bin", size_mib * MIB * 10 // 100)
runtimes = [layer(f"runtime/{i}.bin", size_mib * MIB * 7 // 100) for i in range(2)]
own = (size_mib * MIB - base[1] - 2 * runtimes[0][1]) // count
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
for i in range(count):
    layers = [base, runtimes[i * 2 // count], layer(f"app/{i}/deps.bin", own * 2 // 3),
              layer(f"app/{i}/app.bin", own - own * 2 // 3)]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": [f"/app/{i}"]},
        "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": l[0], "size": l[1]} for l in layers],
    }).encode()
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
        "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"},
        "annotations": {"org.opencontainers.image.ref.name": f"img-{i:02d}"},
    })
with open(f"{out}/index.json", "w") as f:
    json.dump(index, f)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
distinct = sum(os.path.getsize(f"{out}/blobs/sha256/{b}") for b in os.listdir(f"{out}/blobs/sha256"))
print(f"  {count} images, {distinct / MIB:.0f} MiB of distinct blobs, "
      f"{base[1] / MIB + runtimes[0][1] / MIB + own / MIB:.0f} MiB per image")
