"""The client side of the runtime: the asyncio ``Runtime`` a caller (the worker agent, ``shoal run``)
uses in its own process. It validates configs, starts or finds the launcher (spawn.py), and talks to
it over pooled unix-socket connections (transport.py; exec.py for exec's streaming connection).
"""

from shoal.runtime.client.runtime import Runtime

__all__ = ["Runtime"]
