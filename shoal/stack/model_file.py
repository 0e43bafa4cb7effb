"""A whole compose file: services plus the top-level networks, volumes, secrets and configs.

``version`` is optional (compose-spec files have none); when present it must be a 3.x version, as
``docker stack deploy`` requires. Top-level keys that compose allows but stacks do not use
(``name``, ``include``) are reported as unsupported by the loader.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, field_validator, model_validator

from shoal.stack.model_base import Labels, Model, lift_external_name
from shoal.stack.model_service import Service

UNSUPPORTED_TOP = frozenset({"name", "include", "models"})


class IpamConfig(Model):
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: dict[str, str] = {}


class Ipam(Model):
    driver: str | None = None
    config: list[IpamConfig] = []
    options: dict[str, str] = {}


class _Lifted(Model):
    """Objects that accept docker's old ``external: {name: x}`` form."""

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        return lift_external_name(data)


class Network(_Lifted):
    """A network the stack creates (``NAME_net``) or uses (``external``)."""

    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, str] = {}
    ipam: Ipam | None = None
    external: bool | None = None
    internal: bool | None = None
    attachable: bool | None = None
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    labels: Labels = {}

    @field_validator("driver")
    @classmethod
    def _overlay(cls, value: str | None) -> str | None:
        if value not in (None, "overlay"):
            raise ValueError(f"network driver {value!r} is not supported: a stack's networks are overlay networks")
        return value


class Volume(_Lifted):
    """A named volume services mount."""

    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, str] = {}
    external: bool | None = None
    labels: Labels = {}


class Secret(_Lifted):
    """A secret: from a file, an environment variable, or one that already exists (``external``)."""

    name: str | None = None
    file: str | None = None
    environment: str | None = None
    external: bool | None = None
    labels: Labels = {}
    driver: str | None = None
    driver_opts: dict[str, str] = {}
    template_driver: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        given = [k for k in ("file", "environment", "content") if getattr(self, k, None) is not None]
        if self.external:
            if given:
                raise ValueError(f"an external {self._kind()} cannot also set {', '.join(given)}")
        elif len(given) > 1:
            raise ValueError(f"a {self._kind()} takes only one of {' and '.join(given)}")
        elif not given:
            keys = "file, environment or content" if self._kind() == "config" else "file or environment"
            raise ValueError(f"a {self._kind()} needs exactly one of {keys}, or external: true")
        return self

    def _kind(self) -> str:
        return "secret"


class Config(Secret):
    """A config: like a secret, and may also be given inline with ``content``."""

    content: str | None = None

    def _kind(self) -> str:
        return "config"


def _none_to_empty(value: Any) -> Any:
    """``networks: {back: }`` declares a network with defaults."""
    return {k: ({} if v is None else v) for k, v in value.items()} if isinstance(value, dict) else value


class ComposeFile(Model):
    """One compose file as written (before merging with the others)."""

    version: str | None = None
    services: dict[str, Service] = {}
    networks: Annotated[dict[str, Network], BeforeValidator(_none_to_empty)] = {}
    volumes: Annotated[dict[str, Volume], BeforeValidator(_none_to_empty)] = {}
    secrets: Annotated[dict[str, Secret], BeforeValidator(_none_to_empty)] = {}
    configs: Annotated[dict[str, Config], BeforeValidator(_none_to_empty)] = {}

    @model_validator(mode="before")
    @classmethod
    def _top(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in UNSUPPORTED_TOP}
            if data.get("services") is None and "services" in data:
                data["services"] = {}
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if isinstance(text, str) and not (text == "3" or text.startswith("3.")):
            raise ValueError(f"unsupported compose file version {text!r}: stacks need version 3.x or no version")
        return text

