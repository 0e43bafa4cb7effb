from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EndpointMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIP: _ClassVar[EndpointMode]
    DNSRR: _ClassVar[EndpointMode]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEW: _ClassVar[TaskState]
    PENDING: _ClassVar[TaskState]
    ASSIGNED: _ClassVar[TaskState]
    ACCEPTED: _ClassVar[TaskState]
    PREPARING: _ClassVar[TaskState]
    STARTING: _ClassVar[TaskState]
    RUNNING: _ClassVar[TaskState]
    COMPLETE: _ClassVar[TaskState]
    SHUTDOWN: _ClassVar[TaskState]
    FAILED: _ClassVar[TaskState]
    REJECTED: _ClassVar[TaskState]
    REMOVE: _ClassVar[TaskState]
    ORPHANED: _ClassVar[TaskState]

class Health(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_NONE: _ClassVar[Health]
    HEALTH_STARTING: _ClassVar[Health]
    HEALTH_HEALTHY: _ClassVar[Health]
    HEALTH_UNHEALTHY: _ClassVar[Health]
VIP: EndpointMode
DNSRR: EndpointMode
NEW: TaskState
PENDING: TaskState
ASSIGNED: TaskState
ACCEPTED: TaskState
PREPARING: TaskState
STARTING: TaskState
RUNNING: TaskState
COMPLETE: TaskState
SHUTDOWN: TaskState
FAILED: TaskState
REJECTED: TaskState
REMOVE: TaskState
ORPHANED: TaskState
HEALTH_NONE: Health
HEALTH_STARTING: Health
HEALTH_HEALTHY: Health
HEALTH_UNHEALTHY: Health

class Resources(_message.Message):
    __slots__ = ("nano_cpus", "memory_bytes", "pids")
    NANO_CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    nano_cpus: int
    memory_bytes: int
    pids: int
    def __init__(self, nano_cpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., pids: _Optional[int] = ...) -> None: ...

class ResourceRequirements(_message.Message):
    __slots__ = ("limits", "reservations")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    limits: Resources
    reservations: Resources
    def __init__(self, limits: _Optional[_Union[Resources, _Mapping]] = ..., reservations: _Optional[_Union[Resources, _Mapping]] = ...) -> None: ...

class PlacementPreference(_message.Message):
    __slots__ = ("spread",)
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    spread: str
    def __init__(self, spread: _Optional[str] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("constraints", "preferences", "max_replicas_per_node")
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    constraints: _containers.RepeatedScalarFieldContainer[str]
    preferences: _containers.RepeatedCompositeFieldContainer[PlacementPreference]
    max_replicas_per_node: int
    def __init__(self, constraints: _Optional[_Iterable[str]] = ..., preferences: _Optional[_Iterable[_Union[PlacementPreference, _Mapping]]] = ..., max_replicas_per_node: _Optional[int] = ...) -> None: ...

class RestartPolicy(_message.Message):
    __slots__ = ("condition", "delay_ns", "max_attempts", "window_ns")
    class Condition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ANY: _ClassVar[RestartPolicy.Condition]
        NONE: _ClassVar[RestartPolicy.Condition]
        ON_FAILURE: _ClassVar[RestartPolicy.Condition]
    ANY: RestartPolicy.Condition
    NONE: RestartPolicy.Condition
    ON_FAILURE: RestartPolicy.Condition
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    DELAY_NS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_NS_FIELD_NUMBER: _ClassVar[int]
    condition: RestartPolicy.Condition
    delay_ns: int
    max_attempts: int
    window_ns: int
    def __init__(self, condition: _Optional[_Union[RestartPolicy.Condition, str]] = ..., delay_ns: _Optional[int] = ..., max_attempts: _Optional[int] = ..., window_ns: _Optional[int] = ...) -> None: ...

class UpdateConfig(_message.Message):
    __slots__ = ("parallelism", "delay_ns", "failure_action", "monitor_ns", "max_failure_ratio", "order")
    class FailureAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PAUSE: _ClassVar[UpdateConfig.FailureAction]
        CONTINUE: _ClassVar[UpdateConfig.FailureAction]
        ROLLBACK: _ClassVar[UpdateConfig.FailureAction]
    PAUSE: UpdateConfig.FailureAction
    CONTINUE: UpdateConfig.FailureAction
    ROLLBACK: UpdateConfig.FailureAction
    class Order(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STOP_FIRST: _ClassVar[UpdateConfig.Order]
        START_FIRST: _ClassVar[UpdateConfig.Order]
    STOP_FIRST: UpdateConfig.Order
    START_FIRST: UpdateConfig.Order
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    DELAY_NS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_ACTION_FIELD_NUMBER: _ClassVar[int]
    MONITOR_NS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURE_RATIO_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    parallelism: int
    delay_ns: int
    failure_action: UpdateConfig.FailureAction
    monitor_ns: int
    max_failure_ratio: float
    order: UpdateConfig.Order
    def __init__(self, parallelism: _Optional[int] = ..., delay_ns: _Optional[int] = ..., failure_action: _Optional[_Union[UpdateConfig.FailureAction, str]] = ..., monitor_ns: _Optional[int] = ..., max_failure_ratio: _Optional[float] = ..., order: _Optional[_Union[UpdateConfig.Order, str]] = ...) -> None: ...

class HealthCheck(_message.Message):
    __slots__ = ("test", "interval_ns", "timeout_ns", "start_period_ns", "retries", "start_interval_ns")
    TEST_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_NS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_NS_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    START_INTERVAL_NS_FIELD_NUMBER: _ClassVar[int]
    test: _containers.RepeatedScalarFieldContainer[str]
    interval_ns: int
    timeout_ns: int
    start_period_ns: int
    retries: int
    start_interval_ns: int
    def __init__(self, test: _Optional[_Iterable[str]] = ..., interval_ns: _Optional[int] = ..., timeout_ns: _Optional[int] = ..., start_period_ns: _Optional[int] = ..., retries: _Optional[int] = ..., start_interval_ns: _Optional[int] = ...) -> None: ...

class PortConfig(_message.Message):
    __slots__ = ("name", "protocol", "target_port", "published_port", "publish_mode")
    class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TCP: _ClassVar[PortConfig.Protocol]
        UDP: _ClassVar[PortConfig.Protocol]
        SCTP: _ClassVar[PortConfig.Protocol]
    TCP: PortConfig.Protocol
    UDP: PortConfig.Protocol
    SCTP: PortConfig.Protocol
    class PublishMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        INGRESS: _ClassVar[PortConfig.PublishMode]
        HOST: _ClassVar[PortConfig.PublishMode]
    INGRESS: PortConfig.PublishMode
    HOST: PortConfig.PublishMode
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_PORT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    protocol: PortConfig.Protocol
    target_port: int
    published_port: int
    publish_mode: PortConfig.PublishMode
    def __init__(self, name: _Optional[str] = ..., protocol: _Optional[_Union[PortConfig.Protocol, str]] = ..., target_port: _Optional[int] = ..., published_port: _Optional[int] = ..., publish_mode: _Optional[_Union[PortConfig.PublishMode, str]] = ...) -> None: ...

class Mount(_message.Message):
    __slots__ = ("type", "source", "target", "readonly", "volume_nocopy", "tmpfs_size_bytes", "tmpfs_mode", "volume_subpath", "bind_propagation")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VOLUME: _ClassVar[Mount.Type]
        BIND: _ClassVar[Mount.Type]
        TMPFS: _ClassVar[Mount.Type]
    VOLUME: Mount.Type
    BIND: Mount.Type
    TMPFS: Mount.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    READONLY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_NOCOPY_FIELD_NUMBER: _ClassVar[int]
    TMPFS_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TMPFS_MODE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SUBPATH_FIELD_NUMBER: _ClassVar[int]
    BIND_PROPAGATION_FIELD_NUMBER: _ClassVar[int]
    type: Mount.Type
    source: str
    target: str
    readonly: bool
    volume_nocopy: bool
    tmpfs_size_bytes: int
    tmpfs_mode: int
    volume_subpath: str
    bind_propagation: str
    def __init__(self, type: _Optional[_Union[Mount.Type, str]] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., readonly: _Optional[bool] = ..., volume_nocopy: _Optional[bool] = ..., tmpfs_size_bytes: _Optional[int] = ..., tmpfs_mode: _Optional[int] = ..., volume_subpath: _Optional[str] = ..., bind_propagation: _Optional[str] = ...) -> None: ...

class Ulimit(_message.Message):
    __slots__ = ("name", "soft", "hard")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    name: str
    soft: int
    hard: int
    def __init__(self, name: _Optional[str] = ..., soft: _Optional[int] = ..., hard: _Optional[int] = ...) -> None: ...

class DNSConfig(_message.Message):
    __slots__ = ("nameservers", "search", "options")
    NAMESERVERS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    nameservers: _containers.RepeatedScalarFieldContainer[str]
    search: _containers.RepeatedScalarFieldContainer[str]
    options: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, nameservers: _Optional[_Iterable[str]] = ..., search: _Optional[_Iterable[str]] = ..., options: _Optional[_Iterable[str]] = ...) -> None: ...

class ContainerSpec(_message.Message):
    __slots__ = ("image", "command", "args", "env", "dir", "user", "hostname", "healthcheck", "stop_grace_period_ns", "init", "labels", "seccomp_profile", "secrets", "configs", "mounts", "read_only", "cap_add", "cap_drop", "stop_signal", "ulimits", "sysctls", "groups", "dns_config", "log_driver", "log_options")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SysctlsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LogOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    STOP_GRACE_PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    CAP_ADD_FIELD_NUMBER: _ClassVar[int]
    CAP_DROP_FIELD_NUMBER: _ClassVar[int]
    STOP_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    SYSCTLS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DNS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LOG_DRIVER_FIELD_NUMBER: _ClassVar[int]
    LOG_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    args: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.RepeatedScalarFieldContainer[str]
    dir: str
    user: str
    hostname: str
    healthcheck: HealthCheck
    stop_grace_period_ns: int
    init: bool
    labels: _containers.ScalarMap[str, str]
    seccomp_profile: str
    secrets: _containers.RepeatedCompositeFieldContainer[SecretReference]
    configs: _containers.RepeatedCompositeFieldContainer[ConfigReference]
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    read_only: bool
    cap_add: _containers.RepeatedScalarFieldContainer[str]
    cap_drop: _containers.RepeatedScalarFieldContainer[str]
    stop_signal: str
    ulimits: _containers.RepeatedCompositeFieldContainer[Ulimit]
    sysctls: _containers.ScalarMap[str, str]
    groups: _containers.RepeatedScalarFieldContainer[str]
    dns_config: DNSConfig
    log_driver: str
    log_options: _containers.ScalarMap[str, str]
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Iterable[str]] = ..., dir: _Optional[str] = ..., user: _Optional[str] = ..., hostname: _Optional[str] = ..., healthcheck: _Optional[_Union[HealthCheck, _Mapping]] = ..., stop_grace_period_ns: _Optional[int] = ..., init: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., seccomp_profile: _Optional[str] = ..., secrets: _Optional[_Iterable[_Union[SecretReference, _Mapping]]] = ..., configs: _Optional[_Iterable[_Union[ConfigReference, _Mapping]]] = ..., mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., read_only: _Optional[bool] = ..., cap_add: _Optional[_Iterable[str]] = ..., cap_drop: _Optional[_Iterable[str]] = ..., stop_signal: _Optional[str] = ..., ulimits: _Optional[_Iterable[_Union[Ulimit, _Mapping]]] = ..., sysctls: _Optional[_Mapping[str, str]] = ..., groups: _Optional[_Iterable[str]] = ..., dns_config: _Optional[_Union[DNSConfig, _Mapping]] = ..., log_driver: _Optional[str] = ..., log_options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FileTarget(_message.Message):
    __slots__ = ("name", "uid", "gid", "mode")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    gid: str
    mode: int
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., gid: _Optional[str] = ..., mode: _Optional[int] = ...) -> None: ...

