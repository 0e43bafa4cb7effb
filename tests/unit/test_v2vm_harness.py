"""The cgroup-v2 VM harness' pure parts: which kernel it fetches and what of the console it shows."""

from __future__ import annotations

from tests.v2vm.run import ConsoleFilter, expand, kernel_from_depends


def test_the_kernel_is_the_one_linux_image_amd64_depends_on() -> None:
    text = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n"
    assert kernel_from_depends(text) == "6.1.0-57-amd64"
    assert kernel_from_depends("linux-image-amd64\n  Depends: linux-image-amd64\n") is None


def test_the_console_shows_pytest_progress_live_without_kernel_messages() -> None:
    f = ConsoleFilter()
    assert f.feed("[    1.000] virtio: probing\nv2vm-guest: up\n..") == "v2vm-guest: up\n.."
    assert f.feed(".F") == ".F", "progress dots appear before their line ends"
    assert f.feed("  [100%]\r\n[   80.5] reboot: Power down\n") == "  [100%]\n"
    assert f.feed("3 passed in 4") == "3 passed in 4"
    assert f.feed(".2s\n") == ".2s\n"


def test_a_line_that_may_be_a_kernel_message_waits_for_its_end() -> None:
    f = ConsoleFilter()
    assert f.feed("[   12.3") == ""
    assert f.feed("4] oom-kill\n[gw] not kernel\n") == "[gw] not kernel\n"


def test_default_test_patterns_expand_to_files_of_the_checkout() -> None:
    files = expand(["tests/integration/test_runtime*.py", "tests/e2e/test_walking_skeleton.py"])
    assert "tests/integration/test_runtime_cgroup_v2.py" in files
    assert "tests/integration/test_runtime_limits.py" in files
    assert files[-1] == "tests/e2e/test_walking_skeleton.py"


def test_pytest_args_keep_named_tests_and_add_the_default_list_to_bare_options() -> None:
    from tests.v2vm.run import DEFAULT_TESTS, pytest_args

    defaults = expand(DEFAULT_TESTS)
    assert "tests/security/test_device_filter.py" in defaults and "tests/integration/test_lab_cgroup_tree.py" in defaults
    assert pytest_args([])[-len(defaults) :] == defaults
    assert pytest_args(["-k", "oom"]) == ["-k", "oom", *defaults], "make test-v2 ARGS='-k oom' filters the list"
    named = ["-q", "tests/integration/test_runtime_limits.py::test_oom"]
    assert pytest_args(named) == named


def test_the_walking_skeleton_tests_the_vm_runs_exist() -> None:
    """A renamed test would otherwise make the VM run fail with 'not found' only under CI."""

    from tests.v2vm.run import ROOT, WALKING_SKELETON

    text = (ROOT / "tests/e2e/test_walking_skeleton.py").read_text()
    assert all(f"def {name}(" in text for name in WALKING_SKELETON)


def test_make_test_gates_the_whole_runtime_suite_the_skeleton_and_a_v2_lab_each_file_once() -> None:
    """Issue 12: the runtime integration tests, the walking skeleton's container tests and a lab of
    1 manager + 2 workers run on cgroup v2 in make test, not only on request."""
    from tests.v2vm.run import DEFAULT_TESTS, WALKING_SKELETON

    gated = expand(DEFAULT_TESTS)
    assert len(gated) == len(set(gated)), "test_runtime_*.py names the twins file listed before it"
    runtime = {f for f in expand(["tests/integration/test_runtime*.py"])}
    assert runtime <= set(gated), f"runtime files the VM does not run: {sorted(runtime - set(gated))}"
    assert {f"tests/e2e/test_walking_skeleton.py::{t}" for t in WALKING_SKELETON} <= set(gated)
    assert "tests/e2e/test_lab_v2.py" in gated


def test_the_accounting_report_sums_cpu_by_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.v2vm import acct

    def rec(comm: bytes, utime: int, stime: int) -> bytes:  # ticks of 1/100 s, as comp_t
        return acct.RECORD.pack(0, 3, 0, 0, 0, 0, 1, 1, 0, 250.0, utime, stime, 0, 0, 0, 0, 0, 0, comm)

    assert acct.comp_t((1 << 13) | 5) == 40, "exponent 1: mantissa x 8"
    path = tmp_path / "acct"
    path.write_bytes(rec(b"shoal", 150, 50) + rec(b"etcd", 30, 0) + rec(b"shoal", 100, 0))
    lines = acct.report(str(path)).splitlines()
    assert lines[0] == "3 processes exited, 3.3 s of CPU in all; by command:"
    assert lines[1].split() == ["3.0", "s", "cpu", "2", "procs", "5.0", "s", "alive", "shoal"]
    assert lines[2].split()[-1] == "etcd"


