#!/usr/bin/env bash
# `make demo`: a manager (with its embedded etcd) and a worker on this machine, then a 3-replica
# service running in real containers. `deploy/demo.sh stop` tears it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL="$PWD/.venv/bin/shoal"
DATA="$PWD/data/demo"
PIDS="$DATA/pids"
unset SHOAL_HOST  # the CLI talks to the default socket, /run/shoal/manager.sock

stop() {
  if [ -f "$PIDS" ]; then
    # workers first, so their containers stop before the manager goes
    for pid in $(tac "$PIDS"); do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $(cat "$PIDS"); do
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$PIDS"
  fi
  echo "demo stopped"
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi
[ -f "$PIDS" ] && stop
mkdir -p "$DATA"

echo "==> starting a manager (embedded etcd, gRPC on 127.0.0.1:4242, CLI socket /run/shoal/manager.sock)"
"$SHOAL" manager --data-dir "$DATA/manager" --hostname demo-manager \
  >"$DATA/manager.out" 2>"$DATA/manager.log" &
echo $! >>"$PIDS"
for _ in $(seq 100); do grep -q -- "--token" "$DATA/manager.out" 2>/dev/null && break; sleep 0.1; done
TOKEN=$(grep -o 'SHOAL-1-[a-z0-9-]*' "$DATA/manager.out" | head -1)
[ -n "$TOKEN" ] || { echo "manager did not start; see $DATA/manager.log"; tail -5 "$DATA/manager.log"; stop; exit 1; }

echo "==> joining a worker"
"$SHOAL" worker --join 127.0.0.1:4242 --token "$TOKEN" --data-dir "$DATA/worker" --hostname demo-worker \
  >"$DATA/worker.out" 2>"$DATA/worker.log" &
echo $! >>"$PIDS"
for _ in $(seq 100); do [ "$("$SHOAL" node ls -q 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done

echo "\$ shoal node ls"; "$SHOAL" node ls
echo; echo "\$ shoal svc create --name web --replicas 3 host python3 -m http.server 8000"
"$SHOAL" svc create --name web --replicas 3 host python3 -m http.server 8000
echo; echo "\$ shoal svc ls"; "$SHOAL" svc ls
echo; echo "\$ shoal svc ps web"; "$SHOAL" svc ps web
cat <<MSG

The cluster keeps running. Try it yourself:
    export PATH=$PWD/.venv/bin:\$PATH
    shoal svc scale web=5 ; shoal svc ps web ; shoal svc rm web
Logs: $DATA/manager.log, $DATA/worker.log
Stop everything (containers, worker, manager, etcd):  deploy/demo.sh stop
MSG
