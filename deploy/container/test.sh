#!/usr/bin/env bash
# `make container-test`: build both images with podman (or docker), run them, send routed
# requests with curl, check answers and headers, then remove everything this script made (the
# base image is kept: it is a cache). Talks to 127.0.0.1 only. Takes minutes; not in `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=localhost/routectl-container-test
run_id=routectl-ct-$$
work=$(mktemp -d /tmp/routectl-ct.XXXXXX)
containers=()
images=()

if command -v podman >/dev/null; then
  # no container registry and no systemd here: Debian's podman with these settings works as root
  engine=(podman --storage-driver vfs --cgroup-manager cgroupfs --runtime runc)
  build_opts=(--isolation chroot --network host --format docker --pull=never)
  # limits this sandbox lets a container have (podman's defaults are above what it allows); no
  # systemd timer for the HEALTHCHECK (there is no systemd): the script runs it itself
  run_opts=(--network host --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096
            --health-interval disable)
  oneshot_opts=("${run_opts[@]}" --no-healthcheck)
  base=$(awk 'toupper($1) == "FROM" {print $2; exit}' Dockerfile)
  deploy/container/base-image.sh "$base" "${engine[@]}"
  # pip inside the build trusts what this machine trusts (a proxy's CA, if any)
  printf '[global]\ncert = /run/routectl-host-ca.crt\n' >"$work/pip.conf"
  build_opts+=(--volume /etc/ssl/certs/ca-certificates.crt:/run/routectl-host-ca.crt:ro
               --volume "$work/pip.conf:/etc/pip.conf:ro")
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then  # a CLI alone is not an engine
  engine=(docker)
  build_opts=(--network host)
  run_opts=(--network host)
  oneshot_opts=("${run_opts[@]}" --no-healthcheck)
else
  echo "container-test: neither podman nor a reachable docker daemon (apt-get install podman)" >&2
  exit 1
fi

