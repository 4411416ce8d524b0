# Sourced by the load and serve benchmarks (not run), after scripts/registry.sh:
#   build_bench_bundle   generates IMAGES images of about SIZE_MIB distinct MiB
#                        (scripts/gen-bench-images.py), pushes them to a local registry, and
#                        builds the signed bundle $WORK/b.tar.zst with key $WORK/k.pub (using
#                        the bundle binary $BIN); the cache and the layout are removed after.
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
