#!/usr/bin/env bash
# `make demo`: a lab cluster on this machine -- 1 manager and 3 workers, each a host of its own
# (network namespace, address on a lab bridge, hostname, data dir) -- then a 6-replica web service
# (deploy/demos/lb: busybox httpd answering with its task and node) that the scheduler spreads 2 per
# worker (the manager is drained, as in a production-shaped cluster), published on port 8080 of every
# node; it ends with `shoal demo lb`: 600 requests through the manager's port 8080, spread by the
# routing mesh over every task on every worker.
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
IMAGE_TAR="$(mktemp --suffix=.tar)"
trap 'rm -f "$IMAGE_TAR"' EXIT
.venv/bin/python deploy/demos/lb/build_image.py "$IMAGE_TAR" >/dev/null
run "shoal --lab $LAB image load --cluster -i lb.tar   # built by deploy/demos/lb/build_image.py" \
  --lab "$LAB" image load --cluster -i "$IMAGE_TAR"
run "shoal --lab $LAB svc create --name lb --replicas 6 -p 8080:80 shoal-demo-lb" \
  --lab "$LAB" svc create --name lb --replicas 6 -p 8080:80 shoal-demo-lb
run "shoal --lab $LAB svc ls" --lab "$LAB" svc ls
run "shoal --lab $LAB svc ps lb" --lab "$LAB" svc ps lb
run "shoal --lab $LAB demo lb --requests 600" --lab "$LAB" demo lb --requests 600

SOCK="${SHOAL_LAB_DIR:-/var/lib/shoal/labs}/$LAB/manager1.sock"
cat <<MSG
The lab keeps running. Try it yourself:
    export PATH=$PWD/.venv/bin:\$PATH
    shoal --lab $LAB svc scale lb=9 ; shoal --lab $LAB demo lb
    shoal --lab $LAB demo lb --node worker3 --requests 1000    # any node's port 8080 reaches every task
    export SHOAL_HOST=unix://$SOCK   # then plain \`shoal node ls\`
    shoal lab ls                                        # hosts, addresses, processes
    shoal lab exec worker1 --name $LAB -- ip addr       # a command on a lab host
    shoal lab kill worker2 --name $LAB                  # a host crash: watch \`shoal --lab $LAB svc ps lb\`
    shoal lab start worker2 --name $LAB
Tear it all down (processes, containers, namespaces, bridge, cgroups, data):
    deploy/demo.sh stop        # or: shoal lab down --name $LAB
MSG
