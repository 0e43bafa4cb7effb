"""Run a function inside another network namespace, on a thread of its own, without forking.

``setns`` moves only the calling thread, so a short-lived thread enters the namespace, runs the
function (a socket created there keeps that namespace; a /proc/sys/net file opened there is that
namespace's) and goes back to its own namespace before it ends. Both the worker (netlink and DNS
sockets, sysctls in task and node namespaces) and the lab (sysctls in its host namespaces) need it;
a separate module because the launcher, which forks, should not import threading for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

from shoal.runtime import linux

T = TypeVar("T")


def run_in_netns(fd: int | None, fn: Callable[[], T]) -> T:
    """``fn()`` on a thread that has entered the network namespace open at ``fd``; its result, or what it raised.

    ``fd`` None: the thread starts where the caller is, for an ``fn`` that unshares a new namespace;
    either way the thread is back in its own namespace before it ends."""
    result: list[T] = []
    errors: list[BaseException] = []

    def enter_and_run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if fd is not None:
                linux.setns(fd, linux.CLONE_NEWNET)
            try:
                result.append(fn())
            finally:
                linux.setns(own, linux.CLONE_NEWNET)
        except BaseException as e:  # handed to the caller's thread below
            errors.append(e)
        finally:
            os.close(own)

    thread = threading.Thread(target=enter_and_run, name="shoal-netns")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
