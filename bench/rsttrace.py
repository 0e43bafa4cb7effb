"""Every TCP reset seen in a lab's hosts, with its time: evidence for a refused request (bench/update.py --trace).

A refused connection is a reset answering its SYN (or an ICMP port-unreachable): from a task whose
server is not listening, from a node's own stack (no DNAT: nothing listens on the published port
there), or from the mesh's reject of a frontend without endpoints. To tell which, ``RstTrace`` loads a
table of its own, ``table ip shoal-bench-rst``, into each lab host's namespace (the lab's, made by the
benchmark: nothing else is touched) that marks every packet with the RST flag for nftables tracing,
and keeps ``nft monitor trace`` of each host running into a file, each line stamped with the time it
was read. ``resets(files, since, until)`` (pure) then lists the resets of a time window: where they
were seen (host, hook), their addresses and ports, and which chains of shoal's table they met, so a
failure the benchmark reports can be lined up with them and with the nodes' debug logs
(``bench/timeline.py``).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TABLE = "shoal-bench-rst"
RULES = f"""table ip {TABLE} {{
	chain pre {{ type filter hook prerouting priority -400; policy accept;
		tcp flags & rst == rst meta nftrace set 1
	}}
	chain out {{ type filter hook output priority -400; policy accept;
		tcp flags & rst == rst meta nftrace set 1
	}}
}}
"""
_PACKET = re.compile(r"ip (\S+) (\S+) packet: (.*)")


@dataclass(frozen=True)
class Reset:
    t: float  # when the trace line was read (seconds since the epoch)
    host: str
    trace_id: str
    chain: str  # ``<table> <chain>`` where the packet was traced
    packet: str  # its addresses, ports and flags as nft prints them (MACs and IP header details left out)


def parse(lines: Iterable[str], host: str) -> list[Reset]:
    """The traced packets of one host's stamped ``nft monitor trace`` lines (``<time> trace id <id> ...``)."""
    out = []
    for line in lines:
        stamp, _, rest = line.partition(" ")
        m = re.match(r"trace id (\S+) (.*)", rest.strip())
        if not m:
            continue
        pkt = _PACKET.match(m.group(2))
        if pkt is None:
            continue
        text = re.sub(r"ether saddr \S+ ether daddr \S+ |@ll,\S+ \S+ |ip dscp .*?ip length \d+ ", "", pkt.group(3))
        try:
            out.append(Reset(float(stamp), host, m.group(1), f"{pkt.group(1)} {pkt.group(2)}", text.strip()))
        except ValueError:
            continue
    return out


def resets(files: dict[str, list[str]], since: float, until: float) -> list[Reset]:
    """The resets of every host (``files``: host -> its stamped lines) seen between ``since`` and ``until``."""
    found = [r for host, lines in files.items() for r in parse(lines, host) if since <= r.t <= until]
    return sorted(found, key=lambda r: (r.t, r.host))


class RstTrace:
    """Traces resets in the namespaces ``hosts`` (name -> netns name) into ``dir`` until ``stop``."""

    def __init__(self, hosts: dict[str, str], dir: Path) -> None:
        self.dir = dir
        self.procs: list[subprocess.Popen] = []
        dir.mkdir(parents=True, exist_ok=True)
        for host, netns in hosts.items():
            subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=RULES, text=True, check=True)
            proc = subprocess.Popen(["ip", "netns", "exec", netns, "nft", "monitor", "trace"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.procs.append(proc)
            threading.Thread(target=self._stamp, args=(proc, dir / f"{host}.log"), daemon=True).start()

    @staticmethod
    def _stamp(proc: subprocess.Popen, path: Path) -> None:
        with path.open("w") as f:
            assert proc.stdout is not None
            for line in proc.stdout:
                f.write(f"{time.time():.6f} {line}")
                f.flush()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)

    def files(self) -> dict[str, list[str]]:
        return {p.stem: p.read_text(errors="replace").splitlines() for p in self.dir.glob("*.log")}