class SecretReference(_message.Message):
    __slots__ = ("secret_id", "secret_name", "file")
    SECRET_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    secret_id: str
    secret_name: str
    file: FileTarget
    def __init__(self, secret_id: _Optional[str] = ..., secret_name: _Optional[str] = ..., file: _Optional[_Union[FileTarget, _Mapping]] = ...) -> None: ...

class ConfigReference(_message.Message):
    __slots__ = ("config_id", "config_name", "file")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    config_name: str
    file: FileTarget
    def __init__(self, config_id: _Optional[str] = ..., config_name: _Optional[str] = ..., file: _Optional[_Union[FileTarget, _Mapping]] = ...) -> None: ...

class ServiceSpec(_message.Message):
    __slots__ = ("name", "labels", "container", "resources", "placement", "restart_policy", "update_config", "rollback_config", "mode", "replicas", "max_concurrent", "ports", "rebalance", "networks", "endpoint_mode", "force_update", "depends_on")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REPLICATED: _ClassVar[ServiceSpec.Mode]
        GLOBAL: _ClassVar[ServiceSpec.Mode]
        REPLICATED_JOB: _ClassVar[ServiceSpec.Mode]
        GLOBAL_JOB: _ClassVar[ServiceSpec.Mode]
    REPLICATED: ServiceSpec.Mode
    GLOBAL: ServiceSpec.Mode
    REPLICATED_JOB: ServiceSpec.Mode
    GLOBAL_JOB: ServiceSpec.Mode
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    RESTART_POLICY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    REBALANCE_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_MODE_FIELD_NUMBER: _ClassVar[int]
    FORCE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    container: ContainerSpec
    resources: ResourceRequirements
    placement: Placement
    restart_policy: RestartPolicy
    update_config: UpdateConfig
    rollback_config: UpdateConfig
    mode: ServiceSpec.Mode
    replicas: int
    max_concurrent: int
    ports: _containers.RepeatedCompositeFieldContainer[PortConfig]
    rebalance: bool
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachmentConfig]
    endpoint_mode: EndpointMode
    force_update: int
    depends_on: _containers.RepeatedCompositeFieldContainer[ServiceDependency]
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., container: _Optional[_Union[ContainerSpec, _Mapping]] = ..., resources: _Optional[_Union[ResourceRequirements, _Mapping]] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., restart_policy: _Optional[_Union[RestartPolicy, _Mapping]] = ..., update_config: _Optional[_Union[UpdateConfig, _Mapping]] = ..., rollback_config: _Optional[_Union[UpdateConfig, _Mapping]] = ..., mode: _Optional[_Union[ServiceSpec.Mode, str]] = ..., replicas: _Optional[int] = ..., max_concurrent: _Optional[int] = ..., ports: _Optional[_Iterable[_Union[PortConfig, _Mapping]]] = ..., rebalance: _Optional[bool] = ..., networks: _Optional[_Iterable[_Union[NetworkAttachmentConfig, _Mapping]]] = ..., endpoint_mode: _Optional[_Union[EndpointMode, str]] = ..., force_update: _Optional[int] = ..., depends_on: _Optional[_Iterable[_Union[ServiceDependency, _Mapping]]] = ...) -> None: ...

