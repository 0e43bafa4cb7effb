"""Prometheus ``/metrics`` endpoint shared by manager and worker (``--metrics-addr HOST:PORT``)."""

from __future__ import annotations

import prometheus_client

from shoal import __version__

BUILD_INFO = prometheus_client.Info("shoal_build", "shoal build information")
BUILD_INFO.info({"version": __version__})


def serve(addr: str) -> int:
    """Start the endpoint in a background thread; returns the bound port. ``addr`` is HOST:PORT."""
    host, _, port = addr.rpartition(":")
    server, _thread = prometheus_client.start_http_server(int(port), addr=host or "127.0.0.1")
    return server.server_port
