"""Node-local commands refuse to run when the user pointed the CLI at a cluster.

``shoal run``, ``ps``, ``images``, ``image load`` (without ``--cluster``) and the other container
commands act on the machine the CLI runs on. Given ``--lab NAME`` or ``-H HOST`` on the command line,
the user means a cluster; doing the local thing instead would be quietly doing something else, so
the command stops with one error naming the way to do it on the cluster.
"""

from __future__ import annotations

import click

# command -> what to do instead ({target} is "--lab NAME" or "-H HOST")
HINTS: dict[str, str] = {
    "run": "to run it in the cluster use `shoal {target} svc create IMAGE ...`",
    "ps": "to list the cluster's tasks use `shoal {target} svc ps SERVICE` or `shoal {target} node ps NODE`",
    "stop": "to stop a service's tasks use `shoal {target} svc scale SERVICE=0` or `svc rm SERVICE`",
    "kill": "to stop a service's tasks use `shoal {target} svc scale SERVICE=0` or `svc rm SERVICE`",
    "rm": "to remove a service use `shoal {target} svc rm SERVICE`",
    "exec": "to run a command in a task's container, run `shoal exec` on the node that runs it (`shoal lab exec NODE -- shoal exec ...` in a lab)",
    "logs": "for a service's or a task's logs use `shoal {target} svc logs SERVICE|TASK`",
    "stats": "run `shoal stats` on the node itself (`shoal lab exec NODE -- shoal stats` in a lab)",
    "images": "to list the cluster's images use `shoal {target} image ls --cluster`",
    "image load": "to load it into the cluster add --cluster: `shoal {target} image load --cluster -i FILE`",
    "image ls": "to list the cluster's images add --cluster: `shoal {target} image ls --cluster`",
    "image inspect": "images in the cluster are listed by `shoal {target} image ls --cluster`",
    "image rm": "images in the cluster are listed by `shoal {target} image ls --cluster`",
    "volume": "volumes live on each node: run `shoal volume` there (`shoal lab exec NODE -- shoal volume ...` in a lab)",
}


def remote_target(ctx: click.Context) -> str:
    """``--lab NAME`` / ``-H HOST`` when the user named a cluster on the command line (or SHOAL_LAB), else ""."""
    root = ctx.find_root()
    obj = root.obj or {}
    if obj.get("lab"):
        return f"--lab {obj['lab']}"
    if root.get_parameter_source("host") == click.core.ParameterSource.COMMANDLINE:
        return f"-H {obj.get('host', '')}"
    return ""


def refuse_if_remote(ctx: click.Context, command: str) -> None:
    """Stop a node-local ``command`` (a key of HINTS) when the CLI was pointed at a cluster."""
    target = remote_target(ctx)
    if target:
        hint = HINTS[command].format(target=target)
        raise click.UsageError(f"`shoal {command}` acts on this machine only, not on the cluster given by {target}; {hint}")
