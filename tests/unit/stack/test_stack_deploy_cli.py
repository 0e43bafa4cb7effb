"""``shoal stack deploy|ls|services|ps|rm`` against the in-memory control stub.

The stub fills in the manager's defaults on create and update, as the real control API does, so a
re-deploy of an unchanged file must send no update at all.
"""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from shoal.cli.main import main
from shoal.proto import control_pb2, types_pb2
from shoal.spec import with_defaults
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, run

STACK = """
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    deploy: {replicas: 2}
  db:
    image: postgres:16
    environment: {POSTGRES_DB: shop}
"""


class DefaultingStub(FakeStub):
    """A FakeStub that stores specs with the manager's defaults, as the control API does.

    A deploy sends calls from several threads: one lock keeps the fake's dicts consistent.
    """

    def __init__(self, network_api: bool = True) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.network_api = network_api
        self.networks: dict[str, types_pb2.Network] = {}

    def _networks_or_unimplemented(self, name, req):
        self._record(name, req)
        if not self.network_api:
            raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")

    def ListNetworks(self, req):
        self._networks_or_unimplemented("ListNetworks", req)
        return control_pb2.ListNetworksResponse(networks=list(self.networks.values()))

    def CreateNetwork(self, req):
        self._networks_or_unimplemented("CreateNetwork", req)
        net = types_pb2.Network(id=f"net{len(self.networks):022d}", spec=req.spec)
        self.networks[net.id] = net
        return control_pb2.CreateNetworkResponse(network=net)

    def RemoveNetwork(self, req):
        self._networks_or_unimplemented("RemoveNetwork", req)
        del self.networks[req.network_id]
        return control_pb2.RemoveNetworkResponse()


    def CreateService(self, req):
        with self.lock:
            req.spec.CopyFrom(with_defaults(req.spec))
            self._store_network_ids(req.spec)
            return super().CreateService(req)

    def _store_network_ids(self, spec):
        """The control API stores a network attachment by the network's id, as the contract says."""
        ids = {n.spec.name: n.id for n in self.networks.values()}
        for att in spec.networks:
            att.target = ids.get(att.target, att.target)

    def UpdateService(self, req):
        with self.lock:
            req.spec.CopyFrom(with_defaults(req.spec))
            self._store_network_ids(req.spec)
            return super().UpdateService(req)

    def RemoveService(self, req):
        with self.lock:
            return super().RemoveService(req)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "stack.yml").write_text(STACK)
    return tmp_path


def deploy(fake, files, *extra):
    return run(fake, "stack", "deploy", "-c", str(files / "stack.yml"), *extra, "shop")


def test_deploy_creates_each_service_with_the_stack_label(files):
    fake = DefaultingStub()
    res = deploy(fake, files)
    assert res.exit_code == 0, res.output
    created = {r.spec.name: r.spec for r in fake.called("CreateService")}
    assert sorted(created) == ["shop_db", "shop_web"]
    assert created["shop_web"].labels["com.docker.stack.namespace"] == "shop"
    assert created["shop_web"].container.labels["com.docker.stack.namespace"] == "shop"
    assert created["shop_web"].replicas == 2 and created["shop_web"].ports[0].published_port == 8080
    assert "Creating service shop_web" in res.output


def test_redeploying_an_unchanged_file_changes_nothing(files):
    fake = DefaultingStub()
    deploy(fake, files)
    fake.calls.clear()
    res = deploy(fake, files)
    assert res.exit_code == 0, res.output
    assert fake.called("CreateService") == [] and fake.called("UpdateService") == [] and fake.called("RemoveService") == []


def test_redeploy_updates_only_the_changed_service(files):
    fake = DefaultingStub()
    deploy(fake, files)
    (files / "stack.yml").write_text(STACK.replace("nginx:1.25", "nginx:1.27").replace("replicas: 2", "replicas: 3"))
    fake.calls.clear()
    res = deploy(fake, files)
    assert res.exit_code == 0, res.output
    updated = fake.called("UpdateService")
    assert [u.spec.name for u in updated] == ["shop_web"]
    assert updated[0].spec.container.image == "nginx:1.27" and updated[0].spec.replicas == 3
    assert updated[0].version == 1  # the version that was read: a concurrent change is refused


