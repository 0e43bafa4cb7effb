"""Loading stack files from disk: missing, unreadable and binary files, .env trouble, several files at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.stack.errors import StackError
from shoal.stack.loader import load_stack, unsupported_warning

GOOD = "services:\n  web:\n    image: nginx\n"


def problems(files, **kw) -> list[str]:
    with pytest.raises(StackError) as info:
        load_stack(files, **kw)
    return [str(p) for p in info.value.problems]


def test_a_missing_file_is_named(tmp_path):
    assert problems([tmp_path / "nope.yml"], environ={}) == [f"{tmp_path / 'nope.yml'}: cannot read the stack file: No such file or directory"]


def test_a_binary_file_is_named(tmp_path):
    (tmp_path / "s.yml").write_bytes(b"\xff\xfe\x00binary")
    assert problems([tmp_path / "s.yml"], environ={}) == [f"{tmp_path / 's.yml'}: not a text file (expected UTF-8 YAML)"]


def test_an_unreadable_dotenv_is_a_problem(tmp_path):
    (tmp_path / ".env").mkdir()
    (tmp_path / "s.yml").write_text(GOOD)
    out = problems([tmp_path / "s.yml"], environ={})
    assert len(out) == 1 and out[0].startswith(f"{tmp_path / '.env'}:1:1: cannot read:")


def test_problems_of_every_file_come_together(tmp_path):
    (tmp_path / "a.yml").write_text("services:\n  web:\n    imag: nginx\n")
    (tmp_path / "b.yml").write_text("services:\n  web:\n    deploy: {replicas: x}\n")
    assert problems([tmp_path / "a.yml", tmp_path / "b.yml"], environ={}) == [
        f"{tmp_path / 'a.yml'}:3:5: services.web: unknown key 'imag' (did you mean 'image'?)",
        f"{tmp_path / 'b.yml'}:3:24: services.web.deploy.replicas: expected a whole number, got 'x'",
    ]


def test_a_problem_after_merging_points_into_the_file_that_wrote_the_key(tmp_path):
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "b.yml").write_text("services:\n  web:\n    networks: [front]\n")
    assert problems([tmp_path / "a.yml", tmp_path / "b.yml"], environ={}) == [
        f"{tmp_path / 'b.yml'}:3:16: services.web.networks: network 'front' is not declared in the top-level networks: section"
    ]


def test_relative_paths_are_taken_from_the_first_files_folder(tmp_path, monkeypatch):
    sub = tmp_path / "deploy"
    sub.mkdir()
    (sub / "s.yml").write_text("services:\n  web:\n    image: nginx\n    env_file: web.env\n    volumes: ['./html:/html']\n")
    (sub / "web.env").write_text("A=1\n")
    monkeypatch.chdir(tmp_path)
    web = load_stack(["deploy/s.yml"], environ={}).compose.services["web"]
    assert web.environment == {"A": "1"} and web.volumes[0].source == str(sub / "html")


def test_an_environment_value_wins_over_the_env_file(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    env_file: [a.env]\n    environment: {A: mine, C: null}\n")
    (tmp_path / "a.env").write_text("A=file\nB=file\n")
    web = load_stack([tmp_path / "s.yml"], environ={"C": "shell"}).compose.services["web"]
    assert web.environment == {"A": "mine", "B": "file", "C": "shell"}


def test_an_env_file_path_with_a_nul_byte_is_one_clear_problem(tmp_path):
    """Found by the fuzz test: such a path made Path.resolve raise ValueError out of load_stack."""
    (tmp_path / "s.yml").write_text('services:\n  web:\n    image: nginx\n    env_file: ["a\\0.env"]\n')
    with pytest.raises(StackError) as exc:
        load_stack([tmp_path / "s.yml"], environ={})
    assert "cannot read env file 'a\\x00.env': embedded null byte" in str(exc.value)


def test_top_level_keys_stacks_do_not_use_are_warned_about(tmp_path):
    (tmp_path / "s.yml").write_text("name: shop\n" + GOOD)
    stack = load_stack([tmp_path / "s.yml"], environ={})
    assert stack.warnings == ["Ignoring unsupported options: name"]


def test_the_warning_names_services():
    assert unsupported_warning({"build": {"web"}, "links": {"db", "web"}, "name": set()}) == (
        "Ignoring unsupported options: build (service: web), links (services: db, web), name"
    )


def test_no_file_at_all_is_a_programming_error():
    with pytest.raises(ValueError):
        load_stack([])


def test_extension_keys_are_ignored_everywhere(tmp_path):
    (tmp_path / "s.yml").write_text(
        "x-top: 1\nservices:\n  web:\n    x-note: hi\n    image: nginx\n    deploy:\n      x-d: 1\n      replicas: 1\nnetworks:\n  n:\n    x-n: 1\n"
    )
    assert load_stack([tmp_path / "s.yml"], environ={}).compose.services["web"].deploy.replicas == 1


@pytest.mark.parametrize("version", ["'3'", "3", "3.8", "'3.14'"])
def test_version_3_in_any_form(tmp_path, version):
    (tmp_path / "s.yml").write_text(f"version: {version}\n" + GOOD)
    assert load_stack([tmp_path / "s.yml"], environ={}).compose.version.startswith("3")


def test_a_file_with_only_version_has_no_services(tmp_path):
    (tmp_path / "s.yml").write_text("version: '3.8'\nservices:\n")
    assert load_stack([tmp_path / "s.yml"], environ={}).compose.services == {}


def test_file_paths_of_secrets_and_configs_become_absolute(tmp_path):
    (tmp_path / "pw").write_text("x")
    (tmp_path / "s.yml").write_text(GOOD + "secrets:\n  pw: {file: pw}\nconfigs:\n  c: {file: ./pw}\n")
    stack = load_stack([tmp_path / "s.yml"], environ={}).compose
    assert stack.secrets["pw"].file == str(tmp_path / "pw") and stack.configs["c"].file == str(tmp_path / "pw")


def test_the_loader_reads_through_the_given_reader():
    files = {"s.yml": GOOD}
    stack = load_stack([Path("s.yml")], environ={}, read=lambda p: files[p.name] if p.name in files else (_ for _ in ()).throw(FileNotFoundError(p)))
    assert stack.compose.services["web"].image == "nginx" and stack.files == ["s.yml"]