class ServiceDependency(_message.Message):
    __slots__ = ("service", "condition")
    class Condition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STARTED: _ClassVar[ServiceDependency.Condition]
        HEALTHY: _ClassVar[ServiceDependency.Condition]
        COMPLETED_SUCCESSFULLY: _ClassVar[ServiceDependency.Condition]
    STARTED: ServiceDependency.Condition
    HEALTHY: ServiceDependency.Condition
    COMPLETED_SUCCESSFULLY: ServiceDependency.Condition
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    service: str
    condition: ServiceDependency.Condition
    def __init__(self, service: _Optional[str] = ..., condition: _Optional[_Union[ServiceDependency.Condition, str]] = ...) -> None: ...

class NetworkAttachmentConfig(_message.Message):
    __slots__ = ("target", "aliases")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    target: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class NetworkSpec(_message.Message):
    __slots__ = ("name", "driver", "subnet", "attachable", "labels", "ingress")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    ATTACHABLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    driver: str
    subnet: str
    attachable: bool
    labels: _containers.ScalarMap[str, str]
    ingress: bool
    def __init__(self, name: _Optional[str] = ..., driver: _Optional[str] = ..., subnet: _Optional[str] = ..., attachable: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., ingress: _Optional[bool] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("id", "meta", "spec", "subnet", "gateway", "vxlan_id", "vip_block")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    VXLAN_ID_FIELD_NUMBER: _ClassVar[int]
    VIP_BLOCK_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: NetworkSpec
    subnet: str
    gateway: str
    vxlan_id: int
    vip_block: str
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[NetworkSpec, _Mapping]] = ..., subnet: _Optional[str] = ..., gateway: _Optional[str] = ..., vxlan_id: _Optional[int] = ..., vip_block: _Optional[str] = ...) -> None: ...

