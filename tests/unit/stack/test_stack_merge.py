"""Merging several -c files, as docker merges them: later files win, key by key."""

from __future__ import annotations

from pathlib import Path

from shoal.stack.loader import load_stack

BASE = """
services:
  web:
    image: nginx:1.25
    command: ["nginx", "-g", "daemon off;"]
    environment: {A: "1", B: "2"}
    labels: [tier=front]
    ports: ["80:80", "443:443"]
    volumes: ["data:/data", "./conf:/etc/nginx:ro"]
    secrets: [tls]
    cap_add: [NET_ADMIN]
    logging: {driver: json-file, options: {max-size: 10m}}
    healthcheck: {test: ["CMD", "true"], interval: 10s}
    deploy:
      replicas: 2
      labels: {a: "1"}
      placement: {constraints: [node.role == worker]}
      resources: {limits: {memory: 256M, cpus: "0.5"}}
      update_config: {parallelism: 1, delay: 5s}
  db:
    image: postgres
volumes:
  data:
secrets:
  tls: {file: ./tls.pem}
networks:
  front: {driver: overlay}
"""

OVERRIDE = """
services:
  web:
    image: nginx:1.27
    command: nginx -T
    environment: [B=two, C=3]
    labels: {team: web}
    ports: ["80:80", "8080:8080"]
    volumes: ["/srv/conf:/etc/nginx"]
    secrets: [{source: tls, target: cert.pem}]
    cap_add: [SYS_TIME]
    logging: {options: {max-file: "3"}}
    healthcheck: {test: ["CMD", "false"]}
    deploy:
      replicas: 5
      placement: {constraints: [node.labels.zone == a]}
      resources: {limits: {memory: 512M}}
      update_config: {order: start-first}
  cache:
    image: redis
secrets:
  tls: {file: ./other.pem}
networks:
  front: {driver: overlay, attachable: true}
"""


def load(tmp_path: Path, *texts: str):
    files = []
    for i, text in enumerate(texts):
        f = tmp_path / f"f{i}.yml"
        f.write_text(text)
        files.append(f)
    (tmp_path / "tls.pem").write_text("x")
    (tmp_path / "other.pem").write_text("y")
    return load_stack(files, environ={}).compose


def test_later_files_win_key_by_key(tmp_path):
    web = load(tmp_path, BASE, OVERRIDE).services["web"]
    assert web.image == "nginx:1.27"
    assert web.command == ["nginx", "-T"]  # a command is replaced, not appended
    assert web.environment == {"A": "1", "B": "two", "C": "3"}
    assert web.labels == {"tier": "front", "team": "web"}
    assert web.healthcheck.test == ["CMD", "false"] and web.healthcheck.interval == 10 * 10**9
    assert web.deploy.replicas == 5 and web.deploy.labels == {"a": "1"}
    assert web.deploy.resources.limits.memory == 512 << 20 and web.deploy.resources.limits.cpus == 500_000_000
    assert web.deploy.update_config.parallelism == 1 and web.deploy.update_config.order == "start-first"


def test_lists_merge_as_docker_merges_them(tmp_path):
    web = load(tmp_path, BASE, OVERRIDE).services["web"]
    assert [(p.published, p.target) for p in web.port_list()] == [(80, 80), (443, 443), (8080, 8080)]
    assert [(m.target, m.source) for m in web.volumes] == [("/data", "data"), ("/etc/nginx", "/srv/conf")]  # by target
    assert [(s.source, s.target) for s in web.secrets] == [("tls", "cert.pem")]  # by source
    assert web.cap_add == ["NET_ADMIN", "SYS_TIME"]  # appended
    assert web.deploy.placement.constraints == ["node.role == worker", "node.labels.zone == a"]  # appended


def test_logging_options_merge_for_the_same_driver(tmp_path):
    web = load(tmp_path, BASE, OVERRIDE).services["web"]
    assert web.logging.driver == "json-file" and web.logging.options == {"max-size": "10m", "max-file": "3"}
    other = load(tmp_path, BASE, "services:\n  web:\n    logging: {driver: syslog}\n").services["web"]
    assert other.logging.driver == "syslog" and other.logging.options == {}


def test_services_and_top_level_objects_are_added_or_replaced_by_name(tmp_path):
    stack = load(tmp_path, BASE, OVERRIDE)
    assert sorted(stack.services) == ["cache", "db", "web"]
    assert stack.secrets["tls"].file == str(tmp_path / "other.pem")
    assert stack.networks["front"].attachable is True
    assert stack.services["db"].image == "postgres"


def test_keys_a_later_file_does_not_set_are_kept(tmp_path):
    web = load(tmp_path, BASE, "services:\n  web:\n    deploy:\n      replicas: 1\n").services["web"]
    assert web.image == "nginx:1.25" and web.deploy.resources.limits.memory == 256 << 20 and web.deploy.replicas == 1


def test_an_override_may_complete_a_service_the_base_left_without_image(tmp_path):
    stack = load(tmp_path, "services:\n  job:\n    command: [run]\n", "services:\n  job:\n    image: busybox\n")
    assert stack.services["job"].image == "busybox" and stack.services["job"].command == ["run"]


def test_three_files_merge_in_order(tmp_path):
    stack = load(tmp_path, "services:\n  a:\n    image: x:1\n", "services:\n  a:\n    image: x:2\n", "services:\n  a:\n    image: x:3\n")
    assert stack.services["a"].image == "x:3"
