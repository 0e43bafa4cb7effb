#!/bin/sh
# Runs inside the cgroup-v2 VM (tests/v2vm/run.py boots it). The host's root is shared read-only over 9p,
# which makes every Python import slow; so the interpreter + venv (disk 1) and the checkout (disk 2) come
# from ext4 images, bind-mounted over their host paths so every absolute path (the venv's editable finder,
# pyvenv.cfg) still holds. One pytest process runs the suite; its output and exit code go to disk 2.
# usage: guest.sh KERNEL-TREE PYHOME CHECKOUT PYTEST-ARGS...  (KERNEL-TREE: the unpacked kernel .deb)
set -u
KTREE=$1 PYHOME=$2 CHECKOUT=$3
shift 3
log() { echo "v2vm-guest [$(cut -d" " -f1 /proc/uptime)s]: $*"; }
# virtme-ng's /tmp is an overlay, which cannot hold the upper dir of a container's overlay root, nor
# the image store's whiteouts: a plain tmpfs instead (pytest's tmp_path lives there).
mount -t tmpfs -o mode=1777 tmpfs /tmp
for m in virtio_blk ext4; do modprobe -d "$KTREE" "$m" || log "modprobe $m failed"; done
mkdir -p /tmp/v2vm/base /tmp/v2vm/src
for i in $(seq 50); do [ -b /dev/vdb ] && break; sleep 0.1; done
mount -t ext4 -o ro,noatime /dev/vda /tmp/v2vm/base || { log "cannot mount the base image"; exit 90; }
mount -t ext4 -o noatime /dev/vdb /tmp/v2vm/src || { log "cannot mount the checkout image"; exit 90; }
mount --bind /tmp/v2vm/base/python "$PYHOME"
mount --bind /tmp/v2vm/src "$CHECKOUT"
mount --bind /tmp/v2vm/base/venv "$CHECKOUT/.venv"
for pth in "$CHECKOUT"/.venv/lib/python3*/site-packages/__editable__.*.pth; do  # see run.py static_layout
  [ -f "$pth" ] && mount --bind "$CHECKOUT/.v2vm/static.pth" "$pth"
done
# /usr again (run.py exports it under the tag shoalusr), mounted with the page cache on (virtme-ng mounts
# the root uncached), over /usr: an exec of a host binary or library (sh, python3, etcd, ip...) then
# reads 9p once instead of every time.
mkdir -p /tmp/v2vm/usr
if mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 shoalusr /tmp/v2vm/usr; then
  mount --bind /tmp/v2vm/usr /usr
else
  log "cannot mount /usr with caching; it stays uncached"
fi
cd "$CHECKOUT" || exit 90
log "cgroup: $(stat -f -c %T /sys/fs/cgroup) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
log "kernel: $(uname -r) cpus: $(nproc)"
# pytest's exit code and full output end up on the checkout image; the host prints them.
if [ -n "${V2VM_PROBE:-}" ]; then
  bash -c '
  P=$1
  TIMEFORMAT="%R real %U user %S sys"
  for i in 1 2; do echo true; time /bin/true; done
  for i in 1 2; do echo "py -S pass"; time $P/bin/python3.11 -S -c pass; done
  for i in 1 2; do echo "venv py pass"; time .venv/bin/python -c pass; done
  echo sum; time .venv/bin/python -S -c "sum(range(10**7))"
  echo ldd; ldd $P/bin/python3.11
  echo "import runtime.launcher"; time .venv/bin/python -c "import shoal.runtime.launcher"
  echo "import runtime.launcher again"; time .venv/bin/python -c "import shoal.runtime.launcher"
  echo "import etcd store"; time .venv/bin/python -c "import shoal.manager.store.etcd"
  .venv/bin/python -X importtime -c "import shoal.manager.store.etcd" 2>&1 | sort -t"|" -k2 -n | tail -8
  echo "pytest --co"; time .venv/bin/pytest --co -q -p no:cacheprovider tests/unit/test_runtime_device_filter.py | tail -1
  echo "pytest --co again"; time .venv/bin/python -X importtime -m pytest --co -q -p no:cacheprovider tests/unit/test_runtime_device_filter.py 2>/tmp/imp | tail -1
  sort -t"|" -k2 -n /tmp/imp | tail -30
  env | grep -i python
  ' probe "$PYHOME"
