#!/usr/bin/env bash
# Benchmark of `installer load` against the standard tools, in one run: the same bundle of
# IMAGES (default 20) images, about SIZE_MIB (default 1024) distinct MiB, loaded into an empty
# local docker-registry
#   ours:     installer load BUNDLE --registry A              (straight from the compressed file)
#   standard: zstd -d < BUNDLE | tar x  &&  skopeo copy --all oci:DIR:REF docker://B/... per image
# then `installer load` again on the complete registry (nothing may be re-sent).
# Prints times, ratio, our peak memory and temporary disk use. Targets: at least 2x faster end
# to end, zero bytes re-sent on the second run, peak memory < 128 MiB, no temporary disk use
# beyond a few MiB.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
# LOAD_ARGS: extra options for the first `installer load` (e.g. "--jobs 8"), for experiments.
IMAGES=${IMAGES:-20}
. "$(dirname "$0")/bench-common.sh"
bench_start load docker-registry skopeo zstd python3
build_bench_bundle
start_registry ours; OURS=$REGISTRY
start_registry theirs; THEIRS=$REGISTRY

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
python3 - "$REF_SECS" "$OUR_SECS" "$OUR_RSS" "$TMP_USE" "$EXTRACTED" "$WORK/second.json" <<'PY'
import json, sys
ref, ours, rss, tmp_kib, extracted_kib = map(float, sys.argv[1:6])
second = json.load(open(sys.argv[6]))
ratio = ref / ours
resent = second.get("bytes_pushed", -1)
def verdict(ok):
    return "OK" if ok else "MISSED"
print(f"load speed vs extract + skopeo copy:   {ratio:6.2f}x  (target >= 2.00x) {verdict(ratio >= 2)}")
print(f"bytes re-sent on the second run:      {resent:8d}  (target 0) {verdict(resent == 0)}")
print(f"peak memory of installer load:        {rss / 1024:6.1f} MiB (target < 128 MiB) {verdict(rss < 128 * 1024)}")
print(f"temporary disk use of installer load: {tmp_kib / 1024:6.1f} MiB (the standard pipeline extracted {extracted_kib / 1024:.0f} MiB)")
PY
