"""Code that runs in the processes the launcher forks, between fork() and execve().

pid1.py is the container's PID 1 (namespaces, rootfs from rootfs.py and usermounts.py, optional
init.py), userns.py the shim of a user-namespace container, exec.py the helper of ``exec``;
process.py holds what PID 1 and exec share: the ProcessSpec and the identity/exec steps. Everything
must be imported before the fork (after pivot_root the host's module files are gone).
"""
