"""Fixtures of the integration tests: the store contract's ``store`` (MemoryStore and real etcd, tests/fixtures/stores.py).

``cluster`` and ``rt`` are registered for every directory by tests/conftest.py.
"""

from tests.fixtures.stores import memory_store, store  # noqa: F401  (fixtures)
