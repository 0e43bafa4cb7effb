"""Stacks: compose YAML files read, checked and turned into shoal service specs.

A pure layer above the core and ``shoal.proto``: it reads files and the environment given to it,
but never talks to a manager. ``load_stack`` is the entry point; ``convert`` maps a loaded stack onto
service specs (and plain plan objects for what the protocol cannot carry yet); ``plan`` diffs a
stack against the services that run; ``render`` prints the merged result (``stack config``).

This module itself stays import-free: the CLI reads the label constants without loading the models.
"""

NAMESPACE_LABEL = "com.docker.stack.namespace"
"""The label docker puts on every service, container, network, secret and config of a stack."""
IMAGE_LABEL = "com.docker.stack.image"
"""The label docker puts on a stack's service naming the image the file asked for."""
