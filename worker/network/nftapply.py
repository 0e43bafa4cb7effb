"""Loading shoal's nftables table: each change is one atomic ``nft -f -`` transaction.

The first load of an applier replaces the whole table (one file that deletes and re-creates it); later
loads send only the difference from what it loaded last (``nfttable.delta``). Either is one ``nft -f``
transaction: a packet sees the old mesh or the new one, never half of each, and connections already
tracked keep their translation. ``check`` asks the kernel to validate a file without
committing it (``nft -c``). Nothing outside ``table ip shoal`` and shoal's netdev tables (``dsr.py``:
``table netdev shoal-dsr-<uplink>``, loaded in the same transaction) is ever touched.

``netns`` (a path such as ``/run/netns/NAME``) runs ``nft`` inside that network namespace through
``nsenter``: the agent of a lab node already lives in its namespace and passes none.
"""

from __future__ import annotations

import asyncio
import json
import shutil

from shoal import log
from shoal.worker.network import dsr
from shoal.worker.network.nft import Mesh, build
from shoal.worker.network.nfttable import TABLE, Ruleset, delta, removal, replace_text

_log = log.get(__name__)


class NftApplyError(RuntimeError):
    """``nft`` refused a ruleset or is missing; the message carries nft's own words."""


class Nft:
    """Applies meshes to one network namespace's ``table ip shoal``; skips a mesh equal to the last one."""

    def __init__(self, netns: str | None = None, nft: str = "nft") -> None:
        self.netns = netns
        self.nft = nft
        self.current: Ruleset | None = None  # what this applier last loaded (None: unknown, replace whole)

    def _argv(self, *args: str) -> list[str]:
        if shutil.which(self.nft) is None:
            raise NftApplyError(f"the {self.nft!r} command (Debian package nftables) is not installed")
        argv = [self.nft, *args]
        return ["nsenter", f"--net={self.netns}", *argv] if self.netns else argv

    async def _run(self, *args: str, stdin: str = "") -> str:
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode())
        if proc.returncode != 0:
            raise NftApplyError(f"nft {' '.join(args)} failed: {err.decode().strip() or out.decode().strip()}")
        return out.decode()

    async def check(self, mesh: Mesh) -> None:
        """Validate ``mesh``'s full transaction in the kernel without committing it (``nft -c -f -``)."""
        await self._run("-c", "-f", "-", stdin=replace_text(build(mesh)))

    async def apply(self, mesh: Mesh) -> bool:
        """Load ``mesh`` in one transaction; False when it equals what is loaded.

        After the first load only the difference is sent (``nfttable.delta``); if the kernel refuses
        a delta (the table was changed behind our back), the table is replaced whole instead.
        """
        new = build(mesh)
        if new == self.current:
            return False
        text = delta(self.current, new) if self.current is not None else None
        if text is not None:
            try:
                await self._run("-f", "-", stdin=text)
                self.current = new
                return True
            except NftApplyError as e:
                _log.warning("nft delta refused; replacing the table whole", error=str(e))
        self.current = None
        existing = await self.netdev_tables()
        try:
            await self._run("-f", "-", stdin=replace_text(new, existing))
        except NftApplyError as e:
            if not existing:
                raise
            # a netdev table of shoal's that cannot be taken over (another shape): made again, its pins lost
            _log.warning("shoal's netdev table not reusable; making it again", error=str(e))
            await self._run("-f", "-", stdin="".join(dsr.removal(n) for n in sorted(existing)) + replace_text(new))
        self.current = new
        return True

    async def remove(self) -> None:
        """Delete shoal's tables (node leaving or shutting down); fine when they are already gone."""
        self.current = None
        gone = "".join(dsr.removal(name) for name in sorted(await self.netdev_tables()))
        await self._run("-f", "-", stdin=removal() + gone)

    async def netdev_tables(self) -> dict[str, list[str]]:
        """shoal's netdev tables loaded now (``dsr.TABLE_PREFIX``), each with its chains' names."""
        out: dict[str, list[str]] = {}
        for kind in ("tables", "chains"):
            listing = json.loads(await self._run("-j", "list", kind, "netdev") or "{}")
            for item in listing.get("nftables", []):
                if "table" in item and item["table"]["name"].startswith(dsr.TABLE_PREFIX):
                    out.setdefault(item["table"]["name"], [])
                elif "chain" in item and item["chain"]["table"].startswith(dsr.TABLE_PREFIX):
                    out.setdefault(item["chain"]["table"], []).append(item["chain"]["name"])
        return out

    async def exists(self) -> bool:
        """Whether ``table ip shoal`` is loaded (for cleanup checks and tests)."""
        listing = json.loads(await self._run("-j", "list", "tables", "ip") or "{}")
        return any(item.get("table", {}).get("name") == TABLE for item in listing.get("nftables", []))

    async def listing(self) -> str:
        """The loaded table as ``nft list table`` prints it (diagnostics)."""
        return await self._run("list", "table", "ip", TABLE)