fi
# Stress loops run fewer rounds under software emulation (see test_runtime_faults.py).
export SHOAL_TEST_CYCLES="${SHOAL_TEST_CYCLES:-20}"
# How fast this guest runs Python right now: 0.67 s when the host is idle, several times more when other
# work shares its cores. Deadlines below are for an idle host and grow with that factor (SLOW), so a
# busy host makes the run longer, not red. Only deadlines: a test never waits longer than its event takes.
speed() { "$CHECKOUT/.venv/bin/python" -S -c 'import time; t = time.monotonic(); sum(range(10**7)); print(f"{time.monotonic() - t:.2f}")'; }
S0=$(speed)
SLOW=$("$CHECKOUT/.venv/bin/python" -S -c "print(max(1, round($S0 / 0.67)))")
# every deadline a test waits with (tests/timing.py), and pytest's per-test timeout
export SHOAL_TEST_TIME_SCALE="${SHOAL_TEST_TIME_SCALE:-$((8 * SLOW))}"
# the runtime's own wait for a launcher's (Python) start-up, 15 s on a host
export SHOAL_LAUNCHER_START_TIMEOUT_S="${SHOAL_LAUNCHER_START_TIMEOUT_S:-$((120 * SLOW))}"
# `lab up`'s waits for its etcd, its first manager and its nodes (20-30 s on a host)
export SHOAL_LAB_WAIT_SCALE="${SHOAL_LAB_WAIT_SCALE:-$((20 * SLOW))}"
# the lab managers' election lease (--election-ttl, 1-2 s on a host): a 2 s lease ran out here between its
# grant and its first use ("requested lease not found"), and the manager exited
export SHOAL_LAB_ELECTION_TTL_S="${SHOAL_LAB_ELECTION_TTL_S:-$((2 * SLOW))}"
# a manager's wait for its embedded etcd to answer (10 s on a host; a TLS handshake alone takes seconds here)
export SHOAL_ETCD_READY_TIMEOUT_S="${SHOAL_ETCD_READY_TIMEOUT_S:-$((300 * SLOW))}"
# a manager's etcd call deadlines (5 s reads, 2 s writes on a host)
export SHOAL_ETCD_TIME_SCALE="${SHOAL_ETCD_TIME_SCALE:-$SHOAL_TEST_TIME_SCALE}"
out=$CHECKOUT/.v2vm-out
mkdir -p "$out"
log "speed: sum(range(10**7)) in ${S0}s (0.67 s when the host is idle): deadlines x$SLOW; pytest starts"
[ -n "${V2VM_ACCT:-}" ] && .venv/bin/python tests/v2vm/acct.py on /tmp/v2vm/acct  # see acct.py
{ .venv/bin/pytest -p no:cacheprovider -p no:hypothesispytest -p tests.v2vm.instafail --tb=native -o timeout=$((900 * SLOW)) "$@" 2>&1; echo $? >"$out/rc"; } | tee "$out/pytest.log"
log "pytest ended; speed: sum(range(10**7)) in $(speed)s"
if [ -n "${V2VM_ACCT:-}" ]; then
  .venv/bin/python tests/v2vm/acct.py off && .venv/bin/python tests/v2vm/acct.py report /tmp/v2vm/acct | tee "$out/acct.txt"
fi
cd /
# the launchers' logs of failed tests to $out; processes the tests left behind reported and killed
"$CHECKOUT/.venv/bin/python" "$CHECKOUT/tests/v2vm/guestend.py" "$out"
sync
# the .pth bound over the editable finder's first: a mount inside .venv keeps it busy
for pth in "$CHECKOUT"/.venv/lib/python3*/site-packages/__editable__.*.pth; do umount "$pth" 2>/dev/null; done
umount "$CHECKOUT/.venv" "$CHECKOUT" && umount /tmp/v2vm/src || log "could not unmount the checkout image (synced)"
log "done"
