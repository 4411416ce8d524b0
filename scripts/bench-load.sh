#!/usr/bin/env bash
# Benchmark of `installer load` against the standard tools, in one run: the same bundle of
# IMAGES (default 20) images, about SIZE_MIB (default 1024) distinct MiB, loaded into an empty
# local docker-registry
#   ours:     installer load BUNDLE --registry A              (straight from the compressed file)
#   standard: zstd -d < BUNDLE | tar x  &&  skopeo copy --all oci:DIR:REF docker://B/... per image
# then `installer load` again on the complete registry (nothing may be re-sent).
# Prints times, ratio, our peak memory, temporary disk use, and the registry requests of each
# run by kind (both registries log every request). Medians of RUNS (default 3) alternating
# runs. Targets: at least 3x faster end to end, zero bytes re-sent on the second run, peak
# memory < 128 MiB, no temporary disk use beyond a few MiB.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
# LOAD_ARGS: extra options for the first `installer load` (e.g. "--jobs 8"), for experiments.
IMAGES=${IMAGES:-20}
. "$(dirname "$0")/bench-common.sh"
bench_start load docker-registry skopeo zstd python3
build_bench_bundle
RUNS=${RUNS:-3}


mkdir "$WORK/tmp"
load_ours() { # run
  measure "installer load               (run $1)" env TMPDIR="$WORK/tmp" sh -c \
    "'$INSTALLER' --json load '$WORK/b.tar.zst' --registry '$OURS' --insecure-registry --key '$WORK/k.pub' ${LOAD_ARGS:-} > '$WORK/first.json'"
  OUR_RUNS+=("$SECS")
  keep_peak OUR_RSS
  TMP_USE=$(du -sk "$WORK/tmp" | cut -f1)
}
load_theirs() { # run
  local x="$WORK/x$1"
  measure "zstd -d | tar x && skopeo copy (run $1)" sh -c "mkdir -p '$x' && zstd -dc '$WORK/b.tar.zst' | tar -xf - -C '$x' && \
    for i in \$(seq -f '%02g' 0 $((IMAGES - 1))); do \
    env HOME='$WORK/home' skopeo --insecure-policy copy -q --all --preserve-digests --dest-tls-verify=false \
    \"oci:$x:$SOURCE/bench/img-\$i:v1\" \"docker://$THEIRS/bench/img-\$i:v1\" || exit 1; done"
  REF_RUNS+=("$SECS")
  EXTRACTED=$(du -sk "$x" | cut -f1)
  rm -rf "$x"
}
# Each run loads into two new, empty registries, the order alternating (see `alternate`). The
# first run's registries log every request.
echo "load into an empty registry ($RUNS alternating runs each, the median counts):"
OUR_RUNS=(); REF_RUNS=(); OUR_RSS=0
for run in $(seq "$RUNS"); do
  log=0
  if [ "$run" = 1 ]; then log=1; fi
  REGISTRY_ACCESS_LOG=$log start_registry "ours$run"; OURS=$REGISTRY
  REGISTRY_ACCESS_LOG=$log start_registry "theirs$run"; THEIRS=$REGISTRY
  alternate "$run" load_ours load_theirs
  if [ "$run" = 1 ]; then FIRST_OURS=$OURS; FIRST_LINES=$(wc -l < "$WORK/ours1.log"); fi
done
OUR_SECS=$(median "${OUR_RUNS[@]}"); REF_SECS=$(median "${REF_RUNS[@]}")
echo "  median: installer load $OUR_SECS s, extract + skopeo $REF_SECS s"
echo "load again into the complete registry of run 1:"
measure "installer load (second run)" sh -c \
  "'$INSTALLER' --json load '$WORK/b.tar.zst' --registry '$FIRST_OURS' --insecure-registry --key '$WORK/k.pub' > '$WORK/second.json'"
python3 - "$REF_SECS" "$OUR_SECS" "$OUR_RSS" "$TMP_USE" "$EXTRACTED" "$WORK/second.json" \
  "$WORK/ours1.log" "$FIRST_LINES" "$WORK/theirs1.log" <<'PY'
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
print(f"load speed vs extract + skopeo copy:   {ratio:6.2f}x  (target >= 3.00x) {verdict(ratio >= 3)}")
print(f"bytes re-sent on the second run:      {resent:8d}  (target 0) {verdict(resent == 0)}")
print(f"peak memory of installer load:        {rss / 1024:6.1f} MiB (target < 128 MiB) {verdict(rss < 128 * 1024)}")
print(f"temporary disk use of installer load: {tmp_kib / 1024:6.1f} MiB (the standard pipeline extracted {extracted_kib / 1024:.0f} MiB)")
PY
