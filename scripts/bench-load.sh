#!/usr/bin/env bash
# Benchmark of `installer load` against the standard tools, in one run: the same bundle of
# IMAGES (default 20) images, about SIZE_MIB (default 1024) distinct MiB, loaded into an empty
# local docker-registry
#   ours:     installer load BUNDLE --registry A              (straight from the compressed file)
#   standard: zstd -d < BUNDLE | tar x  &&  skopeo copy --all oci:DIR:REF docker://B/... per image
# then `installer load` again on the complete registry (nothing may be re-sent).
# Prints times, ratio, our peak memory, temporary disk use, and the registry requests of each
# run by kind (both registries log every request). Targets: at least 2x faster end
# to end, zero bytes re-sent on the second run, peak memory < 128 MiB, no temporary disk use
# beyond a few MiB.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
# LOAD_ARGS: extra options for the first `installer load` (e.g. "--jobs 8"), for experiments.
IMAGES=${IMAGES:-20}
. "$(dirname "$0")/bench-common.sh"
bench_start load docker-registry skopeo zstd python3
build_bench_bundle
# Both registries log every request, so the run can count what each client asked for.
REGISTRY_ACCESS_LOG=1 start_registry ours; OURS=$REGISTRY
REGISTRY_ACCESS_LOG=1 start_registry theirs; THEIRS=$REGISTRY

measure() { # name, command... -> seconds and peak RSS (KiB) in $SECS / $RSS
  local log="$WORK/time.log"
  sync
  /usr/bin/time -f '%e %M' -o "$log" "${@:2}"
  read -r SECS RSS < "$log"
  printf '  %-44s %7.2f s  %8d KiB peak RSS\n' "$1" "$SECS" "$RSS"
}

mkdir "$WORK/tmp"
echo "load into an empty registry:"
measure "installer load" env TMPDIR="$WORK/tmp" sh -c \
  "'$INSTALLER' --json load '$WORK/b.tar.zst' --registry '$OURS' --insecure-registry --key '$WORK/k.pub' ${LOAD_ARGS:-} > '$WORK/first.json'"
OUR_SECS=$SECS; OUR_RSS=$RSS
FIRST_LINES=$(wc -l < "$WORK/ours.log")
TMP_USE=$(du -sk "$WORK/tmp" | cut -f1)
STANDARD="mkdir -p '$WORK/x' && zstd -dc '$WORK/b.tar.zst' | tar -xf - -C '$WORK/x' && for i in \$(seq -f '%02g' 0 $((IMAGES - 1))); do \
  env HOME='$WORK/home' skopeo --insecure-policy copy -q --all --preserve-digests --dest-tls-verify=false \
  \"oci:$WORK/x:$SOURCE/bench/img-\$i:v1\" \"docker://$THEIRS/bench/img-\$i:v1\" || exit 1; done"
measure "zstd -d | tar x && skopeo copy per image" sh -c "$STANDARD"
REF_SECS=$SECS
EXTRACTED=$(du -sk "$WORK/x" | cut -f1)
echo "load again into the complete registry:"
measure "installer load (second run)" sh -c \
  "'$INSTALLER' --json load '$WORK/b.tar.zst' --registry '$OURS' --insecure-registry --key '$WORK/k.pub' > '$WORK/second.json'"
python3 - "$REF_SECS" "$OUR_SECS" "$OUR_RSS" "$TMP_USE" "$EXTRACTED" "$WORK/second.json" \
  "$WORK/ours.log" "$FIRST_LINES" "$WORK/theirs.log" <<'PY'
import collections, json, re, sys
ref, ours, rss, tmp_kib, extracted_kib = map(float, sys.argv[1:6])
second = json.load(open(sys.argv[6]))

def requests(lines):
    """Requests of a registry's access log lines by kind."""
    kinds = collections.Counter()
    for line in lines:
        m = re.search(r'"(GET|HEAD|POST|PATCH|PUT|DELETE) (\S+) HTTP', line)
        if not m:
            continue
        method, path = m.groups()
        if "/blobs/uploads/" in path:
            kind = "blob mount" if "mount=" in path else "blob upload"
        elif "/blobs/" in path:
            kind = "blob"
        elif "/manifests/" in path:
            kind = "manifest"
        else:
            kind = "other"
        kinds[f"{method} {kind}"] += 1
    return kinds

ours_log = open(sys.argv[7], errors="replace").readlines()
split = int(sys.argv[8])
first, again = requests(ours_log[:split]), requests(ours_log[split:])
theirs = requests(open(sys.argv[9], errors="replace"))
print("registry requests:         load   again  skopeo")
for kind in sorted(set(first) | set(again) | set(theirs)):
    print(f"  {kind:<22} {first[kind]:6d} {again[kind]:6d} {theirs[kind]:6d}")
total = lambda c: sum(c.values())
print(f"  {'total':<22} {total(first):6d} {total(again):6d} {total(theirs):6d}")
ratio = ref / ours
resent = second.get("bytes_pushed", -1)
def verdict(ok):
    return "OK" if ok else "MISSED"
print(f"load speed vs extract + skopeo copy:   {ratio:6.2f}x  (target >= 2.00x) {verdict(ratio >= 2)}")
print(f"bytes re-sent on the second run:      {resent:8d}  (target 0) {verdict(resent == 0)}")
print(f"peak memory of installer load:        {rss / 1024:6.1f} MiB (target < 128 MiB) {verdict(rss < 128 * 1024)}")
print(f"temporary disk use of installer load: {tmp_kib / 1024:6.1f} MiB (the standard pipeline extracted {extracted_kib / 1024:.0f} MiB)")
PY
