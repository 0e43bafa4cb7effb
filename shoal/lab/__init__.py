"""The lab engine: multi-host clusters on one machine (network-namespace hosts), and faults on demand.

``state`` plans a lab and keeps it in one JSON file; ``network``, ``cgroups`` and ``procs`` build the
hosts and run processes on them; ``lifecycle`` brings a lab up and tears it down; ``faults`` crashes,
stops, partitions and heals hosts; ``cluster`` asks the lab's managers which nodes are Ready. Every
host runs the ordinary ``shoal manager`` / ``shoal worker`` command, so the lab never imports the
manager or the worker: it sits beside ``shoal.node``, above the runtime, below the CLI.
"""
