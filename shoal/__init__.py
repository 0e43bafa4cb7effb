"""shoal: a Docker-Swarm-style cluster orchestrator with its own container runtime.

This package is the shared core (units, ids, logging, metrics) and the CLI; the manager, worker,
runtime and generated protocol code are the sibling packages ``shoal.manager``, ``shoal.worker``,
``shoal.runtime`` and ``shoal.proto``.
"""

__version__ = "0.1.0"