def test_dry_run_prints_field_changes_and_sends_nothing(files):
    fake = DefaultingStub()
    deploy(fake, files)
    (files / "stack.yml").write_text(STACK.replace("nginx:1.25", "nginx:1.27").replace("  db:\n    image: postgres:16\n    environment: {POSTGRES_DB: shop}\n", "  cache:\n    image: redis\n"))
    fake.calls.clear()
    res = deploy(fake, files, "--dry-run", "--prune")
    assert res.exit_code == 0, res.output
    assert [n for n, _ in fake.calls] == ["ListServices", "ListNetworks", "ListSecrets", "ListConfigs"]  # reads only
    assert "+ service shop_cache: create" in res.output
    assert "~ service shop_web: update" in res.output
    assert '    container.image: "nginx:1.25" => "nginx:1.27"' in res.output
    assert '    labels.com.docker.stack.image: "nginx:1.25" => "nginx:1.27"' in res.output
    assert "- service shop_db: remove" in res.output
    assert "  network shop_default: unchanged" in res.output


def test_services_gone_from_the_file_are_removed_only_with_prune(files):
    fake = DefaultingStub()
    deploy(fake, files)
    (files / "stack.yml").write_text("services:\n  web:\n    image: nginx:1.25\n    ports: ['8080:80']\n    deploy: {replicas: 2}\n")
    res = deploy(fake, files)
    assert res.exit_code == 0 and fake.called("RemoveService") == []
    assert "Service shop_db is not in the stack file; kept (use --prune to remove it)" in res.output
    res = deploy(fake, files, "--prune")
    assert res.exit_code == 0, res.output
    assert len(fake.called("RemoveService")) == 1 and "Removing service shop_db" in res.output
    assert sorted(s.spec.name for s in fake.services.values()) == ["shop_web"]


def test_a_broken_file_deploys_nothing(files):
    (files / "stack.yml").write_text(STACK + "  api:\n    image: x\n    deploy: {replicass: 1}\n")
    fake = DefaultingStub()
    res = deploy(fake, files)
    assert res.exit_code == 1
    assert "services.api.deploy: unknown key 'replicass' (did you mean 'replicas'?)" in res.output
    assert fake.calls == []


def test_an_invalid_stack_name_is_refused_before_anything_is_sent(files):
    fake = DefaultingStub()
    res = run(fake, "stack", "deploy", "-c", str(files / "stack.yml"), "-bad name")
    assert res.exit_code != 0 and fake.called("CreateService") == []


