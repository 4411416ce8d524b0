# Sourced by the benchmarks (not run), after `set -euo pipefail`:
#   bench_start NAME TOOL...  goes to the repository root, checks the TOOLs (and GNU time),
#                        builds the release binaries ($BIN: bundle, $INSTALLER: installer),
#                        and makes the work dir $WORK; at exit every registry started with
#                        start_registry (scripts/registry.sh) and every pid in BENCH_PIDS is
#                        stopped and $WORK removed.
#   build_bench_bundle   generates IMAGES images of about SIZE_MIB distinct MiB
#                        (scripts/gen-bench-images.py), pushes them to a local registry
#                        ($SOURCE), and builds the signed bundle $WORK/b.tar.zst with key
#                        $WORK/k.pub; the cache and the layout are removed after.
#   measure NAME CMD...  runs CMD under GNU time after a `sync` (so no run writes back the
#                        previous one's dirty pages), prints NAME, seconds and peak RSS, and
#                        sets $SECS and $RSS (KiB).
#   median N...          the median of the numbers (the lower middle one for an even count).
#   keep_peak VAR        raises the variable named VAR to the last measure's RSS if lower.
#   alternate_runs A B   calls `alternate RUN A B` for RUN = 1 .. $RUNS.
#   alternate RUN A B    calls A RUN then B RUN when RUN is odd, B first when it is even:
#                        writing output takes fresh pages, and on a virtual machine that hands
#                        idle memory back to its host a page touched for the first time costs
#                        far more than one just freed, so neither side may always go second.
BENCH_PIDS=()
bench_start() {
  local name=$1 tool
  shift
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: scripts/setup.sh installs it" >&2; exit 1; }
  done
  command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
  cargo build --release -q --workspace
  BIN=$PWD/target/release/bundle
  INSTALLER=$PWD/target/release/installer
  WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-$name.XXXXXX")
  . scripts/registry.sh
  trap bench_cleanup EXIT
}
bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  stop_registries
  rm -rf "$WORK"
}
build_bench_bundle() {
  local source i
  start_registry source; source=$REGISTRY
  echo "generating and pushing $IMAGES images of about $SIZE_MIB MiB, building the bundle ..."
  python3 scripts/gen-bench-images.py "$WORK/layout" "$SIZE_MIB" "$IMAGES"
  printf 'platforms = ["linux/amd64"]\n\n[registries."%s"]\ninsecure = true\n' "$source" > "$WORK/images.toml"
  for i in $(seq -f '%02g' 0 $((IMAGES - 1))); do
    env HOME="$WORK/home" skopeo --insecure-policy copy -q --preserve-digests --dest-tls-verify=false \
      "oci:$WORK/layout:img-$i" "docker://$source/bench/img-$i:v1"
    printf '\n[[images]]\nref = "%s/bench/img-%s:v1"\n' "$source" "$i" >> "$WORK/images.toml"
  done
  rm -rf "$WORK/layout"
  export BUNDLE_KEY_PASSPHRASE=bench
  "$BIN" -q keygen -o "$WORK/k"
  "$BIN" -q lock --images "$WORK/images.toml" --lock "$WORK/manifests.lock"
  "$BIN" -q build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked \
    --cache "$WORK/cache" -o "$WORK/b.tar.zst" --sign-key "$WORK/k.key"
  rm -rf "$WORK/cache"
  ls -l "$WORK/b.tar.zst"
  SOURCE=$source
}
measure() {
  local log="$WORK/time.log"
  sync
  /usr/bin/time -f '%e %M' -o "$log" "${@:2}"
  read -r SECS RSS < "$log"
  printf '  %-44s %7.2f s  %8d KiB peak RSS\n' "$1" "$SECS" "$RSS"
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
keep_peak() { if [ "$RSS" -gt "${!1}" ]; then printf -v "$1" '%s' "$RSS"; fi; }
alternate() {
  if [ $(( $1 % 2 )) = 1 ]; then "$2" "$1"; "$3" "$1"; else "$3" "$1"; "$2" "$1"; fi
}
alternate_runs() {
  local run
  for run in $(seq "$RUNS"); do alternate "$run" "$1" "$2"; done
}
