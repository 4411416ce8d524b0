#!/usr/bin/env python3
"""Writes sample OCI image layouts for the demo, without network: for each image a directory
DIR/<name> holding an OCI layout whose tag "v1" is either a multi-arch index (linux/amd64 and
linux/arm64, sharing a base layer) or a single linux/amd64 manifest. Layers are gzip-compressed
tars of random files, so they look like real image layers. Prints one image name per line.

usage: gen-sample-images.py DIR
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), "sha256:" + hashlib.sha256(uncompressed).hexdigest()


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def image(self, arch, layers):
        descs, diff_ids = [], []
        for data, diff_id in layers:
            descs.append(self.blob(data, "application/vnd.oci.image.layer.v1.tar+gzip"))
            diff_ids.append(diff_id)
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": self.blob(config, "application/vnd.oci.image.config.v1+json"),
                    "layers": descs}
        desc = self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        desc["platform"] = {"architecture": arch, "os": "linux"}
        return desc

    def tag(self, desc):
        desc = dict(desc, annotations={"org.opencontainers.image.ref.name": "v1"})
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [desc]}, f)


def main():
    out = sys.argv[1]
    base = layer([("etc/os-release", b"NAME=sample\n"), ("bin/blob", os.urandom(3 << 20))])
    for name, arches in [("demo/homeserver", ["amd64", "arm64"]),
                         ("demo/web", ["amd64", "arm64"]),
                         ("demo/tools", ["amd64"])]:
        layout = Layout(os.path.join(out, name.replace("/", "_")))
        manifests = [layout.image(a, [base, layer([("app/" + a, os.urandom(2 << 20))])])
                     for a in arches]
        if len(manifests) == 1:
            desc = dict(manifests[0])
            desc.pop("platform")
            layout.tag(desc)
        else:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
            layout.tag(layout.blob(json.dumps(index).encode(), OCI_INDEX))
        print(name)


if __name__ == "__main__":
    main()
