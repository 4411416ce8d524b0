#!/usr/bin/env bash
# Benchmark of `installer serve` against Debian's docker-registry serving the same images, in
# one run: the bench bundle (IMAGES, default 20, images of about SIZE_MIB, default 1024,
# distinct MiB) is served straight from the file by `installer serve`, and loaded into a
# docker-registry by `installer load`. Then CLIENTS (default 16) clients at once, and again
# four times as many, each pull every layer of one image (client i takes image i mod IMAGES)
# with curl from each server in turn.
# Prints times, ratios and both servers' peak memory. Target: serve's peak memory under
# 256 MiB whatever the number of clients (it sends at most --max-streams blobs at once). The
# speed ratio is shown for comparison (docker-registry sends files with sendfile; serve
# decompresses frames).
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
IMAGES=${IMAGES:-20}
CLIENTS=${CLIENTS:-16}
. "$(dirname "$0")/bench-common.sh"
bench_start serve docker-registry skopeo curl python3
build_bench_bundle
start_registry standard; STANDARD=$REGISTRY; STANDARD_PID=${REGISTRY_PIDS[-1]}
"$INSTALLER" -q load "$WORK/b.tar.zst" --registry "$STANDARD" --insecure-registry --key "$WORK/k.pub"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$INSTALLER" -q serve "$WORK/b.tar.zst" --key "$WORK/k.pub" --listen "127.0.0.1:$PORT" &
SERVE_PID=$!; BENCH_PIDS+=("$SERVE_PID")
OURS=127.0.0.1:$PORT
for _ in $(seq 600); do curl -sf "http://$OURS/v2/" >/dev/null && break; sleep 0.1; done

# One line per image: the curl arguments that pull its layers (the same digests on both).
for i in $(seq -f '%02g' 0 $((IMAGES - 1))); do
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$OURS/v2/bench/img-$i/manifests/v1" |
    python3 -c 'import json, sys
i = sys.argv[1]
print(" ".join("/v2/bench/img-%s/blobs/%s" % (i, l["digest"]) for l in json.load(sys.stdin)["layers"]))' "$i"
done > "$WORK/pulls"
pull_all() { # host clients: every client pulls its image's layers; fails if any pull fails
  local host=$1 clients=$2
  for c in $(seq 0 $((clients - 1))); do
    sed -n "$((c % IMAGES + 1))p" "$WORK/pulls"
  done | xargs -P "$clients" -L 1 sh -c 'for path; do curl -sf -o /dev/null "http://'"$host"'$path" || exit 255; done' pull
}
peak() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
timed() { # name host clients -> $SECS
  local start end
  start=$(date +%s.%N)
  pull_all "$2" "$3"
  end=$(date +%s.%N)
  SECS=$(python3 -c "print(round($end - $start, 2))")
  printf '  %-40s %7.2f s\n' "$1" "$SECS"
}

RESULTS=()
for clients in "$CLIENTS" $((CLIENTS * 4)); do
  echo "$clients clients at once, each pulling one image's layers:"
  sync
  timed "docker-registry" "$STANDARD" "$clients"; REF=$SECS
  timed "installer serve (straight from the bundle)" "$OURS" "$clients"; OWN=$SECS
  RESULTS+=("$clients $REF $OWN $(peak "$SERVE_PID") $(peak "$STANDARD_PID")")
done
python3 - "${RESULTS[@]}" <<'PY'
import sys
def verdict(ok):
    return "OK" if ok else "MISSED"
for line in sys.argv[1:]:
    clients, ref, ours, serve_kib, registry_kib = line.split()
    ratio = float(ref) / float(ours)
    serve_mib = int(serve_kib) / 1024
    print(f"{clients:>4} clients: serve peak memory so far {serve_mib:6.1f} MiB (target < 256 MiB)"
          f" {verdict(serve_mib < 256)}; docker-registry {int(registry_kib) / 1024:.1f} MiB;"
          f" serve's speed vs docker-registry {ratio:.2f}x")
PY
