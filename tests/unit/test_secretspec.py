"""Secrets and configs: docker's name and size rules, --secret parsing, reference checks and paths."""

from __future__ import annotations

import pytest

from shoal import secretspec, spec
from shoal.proto import types_pb2 as pb
from shoal.secretspec import SecretSpecError


@pytest.mark.parametrize("name", ["a", "db_password", "x.y-z_1", "A" * 64])
def test_valid_names(name: str) -> None:
    secretspec.check_name("secret", name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "_a", "a b", "a/b", "a\n", "A" * 65, "é"])
def test_invalid_names_are_refused_naming_the_rule(name: str) -> None:
    with pytest.raises(SecretSpecError, match=r"invalid secret name .*64 \[a-zA-Z0-9-_.\] characters"):
        secretspec.check_name("secret", name)


def test_size_limit_is_dockers_500_kib_exclusive() -> None:
    secretspec.check_data("secret", b"x")
    secretspec.check_data("secret", b"x" * (500 * 1024 - 1))
    with pytest.raises(SecretSpecError, match="less than 512000 bytes"):
        secretspec.check_data("secret", b"x" * (500 * 1024))
    with pytest.raises(SecretSpecError, match="config data must be larger than 0"):
        secretspec.check_data("config", b"")


def test_short_form_takes_defaults() -> None:
    name, f = secretspec.parse_ref("secret", "db")
    assert (name, f.name, f.uid, f.gid, f.mode) == ("db", "db", "0", "0", 0o444)


def test_long_form_with_every_field() -> None:
    name, f = secretspec.parse_ref("secret", "source=db,target=pw,uid=1000,gid=50,mode=0400")
    assert (name, f.name, f.uid, f.gid, f.mode) == ("db", "pw", "1000", "50", 0o400)
    assert secretspec.parse_ref("config", "src=app")[0] == "app"


@pytest.mark.parametrize(
    "text, error",
    [
        ("target=x", "source is required"),
        ("source=db,mode=999", "invalid mode '999'"),
        ("source=db,mode=1777", "at most 0777"),
        ("source=db,uid=root", "invalid uid 'root'"),
        ("source=db,gid=-1", "invalid gid"),
        ("source=db,colour=red", "invalid field 'colour'"),
        ("source=db,readonly", "expected key=value"),
    ],
)
def test_bad_references_give_one_clear_error(text: str, error: str) -> None:
    with pytest.raises(SecretSpecError, match=error):
        secretspec.parse_ref("secret", text)


def test_target_paths_follow_docker() -> None:
    assert secretspec.target_path("secret", "db") == "/run/secrets/db"
    assert secretspec.target_path("secret", "/etc/app/key") == "/etc/app/key"
    assert secretspec.target_path("config", "app.conf") == "/app.conf"
    assert secretspec.target_path("config", "/etc/app.conf") == "/etc/app.conf"


@pytest.mark.parametrize("target", ["../../etc/shadow", "a/../../x", "/proc/self/x", "/dev/sda", "/sys/x", "/"])
def test_targets_that_escape_or_hit_reserved_paths_are_refused(target: str) -> None:
    with pytest.raises(SecretSpecError, match="invalid secret target"):
        secretspec.check_target("secret", target)


def _svc(**refs: list[tuple[str, str]]) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="web")
    s.container.image = "busybox"
    for name, target in refs.get("secrets", []):
        s.container.secrets.add(secret_name=name, file=pb.FileTarget(name=target))
    for name, target in refs.get("configs", []):
        s.container.configs.add(config_name=name, file=pb.FileTarget(name=target))
    return s


def test_service_spec_validation_refuses_two_files_at_one_path() -> None:
    s = _svc(secrets=[("a", "x"), ("b", "/run/secrets/x")])
    with pytest.raises(spec.SpecError, match=r"secrets: secret b: target /run/secrets/x is already used by secret a"):
        spec.validate(s)


def test_service_spec_validation_names_the_config_field() -> None:
    s = _svc(configs=[("app", "/proc/x")])
    with pytest.raises(spec.SpecError, match=r"invalid service spec: configs: invalid config target"):
        spec.validate(s)


def test_too_many_references_are_refused() -> None:
    s = _svc(secrets=[(f"s{i}", "") for i in range(secretspec.MAX_REFS + 1)])
    with pytest.raises(spec.SpecError, match="too many secrets and configs"):
        spec.validate(s)


def test_defaults_fill_target_owner_and_mode() -> None:
    s = spec.with_defaults(_svc(secrets=[("db", "")], configs=[("app", "")]))
    sref, cref = s.container.secrets[0], s.container.configs[0]
    assert (sref.file.name, sref.file.uid, sref.file.gid, sref.file.mode) == ("db", "0", "0", 0o444)
    assert cref.file.name == "app"
