"""``shoal stack config``: the merged, interpolated stack printed, or every problem and exit 1."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from shoal.cli.main import main
from shoal.stack.loader import load_stack

CORPUS = Path(__file__).parent / "corpus"


def run(args, env=None):
    return CliRunner().invoke(main, args, env=env or {})


def test_config_prints_the_merged_interpolated_stack(tmp_path):
    (tmp_path / "stack.yml").write_text("services:\n  web:\n    image: nginx:${TAG:-1}\n    ports: ['8080:80']\n")
    (tmp_path / "override.yml").write_text("services:\n  web:\n    deploy: {replicas: 2}\n")
    res = run(["stack", "config", "-c", str(tmp_path / "stack.yml"), "-c", str(tmp_path / "override.yml")], {"TAG": "1.25"})
    assert res.exit_code == 0, res.output
    assert "image: nginx:1.25" in res.output
    assert "replicas: 2" in res.output
    assert "published: 8080" in res.output


def test_config_output_loads_back_to_the_same_stack(tmp_path):
    res = run(["stack", "config", "-c", str(CORPUS / "good" / "everything.yml")], {"FROM_SHELL": "yes", "API_KEY": "k"})
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith("Ignoring unsupported options: depends_on.restart (service: api)")
    out = tmp_path / "rendered.yml"
    out.write_text(res.stdout)
    again = load_stack([out], environ={"FROM_SHELL": "yes", "API_KEY": "k"})
    first = load_stack([CORPUS / "good" / "everything.yml"], environ={"FROM_SHELL": "yes", "API_KEY": "k"})
    assert again.compose.model_dump() == first.compose.model_dump()


def test_config_with_problems_prints_them_all_and_exits_1(monkeypatch):
    monkeypatch.chdir(CORPUS / "bad")
    res = run(["stack", "config", "-c", "many_errors.yml"])
    assert res.exit_code == 1
    assert "many_errors.yml:5:7: services.web.deploy: unknown key 'replicass' (did you mean 'replicas'?)" in res.output
    assert "many_errors.yml:9:5: services.db: unknown key 'imagee' (did you mean 'image'?)" in res.output
    assert "the stack has 4 problems; nothing was deployed" in res.output


def test_unsupported_keys_give_one_warning(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    build: .\n    links: [db]\n  db:\n    image: pg\n    links: [web]\n")
    res = run(["stack", "config", "-c", str(tmp_path / "s.yml")])
    assert res.exit_code == 0
    assert "Ignoring unsupported options: build (service: web), links (services: db, web)" in res.output


def test_config_needs_a_file():
    res = run(["stack", "config"])
    assert res.exit_code == 2 and "compose file" in res.output