def test_applied_features_are_not_named_as_pending(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    read_only: true\n    secrets: [pw]\nsecrets:\n  pw: {external: true}\n")
    fake = DefaultingStub()
    fake.secrets["s1"] = types_pb2.Secret(id="s1", spec=types_pb2.SecretSpec(name="pw"))
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 0, res.output
    assert "Not applied yet" not in res.output, "read_only and secrets are applied: not listed"


SECRET_STACK = """
services:
  web:
    image: nginx
    secrets: [pw, {source: key, target: /etc/app/key, mode: 0400, uid: "101"}]
    configs: [app, {source: inline, target: /etc/inline.conf}]
secrets:
  pw: {file: ./pw.txt}
  key: {environment: APP_KEY}
  ext: {external: true, name: shared_pw}
configs:
  app: {file: ./app.conf}
  inline: {content: "debug = true"}
"""


def test_deploy_creates_the_stacks_secrets_and_configs_labelled_and_references_them(tmp_path, monkeypatch):
    (tmp_path / "s.yml").write_text(SECRET_STACK)
    (tmp_path / "pw.txt").write_bytes(b"hunter2")
    (tmp_path / "app.conf").write_text("port = 80\n")
    monkeypatch.setenv("APP_KEY", "k3y")
    fake = DefaultingStub()
    fake.secrets["x"] = types_pb2.Secret(id="x", spec=types_pb2.SecretSpec(name="shared_pw"))
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 0, res.output
    created = {r.spec.name: (r.spec.data, dict(r.spec.labels)) for r in fake.called("CreateSecret")}
    assert created == {"app_pw": (b"hunter2", {"com.docker.stack.namespace": "app"}), "app_key": (b"k3y", {"com.docker.stack.namespace": "app"})}
    configs = {r.spec.name: r.spec.data for r in fake.called("CreateConfig")}
    assert configs == {"app_app": b"port = 80\n", "app_inline": b"debug = true"}
    (req,) = fake.called("CreateService")
    got = [(r.secret_name, r.file.name, r.file.uid, r.file.mode) for r in req.spec.container.secrets]
    assert got == [("app_pw", "/run/secrets/pw", "0", 0o444), ("app_key", "/etc/app/key", "101", 0o400)]
    assert [(r.config_name, r.file.name) for r in req.spec.container.configs] == [("app_app", "/app"), ("app_inline", "/etc/inline.conf")]
    # a re-deploy creates nothing again and updates nothing
    fake.calls.clear()
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 0, res.output
    assert not fake.called("CreateSecret") and not fake.called("UpdateService") and not fake.called("CreateConfig")
    # stack rm removes the stack's own secrets and configs, never the external one
    res = run(fake, "stack", "rm", "app")
    assert res.exit_code == 0, res.output
    assert [s.spec.name for s in fake.secrets.values()] == ["shared_pw"] and not fake.configs
    assert "Removing secret app_key" in res.output and "Removing config app_app" in res.output


def test_a_secret_that_cannot_be_read_or_is_missing_deploys_nothing(tmp_path, monkeypatch):
    (tmp_path / "s.yml").write_text(SECRET_STACK)
    (tmp_path / "pw.txt").write_bytes(b"x" * (500 * 1024))
    (tmp_path / "app.conf").write_text("port = 80\n")
    monkeypatch.setenv("APP_KEY", "k3y")
    fake = DefaultingStub()
    fake.secrets["x"] = types_pb2.Secret(id="x", spec=types_pb2.SecretSpec(name="shared_pw"))
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 1 and "secret app_pw: secret data must be larger than 0 and less than 512000 bytes" in res.output
    assert not fake.called("CreateSecret") and not fake.called("CreateService") and not fake.called("CreateNetwork")
    (tmp_path / "pw.txt").write_bytes(b"ok")
    del fake.secrets["x"]
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 1 and "secret shared_pw is declared as external, but could not be found" in res.output
    assert not fake.called("CreateSecret") and not fake.called("CreateService")
    monkeypatch.delenv("APP_KEY")
    fake.secrets["x"] = types_pb2.Secret(id="x", spec=types_pb2.SecretSpec(name="shared_pw"))
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 1 and "environment variable APP_KEY is not set" in res.output
    assert not fake.called("CreateSecret") and not fake.called("CreateService")


def test_dry_run_lists_secrets_to_create_and_external_ones_missing(tmp_path, monkeypatch):
    (tmp_path / "s.yml").write_text(SECRET_STACK)
    (tmp_path / "pw.txt").write_bytes(b"x")
    (tmp_path / "app.conf").write_text("x")
    fake = DefaultingStub()
    fake.secrets["k"] = types_pb2.Secret(id="k", spec=types_pb2.SecretSpec(name="app_key"))
    out = run(fake, "stack", "deploy", "--dry-run", "-c", str(tmp_path / "s.yml"), "app").output
    assert "secret app_pw: create" in out and "secret app_key: unchanged" in out
    assert "secret shared_pw: missing (external, not found: create it first)" in out
    assert not fake.called("CreateSecret")


def test_ls_services_ps_and_rm_find_the_stack_by_its_label(files):
    fake = DefaultingStub()
    deploy(fake, files)
    fake.CreateService(control_pb2.CreateServiceRequest(spec=control_pb2.CreateServiceRequest().spec.__class__(name="loner")))
    res = run(fake, "stack", "ls")
    assert res.exit_code == 0 and res.output.split("\n")[1].split() == ["shop", "2"]
    res = run(fake, "stack", "services", "shop")
    assert res.exit_code == 0 and "shop_web" in res.output and "loner" not in res.output
    res = run(fake, "stack", "services", "shop", "--filter", "name=shop_db", "-q")
    assert res.output.strip().splitlines() == [next(s.id for s in fake.services.values() if s.spec.name == "shop_db")]
    res = run(fake, "stack", "ps", "shop")
    assert res.exit_code == 0 and "shop_web.1" in res.output and "shop_web.2" in res.output and "shop_db.1" in res.output
    res = run(fake, "stack", "rm", "shop")
    assert res.exit_code == 0 and "Removing service shop_db" in res.output
    assert [s.spec.name for s in fake.services.values()] == ["loner"]
    res = run(fake, "stack", "services", "shop")
    assert res.exit_code == 1 and "Nothing found in stack: shop" in res.output


def test_detach_false_waits_until_each_service_converged(files):
    fake = DefaultingStub()
    res = deploy(fake, files, "--detach=false")
    assert res.exit_code == 0, res.output
    assert res.output.count("verify: Service converged") == 2
    assert fake.called("ListTasks"), "it polled the tasks"


def test_json_file_rotation_is_sent_and_what_is_not_applied_is_named(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    logging: {driver: json-file, options: {max-size: 1m, max-file: '4', compress: 'true'}}\n"
                                    "  api:\n    image: nginx\n    logging: {driver: syslog}\n  db:\n    image: nginx\n    logging: {options: {max-size: 5k}}\n")
    fake = DefaultingStub()
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 0, res.output
    assert "Not applied (every node writes json-file logs): app_api: log driver syslog (json-file is used); app_web: log opt compress" in res.output
    sent = {r.spec.name: r.spec.container for r in fake.called("CreateService")}
    assert (sent["app_web"].log_driver, dict(sent["app_web"].log_options)) == ("json-file", {"max-size": "1m", "max-file": "4", "compress": "true"})
    assert "app_db:" not in res.output.split("Not applied")[1].split("\n")[0], "max-size alone is applied"


def test_bad_json_file_options_are_refused_at_their_compose_key(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    logging:\n      options: {max-file: '3', max-sise: 1m}\n")
    fake = DefaultingStub()
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 1 and fake.calls == []
    assert f"{tmp_path / 's.yml'}:5:16: services.web.logging.options: unknown log opt 'max-sise' for json-file log driver" in res.output


def test_dependencies_are_created_in_an_earlier_wave(tmp_path):
    (tmp_path / "s.yml").write_text(
        "services:\n  web:\n    image: w\n    depends_on: [api]\n  api:\n    image: a\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: d\n  cache:\n    image: c\n"
    )
    fake = DefaultingStub()
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Creating service")]
    assert lines == ["Creating service app_cache", "Creating service app_db", "Creating service app_api", "Creating service app_web"]
    created = [r.spec.name for r in fake.called("CreateService")]
    assert created.index("app_db") < created.index("app_api") < created.index("app_web")


def test_a_spec_the_manager_would_refuse_is_refused_before_sending(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    deploy:\n      placement:\n        constraints: [node.role = manager]\n")
    fake = DefaultingStub()
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 1
    assert f"{tmp_path / 's.yml'}:6:22: services.web.deploy.placement.constraints: 'node.role = manager': expected KEY==VALUE or KEY!=VALUE" in res.output
    assert "the stack cannot be deployed as it is; nothing was deployed" in res.output
    assert fake.calls == []


def test_rm_reports_a_service_it_could_not_remove_and_exits_1(files):
    fake = DefaultingStub()
    deploy(fake, files)
    fake.fail["RemoveService"] = [FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "in use")]
    res = run(fake, "stack", "rm", "shop", "nothing")
    assert res.exit_code == 1
    assert "Failed to remove service shop_db: in use" in res.output and "Removing service shop_web" in res.output
    assert "Nothing found in stack: nothing" in res.output
    assert [s.spec.name for s in fake.services.values()] == ["shop_db"]


def test_ps_of_an_unknown_stack(files):
    res = run(DefaultingStub(), "stack", "ps", "nope")
    assert res.exit_code == 1 and "Nothing found in stack: nope" in res.output


def test_config_reads_stdin_once_even_when_named_twice():
    res = CliRunner().invoke(main, ["stack", "config", "-c", "-", "-c", "-"], input="services:\n  web:\n    image: nginx\n", env={})
    assert res.exit_code == 0, res.output
    assert res.output == "services:\n  web:\n    image: nginx\n"


def test_resolve_image_never_sends_no_resolve_image(files):
    fake = DefaultingStub()
    deploy(fake, files, "--resolve-image", "never")
    assert all(r.no_resolve_image for r in fake.called("CreateService"))


def test_networks_are_created_first_and_attached_by_name(files):
    fake = DefaultingStub()
    res = deploy(fake, files)
    assert res.exit_code == 0, res.output
    assert res.output.index("Creating network shop_default") < res.output.index("Creating service")
    (net,) = fake.networks.values()
    assert net.spec.name == "shop_default" and net.spec.driver == "overlay" and net.spec.labels["com.docker.stack.namespace"] == "shop"
    web = next(r.spec for r in fake.called("CreateService") if r.spec.name == "shop_web")
    assert [a.target for a in web.networks] == [net.id]  # stored by id, sent by name
    fake.calls.clear()
    res = deploy(fake, files)  # the ids stored by the API compare equal to the names in the file
    assert fake.called("UpdateService") == [] and fake.called("CreateNetwork") == []
    res = run(fake, "stack", "rm", "shop")
    assert "Removing network shop_default" in res.output and fake.networks == {}


def test_a_missing_external_network_stops_the_deploy_before_anything_is_created(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    networks: [edge]\nnetworks:\n  edge: {external: true}\n")
    fake = DefaultingStub()
    res = run(fake, "stack", "deploy", "-c", str(tmp_path / "s.yml"), "app")
    assert res.exit_code == 1 and "network edge is declared as external, but could not be found" in res.output
    assert fake.called("CreateService") == []
    plan = run(fake, "stack", "deploy", "--dry-run", "-c", str(tmp_path / "s.yml"), "app").output
    assert "! network edge: missing (external, not found: create it first)" in plan


def test_without_a_network_api_the_networks_are_named_not_created(files):
    fake = DefaultingStub(network_api=False)
    res = deploy(fake, files)
    assert res.exit_code == 0, res.output
    assert "Not created yet (the cluster has no network API so far): shop_default" in res.output
    assert len(fake.called("CreateService")) == 2
    assert run(fake, "stack", "rm", "shop").exit_code == 0


def test_rm_waits_while_the_removed_tasks_still_hold_the_network(files):
    fake = DefaultingStub()
    deploy(fake, files)
    fake.fail["RemoveNetwork"] = [FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "network shop_default is still in use")] * 2
    res = run(fake, "stack", "rm", "shop")
    assert res.exit_code == 0, res.output
    assert res.output.count("Removing network shop_default") == 1 and fake.networks == {}
    assert len(fake.called("RemoveNetwork")) == 3


def test_rm_reports_a_network_it_cannot_remove(files, monkeypatch):
    import shoal.cli.stack as stack_cli

    monkeypatch.setattr(stack_cli, "NETWORK_RELEASE_S", 0.0)
    fake = DefaultingStub()
    deploy(fake, files)
    fake.fail["RemoveNetwork"] = [FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "still in use")]
    res = run(fake, "stack", "rm", "shop")
    assert res.exit_code == 1 and "Failed to remove network shop_default: still in use" in res.output
