"""An etcd child process for a manager started without ``--etcd``: the single-machine default.

The manager runs Debian's etcd binary on loopback only, keeping its data in ``<data_dir>/etcd`` and
its output in ``<data_dir>/etcd.log``. It serves TLS and demands a client certificate, for clients and
peers alike: its own CA, server and client certificates are made in ``<data_dir>/etcd-tls`` at the
first start (``shoal.etcdtls``), so another local user cannot read or write it either. Ports are picked free once and remembered in ``<data_dir>/etcd.ports``
so a restarted manager finds its etcd at the same address. The child must not outlive the manager, and
PR_SET_PDEATHSIG needs a ``preexec_fn``, which is unsafe in a threaded process, so instead ``stop()`` is
robust (SIGTERM, then SIGKILL after 5 s), an atexit hook stops it on a normal exit, and a start first
ends an etcd that a killed manager left running on the same data dir (its pid is in ``etcd.pid``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from shoal.etcdtls import EtcdTLS, ensure_embedded, files, server_flags

from .base import StoreError

__all__ = ["EmbeddedEtcd"]

NOT_INSTALLED = "etcd not found on PATH; run `make setup` (it installs Debian's etcd-server)"
_STOP_GRACE = 5.0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as etcd's own listener does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class EmbeddedEtcd:
    """One single-member etcd on 127.0.0.1, owned by this process."""

    def __init__(self, data_dir: str | os.PathLike[str], *, ready_timeout: float | None = None) -> None:
        self.data_dir = Path(data_dir)
        # 10 s; SHOAL_ETCD_READY_TIMEOUT_S for slow machines (the cgroup-v2 test VM runs under emulation)
        self.ready_timeout = ready_timeout or float(os.environ.get("SHOAL_ETCD_READY_TIMEOUT_S", "10"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: tuple[int, int] | None = None
        self._atexit_registered = False
        self.server_tls, self.client_tls = self._tls_files()

    def _tls_files(self) -> tuple[EtcdTLS, EtcdTLS]:
        return files(self.data_dir / "etcd-tls", "server"), files(self.data_dir / "etcd-tls", "client")

    @property
    def endpoint(self) -> str:
        """The client URL, e.g. ``https://127.0.0.1:40123`` (known once ports are chosen by ``start``)."""
        if self._ports is None:
            raise RuntimeError("EmbeddedEtcd.endpoint is known only after start()")
        return f"https://127.0.0.1:{self._ports[0]}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "etcd.log"

    def _choose_ports(self) -> tuple[int, int]:
        saved = self.data_dir / "etcd.ports"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            ports = json.loads(saved.read_text())
            client, peer = int(ports["client"]), int(ports["peer"])
            if _port_free(client) and _port_free(peer):
                return client, peer
        client = _free_port(set())
        peer = _free_port({client})
        saved.write_text(json.dumps({"client": client, "peer": peer}) + "\n")
        return client, peer

    def _end_orphan(self) -> None:
        """End an etcd that a killed manager left running on this data dir (checked by its command line)."""
        pid_file = self.data_dir / "etcd.pid"
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(self.data_dir / "etcd").encode() not in cmdline:
            return  # the pid was reused by something else
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _command(self, binary: str) -> list[str]:
        client, peer = self._ports or (0, 0)
        client_url, peer_url = f"https://127.0.0.1:{client}", f"https://127.0.0.1:{peer}"
        return [
            binary, "--name", "default", "--data-dir", str(self.data_dir / "etcd"),
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"default={peer_url}",
            "--logger", "zap", "--log-level", "error", "--log-outputs", "stderr",
            "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1h",
            *server_flags(self.server_tls),
        ]  # fmt: skip

    async def start(self) -> None:
        """Start etcd and return once it answers its health check; StoreError (with its log) if not."""
        if self.running:
            return
        binary = shutil.which("etcd")
        if binary is None:
            raise StoreError(NOT_INSTALLED)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "etcd").mkdir(mode=0o700, exist_ok=True)  # etcd warns about wider modes
        await asyncio.to_thread(ensure_embedded, self.data_dir / "etcd-tls")
        await asyncio.to_thread(self._end_orphan)
        self._ports = self._choose_ports()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(binary), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # a Ctrl-C reaches the manager, which then stops etcd in order
            )  # fmt: skip
        (self.data_dir / "etcd.pid").write_text(f"{self._proc.pid}\n")
        if not self._atexit_registered:
            atexit.register(self._stop_sync)
            self._atexit_registered = True
        try:
            await self._wait_healthy()
        except BaseException:
            await self.stop()
            raise

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise StoreError(f"etcd exited with status {self._proc.returncode}; {self._log_tail()}")
            if await asyncio.to_thread(self._healthy):
                return
            if time.monotonic() > deadline:
                raise StoreError(f"etcd did not become healthy within {self.ready_timeout:g}s; {self._log_tail()}")
            await asyncio.sleep(0.05)

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.client_tls.ca))
        ctx.load_cert_chain(str(self.client_tls.cert), str(self.client_tls.key))
        return ctx

    def _healthy(self) -> bool:
        try:
            # a probe's TLS handshake may take longer than 0.5 s only where the whole start may (emulation)
            probe_s = max(0.5, self.ready_timeout / 20)
            with urllib.request.urlopen(f"{self.endpoint}/health", timeout=probe_s, context=self._ssl()) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"no log at {self.log_path}"
        return f"last lines of {self.log_path}:\n" + "\n".join(tail)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if etcd has not exited after 5 s; waits until it is gone."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            deadline = time.monotonic() + _STOP_GRACE
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self._forget()

    def _stop_sync(self) -> None:
        """The atexit path: the same as stop(), without an event loop."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def _forget(self) -> None:
        self._proc = None
        with contextlib.suppress(OSError):
            (self.data_dir / "etcd.pid").unlink()
