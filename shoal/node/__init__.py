"""The composition root: what a ``shoal manager`` or ``shoal worker`` process runs, and role changes.

``options`` holds the plain settings and errors (light: the CLI imports it at start-up); ``daemon``
puts the manager, the agent and the runtime together and runs them; ``role`` starts or stops a node's
manager when it is promoted or demoted; ``join`` is a manager joining an existing cluster. This layer
sits above ``shoal.manager`` and ``shoal.worker`` (which never import each other) and below the CLI.
"""
