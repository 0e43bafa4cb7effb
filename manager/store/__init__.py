"""The store: etcd behind a small async interface (``base``), with an in-memory twin for tests."""
