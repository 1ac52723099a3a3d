#!/usr/bin/env bash
# Wait until every routectl pod serves the table with the given sha256 (its /readyz, read
# through the API server's pod proxy: no port-forward, no Service in between).
#   wait-for-table.sh NAMESPACE SHA256 [TIMEOUT_SECONDS]
# Exit 0 when all serve it; 1 when one refused a table since this script started (its /readyz
# tells why: the old table keeps serving there), or when the time is up.
set -euo pipefail
namespace="$1" want="$2" timeout="${3:-600}"
started=$(date +%s)
deadline=$(( started + timeout ))
while :; do
  pending=0 seen=0
  for pod in $(kubectl -n "$namespace" get pods -l app.kubernetes.io/name=routectl \
               --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}'); do
    seen=$(( seen + 1 ))
    ready=$(kubectl -n "$namespace" get --raw "/api/v1/namespaces/$namespace/pods/$pod:8080/proxy/readyz" 2>/dev/null || echo '{}')
    state=$(python3 -c '
import json, sys
body, want, since = json.loads(sys.argv[1] or "{}"), sys.argv[2], int(sys.argv[3])
reload = body.get("reload") or {}
if body.get("table") == want:
    print("on")
elif reload.get("result") == "refused" and reload.get("at", 0) >= since:
    print("refused")
else:
    print("pending")' "$ready" "$want" "$started")
    case "$state" in
      on) ;;
      refused) echo "$pod refused the table: $ready" >&2; exit 1 ;;
      *) pending=$(( pending + 1 )) ;;
    esac
  done
  if [ "$pending" -eq 0 ] && [ "$seen" -gt 0 ]; then echo "every routectl pod serves $want"; exit 0; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "$pending pod(s) still not on $want" >&2; exit 1; fi
  sleep 5
done
