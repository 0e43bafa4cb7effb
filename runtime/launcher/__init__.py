"""The launcher: the small, synchronous, single-threaded fork server that owns every container.

It runs as its own process (``python -m shoal.runtime.launcher``, see __main__.py), started by the
client side (shoal.runtime.client) and reached over a unix socket. server.py is its select loop,
requests.py its operations, supervisor.py and start.py the container table and the one fork per
container, state.py what it persists; child/ is the code that runs in the processes it forks (the
container's PID 1, the userns shim, exec helpers) between fork and exec.

Keep it light: every fork copies its page tables, so nothing here imports asyncio, structlog or
the client (jsonlog.py is its logger); ``python -X importtime -m shoal.runtime.launcher --help``
shows what it loads.
"""
