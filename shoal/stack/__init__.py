"""Stacks: compose YAML files read, checked and turned into shoal service specs.

A pure layer above the core and ``shoal.proto``: it reads files and the environment given to it,
but never talks to a manager. ``load_stack`` is the entry point; ``convert`` maps a loaded stack onto
service specs (and plain plan objects for what the protocol cannot carry yet); ``plan`` diffs a
stack against the services that run; ``render`` prints the merged result (``stack config``).
"""
