"""Build the load-balancing demo's image: busybox httpd serving ``/cgi-bin/whoami`` on port 80.

No registry and no internet: the image is made from the host's Debian busybox-static with the test
image builder (tests/fixtures/busybox_image.py) plus one layer holding the CGI script, and written as
a ``docker save`` tarball for ``shoal image load --cluster``::

    python deploy/demos/lb/build_image.py /tmp/lb.tar [TAG]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for tests.fixtures

from tests.fixtures import busybox_image  # noqa: E402

TAG = "shoal-demo-lb:latest"
PORT = 80


def build(path: str, tag: str = TAG) -> str:
    """Write the image tarball to ``path``; returns the image id."""
    script = (HERE / "whoami.cgi").read_bytes()
    files = {"var/www/cgi-bin/": b"", "var/www/cgi-bin/whoami": script}
    config = {"Cmd": ["httpd", "-f", "-v", "-p", str(PORT), "-h", "/var/www"], "ExposedPorts": {f"{PORT}/tcp": {}}}
    return busybox_image.build(path, tag=tag, extra_layers=[files], config=config)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} OUT.tar [TAG]")
    print(build(*sys.argv[1:]))
