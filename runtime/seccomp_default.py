"""shoal's default seccomp profile: Docker's policy, written as shoal's own data (Docker's JSON shape).

Semantics as Docker's default: an allow-list, every other syscall fails with EPERM. What is left out
on purpose: keyring calls (``keyctl``, ``add_key``, ``request_key``), ``userfaultfd``, ``io_uring_*``,
``kexec_*``, swap, the obsolete and unimplemented calls. Some calls are allowed only with a
capability, so ``--cap-add`` widens the profile as it does in Docker: mounts and namespaces
(``mount``, ``umount2``, ``pivot_root``, ``unshare``, ``setns``, the new mount API), ``bpf``,
``perf_event_open``, ``fanotify_init`` and ``quotactl`` need CAP_SYS_ADMIN; ``clone`` without it must
not ask for a new namespace (CLONE_NEWUSER among them) and ``clone3``, whose flags a filter cannot
read, fails with ENOSYS so libc falls back to ``clone``; ``ptrace``, ``process_vm_*``, ``kcmp`` need
CAP_SYS_PTRACE; modules CAP_SYS_MODULE; ``reboot`` CAP_SYS_BOOT; clock setting CAP_SYS_TIME;
``ioperm``/``iopl`` CAP_SYS_RAWIO; NUMA policy calls CAP_SYS_NICE; ``chroot`` CAP_SYS_CHROOT (in the
default set). ``personality`` accepts only the harmless personas, ``socket`` refuses AF_VSOCK.

Differences from Docker's file (SECURITY.md lists them too): ``ptrace`` needs CAP_SYS_PTRACE (Docker
allows it from kernel 4.8 on); ``modify_ldt``, ``memfd_secret`` and ``migrate_pages`` are not allowed;
the filter covers the native architecture only, so 32-bit (x86/x32) syscalls of an x86_64 container
are refused (Docker also filters them by name).
"""

from __future__ import annotations

from typing import Any


def _words(text: str) -> list[str]:
    return text.split()


ALLOWED = _words(
    "accept accept4 access adjtimex alarm arch_prctl bind brk cachestat capget capset chdir chmod chown "
    "clock_getres clock_gettime clock_nanosleep close close_range connect copy_file_range creat dup dup2 "
    "dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 "
    "execve execveat exit exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod "
    "fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr "
    "fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue futex_wait futex_waitv futex_wake "
    "futimesat get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid geteuid getgid "
    "getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid "
    "getresuid getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid getxattr "
    "inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents "
    "io_pgetevents io_setup io_submit ioctl ioprio_get ioprio_set kill landlock_add_rule "
    "landlock_create_ruleset landlock_restrict_self lchown lgetxattr link linkat listen listxattr "
    "llistxattr lremovexattr lseek lsetxattr lstat madvise map_shadow_stack membarrier memfd_create "
    "mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify "
    "mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock "
    "munlockall munmap nanosleep newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe "
    "pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64 "
    "process_mrelease pselect6 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv "
    "recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall "
    "rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend "
    "rt_sigtimedwait rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity "
    "sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval sched_setaffinity "
    "sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop "
    "semtimedop sendfile sendmmsg sendmsg sendto set_robust_list set_thread_area set_tid_address "
    "setdomainname setfsgid setfsuid setgid setgroups sethostname setitimer setpgid setpriority setregid "
    "setresgid setresuid setreuid setrlimit setsid setsockopt setuid setxattr shmat shmctl shmdt shmget "
    "shutdown sigaltstack signalfd signalfd4 socketpair splice stat statfs statx symlink symlinkat sync "
    "sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun "
    "timer_gettime timer_settime timerfd_create timerfd_gettime timerfd_settime times tkill truncate "
    "umask uname unlink unlinkat utime utimensat utimes vfork vmsplice wait4 waitid write writev"
)
"""Allowed for every container, whatever its capabilities."""

BY_CAPABILITY = {
    "CAP_SYS_ADMIN": _words(
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr "
        "move_mount name_to_handle_at open_tree perf_event_open pivot_root quotactl quotactl_fd setns "
        "umount2 unshare"
    ),
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": _words("create_module delete_module finit_module get_kernel_syms init_module query_module"),
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": _words("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"),
    "CAP_SYS_RAWIO": ["ioperm", "iopl"],
    "CAP_SYS_TIME": ["clock_adjtime", "clock_settime", "settimeofday"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": _words("get_mempolicy mbind migrate_pages move_pages set_mempolicy set_mempolicy_home_node"),
    "CAP_SYSLOG": ["syslog"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}
"""Allowed when the container holds the capability (Docker's ``includes.caps``)."""

CLONE_NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET."""
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
"""PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query."""
AF_VSOCK = 40
ENOSYS = 38


def profile() -> dict[str, Any]:
    """The default profile as a Docker-format document (the compiler reads both the same way)."""
    no_admin = {"caps": ["CAP_SYS_ADMIN"]}
    syscalls: list[dict[str, Any]] = [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}]
    syscalls += [
        {"names": names, "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}
        for cap, names in BY_CAPABILITY.items()
    ]
    syscalls += [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}
        for p in PERSONALITIES
    ]
    syscalls += [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]},
        {
            "names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": no_admin,
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS, "excludes": no_admin},
    ]  # fmt: skip
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": syscalls}
