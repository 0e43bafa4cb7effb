"""A service's log driver and its options (docker's ``--log-driver``/``--log-opt``, compose's ``logging:``).

Every node writes a container's output as docker's json-file records (shoal.runtime.logs), so
``json-file`` (the default, also written ``""``) is the driver shoal applies: its ``max-size`` (rotate
past this many bytes, docker's units: ``10m``) and ``max-file`` (how many files to keep) reach the
node's log shim. Its other options (``compress``, ``labels``, ``env``, ``tag``...) and any other driver
are accepted, as docker accepts them, and named by ``unapplied`` so a caller can say they are not
applied rather than drop them silently. One rule set for the manager's validation, the worker and the
stack loader; pure functions, errors are LogOptError (a ValueError) naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal import units

JSON_FILE = "json-file"
APPLIED = ("max-size", "max-file")
JSON_FILE_OPTIONS = (*APPLIED, "compress", "labels", "labels-regex", "env", "env-regex", "tag")
MAX_FILES = 100


class LogOptError(ValueError):
    """An invalid log option; the message is the one line shown to the user."""


def is_json_file(driver: str) -> bool:
    return driver in ("", JSON_FILE)


def rotation(driver: str, options: Mapping[str, str]) -> tuple[int, int]:
    """``(max_size_bytes, max_files)`` to give the runtime, 0 meaning its default; LogOptError if bad."""
    if not is_json_file(driver):
        return 0, 0
    unknown = sorted(set(options) - set(JSON_FILE_OPTIONS))
    if unknown:
        raise LogOptError(f"unknown log opt '{unknown[0]}' for json-file log driver")
    size = files = 0
    if options.get("max-size", "") not in ("", "-1"):
        try:
            size = units.parse_bytes(options["max-size"])
        except units.UnitError as exc:
            raise LogOptError(f"invalid max-size {options['max-size']!r}: {exc}") from None
        if size < 1:
            raise LogOptError(f"invalid max-size {options['max-size']!r}: must be a positive size")
    if options.get("max-file", ""):
        text = options["max-file"]
        if not text.strip().isdigit() or not 1 <= int(text) <= MAX_FILES:
            raise LogOptError(f"invalid max-file {text!r}: a whole number from 1 to {MAX_FILES}")
        files = int(text)
        if files > 1 and not size:
            raise LogOptError("max-file cannot be greater than 1 when max-size is not set")
    return size, files


def unapplied(driver: str, options: Mapping[str, str]) -> list[str]:
    """What of a log configuration shoal does not apply (every node writes json-file logs)."""
    if not is_json_file(driver):
        return [f"log driver {driver} (json-file is used)"]
    return [f"log opt {key}" for key in sorted(set(options) - set(APPLIED))]
