"""Defaults the CLI needs before it loads any command (kept apart so `shoal run` loads no gRPC)."""

DEFAULT_HOST = "unix:///run/shoal/manager.sock"  # the manager's control socket
