"""shoal: a Docker-Swarm-style cluster orchestrator with its own container runtime.

This package is the shared core every side uses (units, ids, logging, metrics, tls, spec validation
and defaults, constraint parsing, task states and the effective-status rule, shared task/node views)
and the CLI; the manager, worker, runtime and generated protocol code are the sibling packages
``shoal.manager``, ``shoal.worker``, ``shoal.runtime`` and ``shoal.proto``.
"""

__version__ = "0.1.0"
