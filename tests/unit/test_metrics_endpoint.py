"""The ``--metrics-addr`` endpoint (shoal/metrics.py): HOST:PORT or a bare :PORT, serving Prometheus
text that carries shoal's version."""

from __future__ import annotations

import urllib.request

from shoal import __version__, metrics


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        return resp.read().decode()


def test_serves_build_info_with_the_version() -> None:
    port = metrics.serve("127.0.0.1:0")
    assert port > 0
    assert f'shoal_build_info{{version="{__version__}"}} 1.0' in _scrape(port)


def test_a_bare_port_is_served_on_loopback() -> None:
    port = metrics.serve(":0")
    assert "shoal_build_info" in _scrape(port)