cleanup() {
  for c in "${containers[@]}"; do "${engine[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
  for i in "${images[@]}"; do "${engine[@]}" rmi -f "$i" >/dev/null 2>&1 || true; done
  "${engine[@]}" image prune -f >/dev/null 2>&1 || true  # the build stage's dangling layers
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for target in runtime cli; do
  images+=("$tag:$target")
  started=$(date +%s)
  "${engine[@]}" build "${build_opts[@]}" --target "$target" -t "$tag:$target" . >"$work/build-$target.log" 2>&1 \
    || { tail -30 "$work/build-$target.log" >&2; fail "build of target $target"; }
  bytes=$("${engine[@]}" image inspect --format '{{.Size}}' "$tag:$target")
  ok "image $target built in $(( $(date +%s) - started )) s: $(( bytes / 1000000 )) MB ($bytes bytes)"
done
runtime_mb=$(( $("${engine[@]}" image inspect --format '{{.Size}}' "$tag:runtime") / 1000000 ))
[ "$runtime_mb" -le 150 ] && ok "runtime image within the 150 MB goal" || echo "note runtime image is over the 150 MB goal"

# ---- the runtime image holds what `routectl serve` imports and nothing of the compiler's
"${engine[@]}" run --rm "${oneshot_opts[@]}" --entrypoint python3 "$tag:runtime" -c '
import importlib.util, os, sys
absent = ("yaml", "jsonschema", "jinja2", "pydantic", "psycopg")
present = ("aiohttp", "orjson", "uvloop", "prometheus_client", "click")
bad = [m for m in absent if importlib.util.find_spec(m)] + [m for m in present if not importlib.util.find_spec(m)]
print("uid", os.getuid(), "python", sys.version.split()[0])
sys.exit(bool(bad) or os.getuid() == 0)
' >"$work/imports.txt" || fail "runtime image modules or user: $(cat "$work/imports.txt")"
ok "runtime image: no yaml/jsonschema/jinja2/pydantic/psycopg; aiohttp, orjson, uvloop, prometheus_client, click present; $(cat "$work/imports.txt")"
out=$("${engine[@]}" run --rm "${oneshot_opts[@]}" --entrypoint routectl "$tag:runtime" compile 2>&1) && fail "compile ran in the runtime image"
grep -q "pip install 'routectl\[cli\]'" <<<"$out" || fail "compile in the runtime image: $out"
ok "runtime image: 'routectl compile' says: $out"

# ---- the cli image checks this repository's generated/ (read-only mount)
"${engine[@]}" run --rm "${oneshot_opts[@]}" -v "$PWD:/work:ro" -w /work "$tag:cli" check >"$work/check.txt" 2>&1 \
  || fail "routectl check in the cli image: $(cat "$work/check.txt")"
ok "cli image: 'routectl check' on this repository exits 0"

# ---- the runtime image serves the baked-in table
port=$(free_port)
name=$run_id-baked
containers+=("$name")
# --network host: the container's 0.0.0.0 would be this machine's; tests stay on 127.0.0.1.
# podman's own complaints (no systemd for healthcheck timers here) go to podman.log
# --read-only: as under Kubernetes' readOnlyRootFilesystem
"${engine[@]}" run -d --name "$name" "${run_opts[@]}" --read-only -e ROUTECTL_HOST=127.0.0.1 -e ROUTECTL_PORT="$port" \
  "$tag:runtime" >/dev/null 2>>"$work/podman.log" || fail "run: $(cat "$work/podman.log")"
sha=$(python3 -c 'import json; print(json.load(open("generated/routing_table.json"))["sha256"])')
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/readyz" >"$work/readyz.json" || fail "/readyz: $("${engine[@]}" logs "$name" 2>&1 | tail -5)"
grep -q "\"table\":\"$sha\"" "$work/readyz.json" || fail "/readyz: $(cat "$work/readyz.json")"
ok "GET /readyz -> 200 $(cat "$work/readyz.json") (read-only root filesystem)"

curl -sS -D "$work/headers.txt" -o "$work/chat.json" "http://127.0.0.1:$port/v1/chat/completions" \
  -H 'Authorization: Bearer rk-demo-sam-solo' -H 'Content-Type: application/json' \
  -d '{"model": "echo/echo-1", "messages": [{"role": "user", "content": "hello from the container"}]}'
grep -q "^HTTP/1.1 200" "$work/headers.txt" || fail "chat: $(cat "$work/headers.txt" "$work/chat.json")"
grep -qi "^x-routectl-table: $sha" "$work/headers.txt" || fail "x-routectl-table: $(cat "$work/headers.txt")"
grep -qi "^x-request-id: " "$work/headers.txt" || fail "x-request-id missing"
grep -qi "^x-routectl-selected-model: echo/echo-1" "$work/headers.txt" || fail "x-routectl-selected-model"
grep -q '"content":"hello from the container"' "$work/chat.json" || fail "echo answer: $(cat "$work/chat.json")"
ok "POST /v1/chat/completions (echo/echo-1) -> 200, echoed; x-routectl-table, x-request-id, x-routectl-selected-model, x-routectl-connection: $(grep -i '^x-routectl-connection' "$work/headers.txt" | tr -d '\r' | cut -d' ' -f2)"

curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt" || fail "/metrics"
grep -q 'routectl_requests_total{model="echo/echo-1",route="/v1/chat/completions",status="200"} 1.0' "$work/metrics.txt" \
  || fail "/metrics: $(grep routectl_requests_total "$work/metrics.txt")"
ok "GET /metrics counts the request: $(grep 'routectl_requests_total{model="echo/echo-1"' "$work/metrics.txt")"

if [ "${engine[0]}" = podman ]; then
  "${engine[@]}" healthcheck run "$name" >/dev/null 2>>"$work/podman.log" || fail "HEALTHCHECK"
  ok "HEALTHCHECK (GET /healthz from inside the container) passes"
fi

# ---- a mounted table folder, updated the way kubelet updates a ConfigMap, with --watch
mount="$work/table"
mkdir -p "$mount/..v1"
cp generated/routing_table.json "$mount/..v1/routing_table.json"
ln -s ..v1 "$mount/..data"
ln -s ..data/routing_table.json "$mount/routing_table.json"
chmod -R a+rX "$work"
port2=$(free_port)
name2=$run_id-mounted
containers+=("$name2")
"${engine[@]}" run -d --name "$name2" "${run_opts[@]}" -v "$mount:/etc/routectl/table:ro" \
  -e ROUTECTL_TABLE=/etc/routectl/table/routing_table.json -e ROUTECTL_HOST=127.0.0.1 -e ROUTECTL_PORT="$port2" \
  "$tag:runtime" --watch >/dev/null 2>>"$work/podman.log" || fail "run: $(cat "$work/podman.log")"
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port2/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
# a new table: the same routing with one more system collection, compiled by the cli image
mkdir -p "$work/next"
sed 's/^collections:$/collections:\n  container-test:\n    scope: system\n    strategy: priority\n    members: [{model: echo\/echo-1}]/' routing.yaml >"$work/next/routing.yaml"
grep -q "container-test:" "$work/next/routing.yaml" || fail "could not edit routing.yaml"
chmod -R a+rwX "$work/next"
"${engine[@]}" run --rm "${oneshot_opts[@]}" -v "$work/next:/work" -w /work "$tag:cli" compile >/dev/null 2>&1 \
  || fail "compile in the cli image"
new_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$work/next/generated/routing_table.json")
mkdir -p "$mount/..v2" && cp "$work/next/generated/routing_table.json" "$mount/..v2/" && chmod -R a+rX "$mount/..v2"
ln -s ..v2 "$mount/..data_tmp" && mv -T "$mount/..data_tmp" "$mount/..data"
swapped=$(date +%s.%N)
for _ in $(seq 100); do
  grep -q "\"table\":\"$new_sha\"" <(curl -fsS "http://127.0.0.1:$port2/readyz") && break; sleep 0.05
done
curl -fsS "http://127.0.0.1:$port2/readyz" | grep -q "\"table\":\"$new_sha\"" || fail "--watch did not switch to $new_sha"
ok "mounted table, ConfigMap-style ..data swap, --watch: /readyz switched to $new_sha after $(python3 -c "import time; print(round(time.time() - $swapped, 2))") s"
status=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port2/v1/chat/completions" \
  -H 'Authorization: Bearer rk-demo-sam-solo' -H 'Content-Type: application/json' \
  -d '{"model": "container-test", "messages": [{"role": "user", "content": "hi"}]}')
[ "$status" = 200 ] || fail "the new collection: $status"
ok "the new table's collection answers 200"

# ---- SIGTERM: drained, exit 0
"${engine[@]}" stop -t 40 "$name2" >/dev/null 2>>"$work/podman.log"
code=$("${engine[@]}" inspect --format '{{.State.ExitCode}}' "$name2")
[ "$code" = 0 ] || fail "exit code after SIGTERM: $code"
grep -q "drained: no request in flight" <("${engine[@]}" logs "$name2" 2>&1) || fail "no drain in the log"
ok "podman stop (SIGTERM): drained, exit code 0"

echo "container-test: all checks passed"
