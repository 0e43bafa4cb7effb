"""The worker agent: what runs on every node, between a manager's dispatcher and the container runtime.

- ``agent``: ``Agent``, the thin composition a ``shoal worker`` / ``shoal manager`` process runs.
- ``config``: ``AgentConfig`` and ``describe`` (the host's resources the scheduler places against).
- ``identity`` (with ``join``): joining with a token, the node id on disk, the certificate, its role
  and renewal.
- ``session``: the stream to a manager (assignments down, heartbeats up), failover between managers.
- ``assignments`` (pure): what a full or incremental assignment set asks (start, update, remove).
- ``taskmanager``: a controller per task, adoption after a restart (``adopt``, pure), cleanup.
- ``taskstate`` (pure): the task state machine, next step and the status each outcome leads to;
  ``controller`` performs the steps through the executor and reports.
- ``reporter``: task statuses, coalesced per task and sent while a session lives.
- ``executor`` (interface), ``runtime_executor`` (the embedded runtime), ``executor_fake`` (tests,
  the node simulator); ``health`` (docker's health checks); ``image_pull`` (cluster images).
- ``network/``: node networking, the overlay, the routing mesh rules and service discovery.
"""
