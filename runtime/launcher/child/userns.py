"""``userns``: root in the container is an unprivileged uid range on the host (``--userns``).

The launcher's one-fork shortcut (``unshare(CLONE_NEWPID)`` in the launcher) cannot be used: the
container's pid, mount, net... namespaces must be *owned* by the new user namespace, or mounting
/proc and sysfs fails. So the launcher forks a short-lived *shim* that, still real root:

1. joins the container's cgroup (inside the user namespace it could not write the host's cgroupfs);
2. makes a private mount namespace and mounts the image's overlayfs and the container's own mounts
   there (as real root, so host paths behind 0700 directories resolve and overlay copy-ups work),
   then moves that root to /run/root on a private tmpfs, where the remapped root can reach it;
3. ``unshare(CLONE_NEWUSER)``, waits while the launcher writes ``uid_map``/``gid_map``
   (``0 <base> <size>``), becomes uid/gid 0 of the new namespace, ``unshare(CLONE_NEWPID)``, forks
   the container's PID 1, reports its pid and exits. The launcher is a child subreaper, so PID 1 is
   re-parented to it and reaped and watched like any other container.

PID 1 then runs the usual child sequence: new mount/uts/ipc/net namespaces (owned by the user
namespace), a bind of the prepared root onto itself (an unlocked mount it may pivot into), /proc,
/dev, /sys, pivot_root, masks. Limitation: image files belong to host root, which is unmapped
inside, so they show as nobody (65534) and the container's root cannot modify files it does not
own (new files, /tmp, volumes and tmpfs mounts are writable).
"""

from __future__ import annotations

import dataclasses
import os
from typing import NoReturn

from shoal.runtime import linux
from shoal.runtime.launcher.child import pid1, process, rootfs, usermounts
from shoal.runtime.linux import MS_BIND, MS_REC

BASE = 100_000
SIZE = 65_536
PR_SET_CHILD_SUBREAPER = 36
MS_MOVE = 8192
STAGE = "/run"
"""Covered by a private tmpfs in the shim's own mount namespace (the host's /run is untouched)."""
STAGED_ROOT = "/run/root"


def map_text(base: int = BASE, size: int = SIZE) -> str:
    return f"0 {base} {size}\n"


def shim(spec: pid1.ChildSpec, exec_w: int, out_w: int, err_w: int, sync_w: int, go_r: int) -> NoReturn:
    """The shim's whole life (see the module docstring); failures go to ``exec_w`` as text."""
    stage = "userns shim"
    try:
        process.reset_signals()
        stage = "join cgroup"
        process.join_cgroup(spec.process.cgroup_procs)
        stage = "prepare rootfs"
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, MS_REC | linux.MS_PRIVATE)
        rootfs.mount_overlay(spec.rootfs, spec.lowerdirs, spec.upper, spec.work)
        rootfs.make_api_dirs(spec.rootfs)
        usermounts.apply(spec.rootfs, spec.mounts, read_only_root=False)
        # Move the prepared root where the remapped root can reach it: the state dir is 0700.
        linux.mount("tmpfs", STAGE, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=755,size=64k")
        os.mkdir(STAGED_ROOT, 0o755)
        linux.mount(spec.rootfs, STAGED_ROOT, None, MS_MOVE)
        stage = "user namespace"
        linux.unshare(linux.CLONE_NEWUSER)
        os.write(sync_w, b"u")
        if os.read(go_r, 1) != b"g":
            os._exit(pid1.EXIT_SETUP_FAILED)  # the launcher gave up
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        os.setgroups([])
        linux.unshare(linux.CLONE_NEWPID)
        joined = dataclasses.replace(spec.process, cgroup_procs=[])
        inner = dataclasses.replace(spec, process=joined, prepared=True, rootfs=STAGED_ROOT)
        pid = os.fork()
        if pid == 0:
            os.close(sync_w)
            pid1.run(inner, exec_w, out_w, err_w)
        os.write(sync_w, f"{pid}\n".encode())
    except BaseException as exc:  # noqa: BLE001 - reported as text
        try:
            process.report(exec_w, stage, exc)
        finally:
            os._exit(pid1.EXIT_SETUP_FAILED)
    os._exit(0)


def setup_prepared_root(root: str, masked: list[str]) -> None:
    """PID 1's part: the shim mounted the overlay; make it pivotable, add /proc, /dev, /sys."""
    linux.mount(None, "/", None, MS_REC | linux.MS_PRIVATE)
    linux.mount(root, root, None, MS_BIND | MS_REC)  # an unlocked copy, owned by this namespace
    rootfs.mount_api_filesystems(root, tmp_and_run=False)
    rootfs.pivot(root)
    rootfs.mask_paths(masked)


def fork_container(spec: pid1.ChildSpec, exec_w: int, out_w: int, err_w: int, timeout: float) -> int:
    """Launcher side: fork the shim, write its id maps, return the container's PID 1 (or 0).

    0 means the shim failed before forking PID 1; its reason is on the exec pipe.
    """
    import select

    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    try:
        shim_pid = os.fork()
        if shim_pid == 0:
            os.close(sync_r)
            os.close(go_w)
            shim(spec, exec_w, out_w, err_w, sync_w, go_r)
    finally:
        os.close(sync_w)
        os.close(go_r)
    pid = 0
    try:
        ready, _, _ = select.select([sync_r], [], [], timeout)
        if ready and os.read(sync_r, 1) == b"u":
            for name, text in (("uid_map", map_text()), ("gid_map", map_text())):
                with open(f"/proc/{shim_pid}/{name}", "w") as f:
                    f.write(text)
            os.write(go_w, b"g")
            data = b""
            while (ready := select.select([sync_r], [], [], timeout)[0]) and (chunk := os.read(sync_r, 64)):
                data += chunk
            pid = int(data) if data.strip().isdigit() else 0
    finally:
        os.close(sync_r)
        os.close(go_w)
        os.waitpid(shim_pid, 0)
    return pid
