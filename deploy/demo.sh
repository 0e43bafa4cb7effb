#!/usr/bin/env bash
# `make demo`: a lab cluster on this machine -- 1 manager and 3 workers, each a host of its own
# (network namespace, address on a lab bridge, hostname, data dir) -- then a 6-replica service that
# the scheduler spreads 2 per worker (the manager is drained, as in a production-shaped cluster).
# `deploy/demo.sh stop` (= `shoal lab down --name demo`) removes every piece of it.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL="$PWD/.venv/bin/shoal"
LAB=demo
unset SHOAL_HOST SHOAL_LAB

run() { echo "\$ $1"; "$SHOAL" "${@:2}"; echo; }

if [ "${1:-}" = "stop" ]; then "$SHOAL" lab down --name "$LAB"; exit 0; fi
if "$SHOAL" lab ls --format json | grep -q "\"Lab\": \"$LAB\""; then
  echo "==> removing the previous demo lab"; "$SHOAL" lab down --name "$LAB"
fi

run "shoal lab up --name $LAB --managers 1 --workers 3" lab up --name "$LAB" --managers 1 --workers 3
run "shoal --lab $LAB node ls" --lab "$LAB" node ls
run "shoal --lab $LAB svc create --name web --replicas 6 host python3 -m http.server 8000" \
  --lab "$LAB" svc create --name web --replicas 6 host python3 -m http.server 8000
run "shoal --lab $LAB svc ls" --lab "$LAB" svc ls
run "shoal --lab $LAB svc ps web" --lab "$LAB" svc ps web

SOCK="${SHOAL_LAB_DIR:-/var/lib/shoal/labs}/$LAB/manager1.sock"
cat <<MSG
The lab keeps running. Try it yourself:
    export PATH=$PWD/.venv/bin:\$PATH
    shoal --lab $LAB svc scale web=9 ; shoal --lab $LAB svc ps web
    export SHOAL_HOST=unix://$SOCK   # then plain \`shoal node ls\`
    shoal lab ls                                        # hosts, addresses, processes
    shoal lab exec worker1 --name $LAB -- ip addr       # a command on a lab host
    shoal lab kill worker2 --name $LAB                  # a host crash: watch \`shoal --lab $LAB svc ps web\`
    shoal lab start worker2 --name $LAB
Tear it all down (processes, containers, namespaces, bridge, cgroups, data):
    deploy/demo.sh stop        # or: shoal lab down --name $LAB
MSG
