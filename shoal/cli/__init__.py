"""The ``shoal`` command line: the user-facing client of the control API (and the daemon commands).

``main`` is the entry point; ``service`` and ``node`` hold the command groups, ``client`` the
connection to a manager, ``output``/``service_views`` the docker-shaped tables and ``progress`` the
convergence display.
"""
