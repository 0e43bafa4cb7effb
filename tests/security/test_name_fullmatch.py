"""Exploit (issue 11, Low): a name with a trailing newline passed every ``^...$`` check made with ``match``.

``$`` also matches before a final ``\\n``, so ``"web\\n"`` was a valid service name, ``"abc\\n"`` a
valid container id (a directory name in the runtime's state) and ``"v\\n"`` a valid volume name.
Each check must match the whole name.
"""

from __future__ import annotations

import pytest

from shoal import spec as specs
from shoal.constraints import ConstraintError, parse_constraint
from shoal.lab.state import LabError, check_name
from shoal.proto import types_pb2 as pb
from shoal.runtime.config import ContainerConfig
from shoal.runtime.errors import ConfigError
from shoal.runtime.mounts import validate as validate_mount
from shoal.runtime.spec import validate as validate_container
from shoal.stack.convert import convert_stack
from shoal.stack.errors import StackError
from shoal.stack.model_file import ComposeFile


def _service(name: str, image: str = "host") -> pb.ServiceSpec:
    s = pb.ServiceSpec(name=name, replicas=1)
    s.container.image = image
    s.container.args.extend(["sleep", "1"])
    return s


@pytest.mark.parametrize("name", ["web\n", "web\r\n", "\nweb"])
def test_a_service_name_with_a_newline_is_refused(name):
    with pytest.raises(specs.SpecError, match="name"):
        specs.validate(_service(name))


def test_an_image_reference_with_a_newline_is_refused():
    with pytest.raises(specs.SpecError, match="image"):
        specs.validate(_service("web", "busybox:latest\n"), images=frozenset())


def test_a_lab_name_with_a_newline_is_refused():
    with pytest.raises(LabError):
        check_name("lab\n")


def test_a_stack_name_with_a_newline_is_refused():
    with pytest.raises(StackError, match="invalid stack name"):
        convert_stack(ComposeFile.model_validate({"services": {}}), "app\n")


def test_a_container_id_with_a_newline_is_refused():
    with pytest.raises(ConfigError, match="container id"):
        validate_container(ContainerConfig(id="abc\n", image="host", args=["true"]))


def test_a_container_hostname_with_a_newline_is_refused():
    with pytest.raises(ConfigError, match="hostname"):
        validate_container(ContainerConfig(id="abc", image="host", args=["true"], hostname="h\n"))


def test_a_volume_name_with_a_newline_is_refused():
    with pytest.raises(ConfigError, match="volume name"):
        validate_mount({"type": "volume", "source": "v\n", "target": "/data"})


def test_a_constraint_still_parses_whole_text():
    assert parse_constraint("node.role==manager").value == "manager"
    with pytest.raises(ConstraintError):
        parse_constraint("node.role\n")


def test_good_names_still_pass():
    specs.validate(_service("web.1_a-b"))
    assert check_name("lab-1") == "lab-1"
    validate_container(ContainerConfig(id="abc.1", image="host", args=["true"], hostname="h1"))
