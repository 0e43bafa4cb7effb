"""svc inspect --pretty: mounts and container options after docker's layout."""

from __future__ import annotations

from shoal.cli.service_views import pretty_service
from shoal.proto import types_pb2 as pb


def test_pretty_shows_mounts_and_the_options_that_are_set() -> None:
    c = pb.ContainerSpec(
        image="busybox", hostname="{{.Service.Name}}", read_only=True, cap_add=["NET_ADMIN"], stop_signal="SIGUSR1",
        ulimits=[pb.Ulimit(name="nofile", soft=1, hard=2)], sysctls={"net.core.somaxconn": "64"},
        dns_config=pb.DNSConfig(nameservers=["10.0.0.2"]),
        mounts=[pb.Mount(source="data", target="/data", volume_nocopy=True),
                pb.Mount(type=pb.Mount.TMPFS, target="/t", tmpfs_size_bytes=1024, tmpfs_mode=0o700)],
    )  # fmt: skip
    text = pretty_service(pb.Service(id="s1", spec=pb.ServiceSpec(name="web", container=c)))
    assert " Hostname:        {{.Service.Name}}" in text and " Read Only:       true" in text
    assert " Capability Add:  NET_ADMIN" in text and " Ulimits:         nofile=1:2" in text
    assert "Mounts:\n Target = /data\n  Source = data\n  ReadOnly = false\n  Type = volume\n  VolumeNoCopy = true" in text
    assert " Target = /t\n  ReadOnly = false\n  Type = tmpfs\n  SizeBytes = 1024\n  Mode = 700" in text
    plain = pretty_service(pb.Service(id="s2", spec=pb.ServiceSpec(name="x", container=pb.ContainerSpec(image="busybox"))))
    assert "Mounts:" not in plain and "Read Only" not in plain


def test_pretty_shows_the_log_driver_and_its_options_as_docker_does() -> None:
    c = pb.ContainerSpec(image="busybox", log_driver="json-file", log_options={"max-size": "10m", "max-file": "3"})
    text = pretty_service(pb.Service(id="s1", spec=pb.ServiceSpec(name="web", container=c)))
    assert "Log Driver:\n Name:\t\tjson-file\n LogOpts:\n  max-file:\t\t3\n  max-size:\t\t10m" in text
    only = pretty_service(pb.Service(id="s2", spec=pb.ServiceSpec(name="x", container=pb.ContainerSpec(image="busybox", log_options={"max-size": "1m"}))))
    assert "Log Driver:\n LogOpts:\n  max-size:\t\t1m" in only and "Name:\t\t" not in only
    plain = pretty_service(pb.Service(id="s3", spec=pb.ServiceSpec(name="x", container=pb.ContainerSpec(image="busybox"))))
    assert "Log Driver" not in plain


def test_pretty_follows_dockers_order_and_shows_files_health_and_the_rollback_order() -> None:
    """Labels as a block, Replicas under Service Mode before UpdateStatus (an update in progress once put its
    section between them, so " Replicas:" read as part of it), the Configs and Secrets a service mounts,
    the health check, and "Rollback order" in RollbackConfig -- docker's `service inspect --pretty`."""
    c = pb.ContainerSpec(
        image="busybox", configs=[pb.ConfigReference(config_name="appconf", file=pb.FileTarget(name="/etc/app.conf"))],
        secrets=[pb.SecretReference(secret_name="dbpass", file=pb.FileTarget(name="dbpass"))],
        healthcheck=pb.HealthCheck(test=["CMD-SHELL", "true"], interval_ns=2 * 10**9, retries=3, timeout_ns=10**9),
    )  # fmt: skip
    spec = pb.ServiceSpec(name="web", replicas=3, labels={"tier": "front", "flag": ""}, container=c)
    spec.rollback_config.order = pb.UpdateConfig.START_FIRST
    spec.resources.limits.pids = 100
    svc = pb.Service(id="s1", spec=spec, update_status=pb.UpdateStatus(state=pb.UpdateStatus.UPDATING, message="update in progress"))
    text = pretty_service(svc)
    assert "Name:           web\nLabels:\n flag\n tier=front\nService Mode:   Replicated\n Replicas:      3\nUpdateStatus:\n State:" in text
    assert "Configs:\n Target:\t/etc/app.conf\n  Source:\tappconf\nSecrets:\n Target:\tdbpass\n  Source:\tdbpass" in text
    assert " Healthcheck:\n  Interval = 2s\n  Retries = 3\n  StartPeriod = 0s\n  Timeout = 1s\n  Tests:\n\t Test = CMD-SHELL\n\t Test = true" in text
    assert " Update order:      stop-first" in text and " Rollback order:    start-first" in text and "  PIDs:" in text
    plain = pretty_service(pb.Service(id="s2", spec=pb.ServiceSpec(name="x", container=pb.ContainerSpec(image="busybox"))))
    assert not any(k in plain for k in ("Labels:", "Configs:", "Secrets:", "Healthcheck:", "UpdateStatus:"))


def test_pretty_shows_init_only_when_it_was_given_as_docker_does() -> None:
    def init_line(**kw: bool) -> list[str]:
        spec = pb.ServiceSpec(name="x", container=pb.ContainerSpec(image="busybox", **kw))
        return [" ".join(line.split()) for line in pretty_service(pb.Service(id="s", spec=spec)).splitlines() if "Init" in line]

    assert init_line() == []
    assert init_line(init=False) == ["Init: false"]
    assert init_line(init=True) == ["Init: true"]
