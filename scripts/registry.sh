# Sourced by the demo and the benchmarks (not run): local registries for one script run.
#   start_registry NAME   Debian's docker-registry on a free loopback port, storage in
#                         $WORK/NAME; sets REGISTRY to 127.0.0.1:PORT. Call it directly, not in
#                         $(...): the pid must reach REGISTRY_PIDS in this shell.
#                         With REGISTRY_ACCESS_LOG=1 it logs every request to $WORK/NAME.log.
#   stop_registries       stops every registry started so far (for the EXIT trap).
REGISTRY_PIDS=()
start_registry() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local quiet=true
  [ "${REGISTRY_ACCESS_LOG:-0}" = 1 ] && quiet=false
  printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: %s\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$quiet" "$WORK/$1" "$port" > "$WORK/$1.yml"
  docker-registry serve "$WORK/$1.yml" > "$WORK/$1.log" 2>&1 &
  REGISTRY_PIDS+=($!)
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  REGISTRY="127.0.0.1:$port"
}
stop_registries() {
  for pid in "${REGISTRY_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
