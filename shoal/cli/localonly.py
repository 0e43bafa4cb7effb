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
    "exec": "a task's container runs on its node: there, `shoal exec --root {node_root} TASK_ID COMMAND`{how}",
    "logs": "for a service's or a task's logs use `shoal {target} svc logs SERVICE|TASK`",
    "stats": "tasks' containers run on their nodes: there, `shoal stats --root {node_root}`{how}",
    "images": "to list the cluster's images use `shoal {target} image ls --cluster`",
    "image load": "to load it into the cluster add --cluster: `shoal {target} image load --cluster -i FILE`",
    "image ls": "to list the cluster's images add --cluster: `shoal {target} image ls --cluster`",
    "image inspect": "images in the cluster are listed by `shoal {target} image ls --cluster`",
    "image rm": "images in the cluster are listed by `shoal {target} image ls --cluster`",
    "volume": "volumes live on each node: there, `shoal volume ... --root {node_root}`{how}",
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


def _on_node(ctx: click.Context) -> tuple[str, str]:
    """Where a node's agent keeps its containers (``--root`` of the node-local commands run there: the
    agent's runtime, not the default one of ``shoal run``), and how to run a command there."""
    lab = (ctx.find_root().obj or {}).get("lab")
    if not lab:
        return "DATA_DIR/runtime", " (DATA_DIR: the node's --data-dir; by default /var/lib/shoal/worker, or /var/lib/shoal/manager on a manager)"
    from shoal.lab.state import labs_root  # only on this error path

    return f"{labs_root() / lab}/NODE/runtime", " (in this lab: `shoal lab exec NODE -- shoal ...`)"


def refuse_if_remote(ctx: click.Context, command: str) -> None:
    """Stop a node-local ``command`` (a key of HINTS) when the CLI was pointed at a cluster."""
    target = remote_target(ctx)
    if target:
        node_root, how = _on_node(ctx)
        hint = HINTS[command].format(target=target, node_root=node_root, how=how)
        raise click.UsageError(f"`shoal {command}` acts on this machine only, not on the cluster given by {target}; {hint}")