def test_the_guest_end_kills_what_the_tests_left_but_not_the_guests_own_processes() -> None:
    from tests.v2vm.guestend import leftovers

    table = {
        1: (0, "/venv/virtme-ng-init"),
        2: (0, ""),  # kthreadd
        30: (2, ""),  # a kernel thread
        115: (1, "/bin/sh /run/tmp/.virtme-script"),
        120: (115, "sh /work/build/v2vm/guest.sh ..."),
        400: (120, "/work/.venv/bin/python tests/v2vm/guestend.py out"),
        300: (1, "python3 -E -s -m shoal.runtime.launcher --state-dir /tmp/x"),  # a launcher orphaned by its test
        301: (300, "sleep 600"),
    }
    assert leftovers(table, me=400) == [300, 301]
    assert leftovers({k: v for k, v in table.items() if k not in (300, 301)}, me=400) == []


def test_the_guest_end_keeps_the_launcher_logs_that_show_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.v2vm.guestend import launcher_logs

    (tmp_path / "t1").mkdir()
    (tmp_path / "t2").mkdir()
    (tmp_path / "t1" / "launcher.log").write_text("".join(f"line {i}\n" for i in range(40)) + "Traceback: boom\n")
    (tmp_path / "t2" / "launcher.log").write_text("launcher ready\nlauncher exiting\n")
    text = launcher_logs(tmp_path)
    assert text.startswith(f"== {tmp_path / 't1' / 'launcher.log'}\n")
    assert text.splitlines()[1:] == [f"line {i}" for i in range(11, 40)] + ["Traceback: boom"]
    assert launcher_logs(tmp_path / "none") == ""


def test_a_kernel_panic_stops_the_wait_and_counts_as_a_failed_boot_before_the_guest_started() -> None:
    from tests.v2vm.run import BootWatch

    w = BootWatch(0.0)
    w.feed("Memory KASLR using RDRAND RDTSC...\nPANIC: early exc")
    assert w.verdict(1.0) is None, "half a panic line is not a panic yet"
    w.feed("eption 0x06 IP 10:ffffffff9ac1e1db error 0\n")
    assert w.verdict(1.0) == "the guest kernel panicked: PANIC: early exception 0x06 IP 10:ffffffff9ac1e1db error 0"
    assert not w.started, "main() boots again only when the tests never started"


def test_a_silent_boot_times_out_long_before_the_run_deadline_and_a_started_guest_does_not() -> None:
    from tests.v2vm.run import BOOT_TIMEOUT, TIMEOUT, BootWatch

    silent = BootWatch(0.0)
    silent.feed("Probing EDD (edd=off to disable)... ok\n")
    assert silent.verdict(BOOT_TIMEOUT - 1) is None
    assert silent.verdict(BOOT_TIMEOUT + 1) == f"the guest did not start within {BOOT_TIMEOUT}s"
    running = BootWatch(0.0)
    running.feed("v2vm-guest [9.37s]: cgroup: cgroup2fs\n")
    assert running.started and running.verdict(BOOT_TIMEOUT + 1) is None
    assert running.verdict(TIMEOUT + 1) == f"the VM did not finish within {TIMEOUT}s"
    running.feed("[  300.1] Kernel panic - not syncing: Out of memory\n")
    assert running.verdict(400.0) == "the guest kernel panicked: Kernel panic - not syncing: Out of memory"



def test_the_test_list_reaches_the_guest_in_a_file_pytest_reads_not_on_the_kernel_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """x86 cuts the kernel command line at 2048 bytes and virtme-ng puts the guest's command there: the default
    list under CI=true made 2054, and every boot died in the kernel's first lines."""
    import subprocess
    import sys

    from tests.v2vm.run import GUEST_ARGS, ROOT, args_file_text, pytest_args

    assert GUEST_ARGS == ["@.v2vm/pytest-args"], "one short reference, however long the list"
    args = pytest_args(["-k", "oom or pids_max"])
    (tmp_path / "args").write_text(args_file_text(args))

    def collected(*argv: str) -> list[str]:
        res = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *argv],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        return [line for line in res.stdout.splitlines() if "::" in line]

    from_file = collected(f"@{tmp_path / 'args'}")
    assert from_file and from_file == collected(*args)