class NetworkAttachment(_message.Message):
    __slots__ = ("network_id", "network", "address", "aliases")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    network: str
    address: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, network_id: _Optional[str] = ..., network: _Optional[str] = ..., address: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class VirtualIP(_message.Message):
    __slots__ = ("network_id", "network", "addr")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    network: str
    addr: str
    def __init__(self, network_id: _Optional[str] = ..., network: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("mode", "ports", "virtual_ips")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_IPS_FIELD_NUMBER: _ClassVar[int]
    mode: EndpointMode
    ports: _containers.RepeatedCompositeFieldContainer[PortConfig]
    virtual_ips: _containers.RepeatedCompositeFieldContainer[VirtualIP]
    def __init__(self, mode: _Optional[_Union[EndpointMode, str]] = ..., ports: _Optional[_Iterable[_Union[PortConfig, _Mapping]]] = ..., virtual_ips: _Optional[_Iterable[_Union[VirtualIP, _Mapping]]] = ...) -> None: ...

class NodeNetworkInfo(_message.Message):
    __slots__ = ("subnet", "gateway", "underlay", "overlays")
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_FIELD_NUMBER: _ClassVar[int]
    OVERLAYS_FIELD_NUMBER: _ClassVar[int]
    subnet: str
    gateway: str
    underlay: str
    overlays: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    def __init__(self, subnet: _Optional[str] = ..., gateway: _Optional[str] = ..., underlay: _Optional[str] = ..., overlays: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ...) -> None: ...

class TaskAddresses(_message.Message):
    __slots__ = ("task_id", "node_id", "bridge_address", "networks")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    node_id: str
    bridge_address: str
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    def __init__(self, task_id: _Optional[str] = ..., node_id: _Optional[str] = ..., bridge_address: _Optional[str] = ..., networks: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ...) -> None: ...

class ContainerAttachment(_message.Message):
    __slots__ = ("id", "node_id", "network_id", "container_id", "container_name", "created_at_ns", "address")
    ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    node_id: str
    network_id: str
    container_id: str
    container_name: str
    created_at_ns: int
    address: str
    def __init__(self, id: _Optional[str] = ..., node_id: _Optional[str] = ..., network_id: _Optional[str] = ..., container_id: _Optional[str] = ..., container_name: _Optional[str] = ..., created_at_ns: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class Meta(_message.Message):
    __slots__ = ("version", "created_at_ns", "updated_at_ns")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    version: int
    created_at_ns: int
    updated_at_ns: int
    def __init__(self, version: _Optional[int] = ..., created_at_ns: _Optional[int] = ..., updated_at_ns: _Optional[int] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("id", "meta", "spec", "previous_spec", "spec_version", "endpoint", "update_status")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPEC_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: ServiceSpec
    previous_spec: ServiceSpec
    spec_version: int
    endpoint: Endpoint
    update_status: UpdateStatus
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., previous_spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., spec_version: _Optional[int] = ..., endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., update_status: _Optional[_Union[UpdateStatus, _Mapping]] = ...) -> None: ...

class UpdateStatus(_message.Message):
    __slots__ = ("state", "started_at_ns", "completed_at_ns", "message")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[UpdateStatus.State]
        UPDATING: _ClassVar[UpdateStatus.State]
        PAUSED: _ClassVar[UpdateStatus.State]
        COMPLETED: _ClassVar[UpdateStatus.State]
        ROLLBACK_STARTED: _ClassVar[UpdateStatus.State]
        ROLLBACK_PAUSED: _ClassVar[UpdateStatus.State]
        ROLLBACK_COMPLETED: _ClassVar[UpdateStatus.State]
    UNKNOWN: UpdateStatus.State
    UPDATING: UpdateStatus.State
    PAUSED: UpdateStatus.State
    COMPLETED: UpdateStatus.State
    ROLLBACK_STARTED: UpdateStatus.State
    ROLLBACK_PAUSED: UpdateStatus.State
    ROLLBACK_COMPLETED: UpdateStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    state: UpdateStatus.State
    started_at_ns: int
    completed_at_ns: int
    message: str
    def __init__(self, state: _Optional[_Union[UpdateStatus.State, str]] = ..., started_at_ns: _Optional[int] = ..., completed_at_ns: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ServiceEndpoint(_message.Message):
    __slots__ = ("service_id", "spec_version", "endpoint")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    spec_version: int
    endpoint: Endpoint
    def __init__(self, service_id: _Optional[str] = ..., spec_version: _Optional[int] = ..., endpoint: _Optional[_Union[Endpoint, _Mapping]] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("state", "timestamp_ns", "message", "err", "exit_code", "container_id", "pid", "health")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERR_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    state: TaskState
    timestamp_ns: int
    message: str
    err: str
    exit_code: int
    container_id: str
    pid: int
    health: Health
    def __init__(self, state: _Optional[_Union[TaskState, str]] = ..., timestamp_ns: _Optional[int] = ..., message: _Optional[str] = ..., err: _Optional[str] = ..., exit_code: _Optional[int] = ..., container_id: _Optional[str] = ..., pid: _Optional[int] = ..., health: _Optional[_Union[Health, str]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "meta", "service_id", "service_name", "slot", "node_id", "spec", "spec_version", "desired_state", "status", "networks", "bridge_address")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    service_id: str
    service_name: str
    slot: int
    node_id: str
    spec: ServiceSpec
    spec_version: int
    desired_state: TaskState
    status: TaskStatus
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    bridge_address: str
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., service_id: _Optional[str] = ..., service_name: _Optional[str] = ..., slot: _Optional[int] = ..., node_id: _Optional[str] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., spec_version: _Optional[int] = ..., desired_state: _Optional[_Union[TaskState, str]] = ..., status: _Optional[_Union[TaskStatus, _Mapping]] = ..., networks: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ..., bridge_address: _Optional[str] = ...) -> None: ...

class NodeDescription(_message.Message):
    __slots__ = ("hostname", "platform_os", "platform_arch", "nano_cpus", "memory_bytes", "engine_labels", "addr")
    class EngineLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_OS_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ARCH_FIELD_NUMBER: _ClassVar[int]
    NANO_CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_LABELS_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    platform_os: str
    platform_arch: str
    nano_cpus: int
    memory_bytes: int
    engine_labels: _containers.ScalarMap[str, str]
    addr: str
    def __init__(self, hostname: _Optional[str] = ..., platform_os: _Optional[str] = ..., platform_arch: _Optional[str] = ..., nano_cpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., engine_labels: _Optional[_Mapping[str, str]] = ..., addr: _Optional[str] = ...) -> None: ...

class NodeSpec(_message.Message):
    __slots__ = ("role", "availability", "labels")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        WORKER: _ClassVar[NodeSpec.Role]
        MANAGER: _ClassVar[NodeSpec.Role]
    WORKER: NodeSpec.Role
    MANAGER: NodeSpec.Role
    class Availability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTIVE: _ClassVar[NodeSpec.Availability]
        PAUSE: _ClassVar[NodeSpec.Availability]
        DRAIN: _ClassVar[NodeSpec.Availability]
    ACTIVE: NodeSpec.Availability
    PAUSE: NodeSpec.Availability
    DRAIN: NodeSpec.Availability
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    role: NodeSpec.Role
    availability: NodeSpec.Availability
    labels: _containers.ScalarMap[str, str]
    def __init__(self, role: _Optional[_Union[NodeSpec.Role, str]] = ..., availability: _Optional[_Union[NodeSpec.Availability, str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("state", "message", "addr", "timestamp_ns")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[NodeStatus.State]
        DOWN: _ClassVar[NodeStatus.State]
        READY: _ClassVar[NodeStatus.State]
        DISCONNECTED: _ClassVar[NodeStatus.State]
    UNKNOWN: NodeStatus.State
    DOWN: NodeStatus.State
    READY: NodeStatus.State
    DISCONNECTED: NodeStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    state: NodeStatus.State
    message: str
    addr: str
    timestamp_ns: int
    def __init__(self, state: _Optional[_Union[NodeStatus.State, str]] = ..., message: _Optional[str] = ..., addr: _Optional[str] = ..., timestamp_ns: _Optional[int] = ...) -> None: ...

class ManagerStatus(_message.Message):
    __slots__ = ("addr", "leader", "reachability", "etcd_endpoints")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    REACHABILITY_FIELD_NUMBER: _ClassVar[int]
    ETCD_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    addr: str
    leader: bool
    reachability: str
    etcd_endpoints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addr: _Optional[str] = ..., leader: _Optional[bool] = ..., reachability: _Optional[str] = ..., etcd_endpoints: _Optional[_Iterable[str]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "meta", "spec", "description", "status", "manager_status", "network", "cert_serial", "role_grant")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MANAGER_STATUS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CERT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    ROLE_GRANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: NodeSpec
    description: NodeDescription
    status: NodeStatus
    manager_status: ManagerStatus
    network: NodeNetworkInfo
    cert_serial: str
    role_grant: RoleGrant
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[NodeSpec, _Mapping]] = ..., description: _Optional[_Union[NodeDescription, _Mapping]] = ..., status: _Optional[_Union[NodeStatus, _Mapping]] = ..., manager_status: _Optional[_Union[ManagerStatus, _Mapping]] = ..., network: _Optional[_Union[NodeNetworkInfo, _Mapping]] = ..., cert_serial: _Optional[str] = ..., role_grant: _Optional[_Union[RoleGrant, _Mapping]] = ...) -> None: ...

class RoleGrant(_message.Message):
    __slots__ = ("role", "by", "at_ns", "mac")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    AT_NS_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    role: NodeSpec.Role
    by: str
    at_ns: int
    mac: bytes
    def __init__(self, role: _Optional[_Union[NodeSpec.Role, str]] = ..., by: _Optional[str] = ..., at_ns: _Optional[int] = ..., mac: _Optional[bytes] = ...) -> None: ...

class Tombstone(_message.Message):
    __slots__ = ("node_id", "removed_at_ns", "removed_by", "cert_serials")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_BY_FIELD_NUMBER: _ClassVar[int]
    CERT_SERIALS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    removed_at_ns: int
    removed_by: str
    cert_serials: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_id: _Optional[str] = ..., removed_at_ns: _Optional[int] = ..., removed_by: _Optional[str] = ..., cert_serials: _Optional[_Iterable[str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "time_ns", "type", "action", "actor_id", "message", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    time_ns: int
    type: str
    action: str
    actor_id: str
    message: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., time_ns: _Optional[int] = ..., type: _Optional[str] = ..., action: _Optional[str] = ..., actor_id: _Optional[str] = ..., message: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class NodeSession(_message.Message):
    __slots__ = ("node_id", "session_id", "manager_id", "addr", "started_at_ns")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MANAGER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    session_id: str
    manager_id: str
    addr: str
    started_at_ns: int
    def __init__(self, node_id: _Optional[str] = ..., session_id: _Optional[str] = ..., manager_id: _Optional[str] = ..., addr: _Optional[str] = ..., started_at_ns: _Optional[int] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("id", "worker_token", "manager_token", "created_at_ns", "ca_digest", "default_addr_pool", "worker_token_hash", "manager_token_hash", "tokens_sealed", "default_addr_pool_mask_length")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MANAGER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    CA_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ADDR_POOL_FIELD_NUMBER: _ClassVar[int]
    WORKER_TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    MANAGER_TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    TOKENS_SEALED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ADDR_POOL_MASK_LENGTH_FIELD_NUMBER: _ClassVar[int]
    id: str
    worker_token: str
    manager_token: str
    created_at_ns: int
    ca_digest: str
    default_addr_pool: str
    worker_token_hash: bytes
    manager_token_hash: bytes
    tokens_sealed: bytes
    default_addr_pool_mask_length: int
    def __init__(self, id: _Optional[str] = ..., worker_token: _Optional[str] = ..., manager_token: _Optional[str] = ..., created_at_ns: _Optional[int] = ..., ca_digest: _Optional[str] = ..., default_addr_pool: _Optional[str] = ..., worker_token_hash: _Optional[bytes] = ..., manager_token_hash: _Optional[bytes] = ..., tokens_sealed: _Optional[bytes] = ..., default_addr_pool_mask_length: _Optional[int] = ...) -> None: ...

class SecretSpec(_message.Message):
    __slots__ = ("name", "labels", "data")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    data: bytes
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("id", "meta", "spec", "data_sealed")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DATA_SEALED_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: SecretSpec
    data_sealed: bytes
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[SecretSpec, _Mapping]] = ..., data_sealed: _Optional[bytes] = ...) -> None: ...

class ConfigSpec(_message.Message):
    __slots__ = ("name", "labels", "data")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    data: bytes
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("id", "meta", "spec")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: ConfigSpec
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[ConfigSpec, _Mapping]] = ...) -> None: ...

class DataKey(_message.Message):
    __slots__ = ("key_sealed",)
    KEY_SEALED_FIELD_NUMBER: _ClassVar[int]
    key_sealed: bytes
    def __init__(self, key_sealed: _Optional[bytes] = ...) -> None: ...

class RootCA(_message.Message):
    __slots__ = ("cert_pem", "key_sealed")
    CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    KEY_SEALED_FIELD_NUMBER: _ClassVar[int]
    cert_pem: bytes
    key_sealed: bytes
    def __init__(self, cert_pem: _Optional[bytes] = ..., key_sealed: _Optional[bytes] = ...) -> None: ...
