from shoal.proto import types_pb2 as _types_pb2
from shoal.proto import logs_pb2 as _logs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterRequest(_message.Message):
    __slots__ = ("token", "node_id", "description", "availability", "csr")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    token: str
    node_id: str
    description: _types_pb2.NodeDescription
    availability: _types_pb2.NodeSpec.Availability
    csr: bytes
    def __init__(self, token: _Optional[str] = ..., node_id: _Optional[str] = ..., description: _Optional[_Union[_types_pb2.NodeDescription, _Mapping]] = ..., availability: _Optional[_Union[_types_pb2.NodeSpec.Availability, str]] = ..., csr: _Optional[bytes] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("node_id", "role", "managers", "certificate", "ca_certificate", "ca_key_kek", "etcd_endpoints", "etcd_ca", "etcd_cert", "etcd_key")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CA_KEY_KEK_FIELD_NUMBER: _ClassVar[int]
    ETCD_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    ETCD_CA_FIELD_NUMBER: _ClassVar[int]
    ETCD_CERT_FIELD_NUMBER: _ClassVar[int]
    ETCD_KEY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    role: _types_pb2.NodeSpec.Role
    managers: _containers.RepeatedScalarFieldContainer[str]
    certificate: bytes
    ca_certificate: bytes
    ca_key_kek: bytes
    etcd_endpoints: _containers.RepeatedScalarFieldContainer[str]
    etcd_ca: bytes
    etcd_cert: bytes
    etcd_key: bytes
    def __init__(self, node_id: _Optional[str] = ..., role: _Optional[_Union[_types_pb2.NodeSpec.Role, str]] = ..., managers: _Optional[_Iterable[str]] = ..., certificate: _Optional[bytes] = ..., ca_certificate: _Optional[bytes] = ..., ca_key_kek: _Optional[bytes] = ..., etcd_endpoints: _Optional[_Iterable[str]] = ..., etcd_ca: _Optional[bytes] = ..., etcd_cert: _Optional[bytes] = ..., etcd_key: _Optional[bytes] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("node_id", "token", "description", "mesh_revision")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MESH_REVISION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    token: str
    description: _types_pb2.NodeDescription
    mesh_revision: int
    def __init__(self, node_id: _Optional[str] = ..., token: _Optional[str] = ..., description: _Optional[_Union[_types_pb2.NodeDescription, _Mapping]] = ..., mesh_revision: _Optional[int] = ...) -> None: ...

class Assignments(_message.Message):
    __slots__ = ("full", "updated", "removed", "secrets", "removed_secrets", "configs", "removed_configs", "kept", "forgotten")
    FULL_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_SECRETS_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_CONFIGS_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    full: bool
    updated: _containers.RepeatedCompositeFieldContainer[_types_pb2.Task]
    removed: _containers.RepeatedScalarFieldContainer[str]
    secrets: _containers.RepeatedCompositeFieldContainer[FileData]
    removed_secrets: _containers.RepeatedScalarFieldContainer[str]
    configs: _containers.RepeatedCompositeFieldContainer[FileData]
    removed_configs: _containers.RepeatedScalarFieldContainer[str]
    kept: _containers.RepeatedScalarFieldContainer[str]
    forgotten: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, full: _Optional[bool] = ..., updated: _Optional[_Iterable[_Union[_types_pb2.Task, _Mapping]]] = ..., removed: _Optional[_Iterable[str]] = ..., secrets: _Optional[_Iterable[_Union[FileData, _Mapping]]] = ..., removed_secrets: _Optional[_Iterable[str]] = ..., configs: _Optional[_Iterable[_Union[FileData, _Mapping]]] = ..., removed_configs: _Optional[_Iterable[str]] = ..., kept: _Optional[_Iterable[str]] = ..., forgotten: _Optional[_Iterable[str]] = ...) -> None: ...

class FileData(_message.Message):
    __slots__ = ("id", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    data: bytes
    def __init__(self, id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("session_id", "managers", "heartbeat_period_ns", "assignments", "network_map", "log_subscriptions")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MAP_FIELD_NUMBER: _ClassVar[int]
    LOG_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    managers: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_period_ns: int
    assignments: Assignments
    network_map: NetworkMap
    log_subscriptions: _logs_pb2.LogSubscriptions
    def __init__(self, session_id: _Optional[str] = ..., managers: _Optional[_Iterable[str]] = ..., heartbeat_period_ns: _Optional[int] = ..., assignments: _Optional[_Union[Assignments, _Mapping]] = ..., network_map: _Optional[_Union[NetworkMap, _Mapping]] = ..., log_subscriptions: _Optional[_Union[_logs_pb2.LogSubscriptions, _Mapping]] = ...) -> None: ...

class NetworkMap(_message.Message):
    __slots__ = ("full", "node", "networks", "removed_networks", "services", "removed_services", "revision")
    FULL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_NETWORKS_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_SERVICES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    full: bool
    node: _types_pb2.NodeNetworkInfo
    networks: _containers.RepeatedCompositeFieldContainer[MapNetwork]
    removed_networks: _containers.RepeatedScalarFieldContainer[str]
    services: _containers.RepeatedCompositeFieldContainer[MapService]
    removed_services: _containers.RepeatedScalarFieldContainer[str]
    revision: int
    def __init__(self, full: _Optional[bool] = ..., node: _Optional[_Union[_types_pb2.NodeNetworkInfo, _Mapping]] = ..., networks: _Optional[_Iterable[_Union[MapNetwork, _Mapping]]] = ..., removed_networks: _Optional[_Iterable[str]] = ..., services: _Optional[_Iterable[_Union[MapService, _Mapping]]] = ..., removed_services: _Optional[_Iterable[str]] = ..., revision: _Optional[int] = ...) -> None: ...

class MapNetwork(_message.Message):
    __slots__ = ("id", "name", "vxlan_id", "subnet", "vip_block", "node_address", "peers", "ingress", "peer_subnets")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VXLAN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    VIP_BLOCK_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    PEER_SUBNETS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    vxlan_id: int
    subnet: str
    vip_block: str
    node_address: str
    peers: _containers.RepeatedScalarFieldContainer[str]
    ingress: bool
    peer_subnets: _containers.RepeatedCompositeFieldContainer[PeerSubnet]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., vxlan_id: _Optional[int] = ..., subnet: _Optional[str] = ..., vip_block: _Optional[str] = ..., node_address: _Optional[str] = ..., peers: _Optional[_Iterable[str]] = ..., ingress: _Optional[bool] = ..., peer_subnets: _Optional[_Iterable[_Union[PeerSubnet, _Mapping]]] = ...) -> None: ...

class PeerSubnet(_message.Message):
    __slots__ = ("subnet", "underlay")
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_FIELD_NUMBER: _ClassVar[int]
    subnet: str
    underlay: str
    def __init__(self, subnet: _Optional[str] = ..., underlay: _Optional[str] = ...) -> None: ...

class MapService(_message.Message):
    __slots__ = ("id", "name", "mode", "virtual_ips", "ports", "tasks", "networks")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_IPS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    mode: _types_pb2.EndpointMode
    virtual_ips: _containers.RepeatedCompositeFieldContainer[_types_pb2.VirtualIP]
    ports: _containers.RepeatedCompositeFieldContainer[_types_pb2.PortConfig]
    tasks: _containers.RepeatedCompositeFieldContainer[MapTask]
    networks: _containers.RepeatedCompositeFieldContainer[_types_pb2.NetworkAttachmentConfig]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., mode: _Optional[_Union[_types_pb2.EndpointMode, str]] = ..., virtual_ips: _Optional[_Iterable[_Union[_types_pb2.VirtualIP, _Mapping]]] = ..., ports: _Optional[_Iterable[_Union[_types_pb2.PortConfig, _Mapping]]] = ..., tasks: _Optional[_Iterable[_Union[MapTask, _Mapping]]] = ..., networks: _Optional[_Iterable[_Union[_types_pb2.NetworkAttachmentConfig, _Mapping]]] = ...) -> None: ...

class MapTask(_message.Message):
    __slots__ = ("id", "node_id", "addresses", "bridge_address", "health", "slot")
    ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    id: str
    node_id: str
    addresses: _containers.RepeatedCompositeFieldContainer[_types_pb2.NetworkAttachment]
    bridge_address: str
    health: _types_pb2.Health
    slot: int
    def __init__(self, id: _Optional[str] = ..., node_id: _Optional[str] = ..., addresses: _Optional[_Iterable[_Union[_types_pb2.NetworkAttachment, _Mapping]]] = ..., bridge_address: _Optional[str] = ..., health: _Optional[_Union[_types_pb2.Health, str]] = ..., slot: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("node_id", "session_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    session_id: str
    def __init__(self, node_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("period_ns",)
    PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    period_ns: int
    def __init__(self, period_ns: _Optional[int] = ...) -> None: ...

class TaskStatusUpdate(_message.Message):
    __slots__ = ("task_id", "status")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: _types_pb2.TaskStatus
    def __init__(self, task_id: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.TaskStatus, _Mapping]] = ...) -> None: ...

class UpdateTaskStatusRequest(_message.Message):
    __slots__ = ("node_id", "session_id", "updates")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    session_id: str
    updates: _containers.RepeatedCompositeFieldContainer[TaskStatusUpdate]
    def __init__(self, node_id: _Optional[str] = ..., session_id: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[TaskStatusUpdate, _Mapping]]] = ...) -> None: ...

class UpdateTaskStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AttachNetworkRequest(_message.Message):
    __slots__ = ("node_id", "network", "container_id", "container_name")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NAME_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    network: str
    container_id: str
    container_name: str
    def __init__(self, node_id: _Optional[str] = ..., network: _Optional[str] = ..., container_id: _Optional[str] = ..., container_name: _Optional[str] = ...) -> None: ...

class AttachNetworkResponse(_message.Message):
    __slots__ = ("attachment", "addresses", "network")
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    attachment: _types_pb2.ContainerAttachment
    addresses: _types_pb2.TaskAddresses
    network: _types_pb2.Network
    def __init__(self, attachment: _Optional[_Union[_types_pb2.ContainerAttachment, _Mapping]] = ..., addresses: _Optional[_Union[_types_pb2.TaskAddresses, _Mapping]] = ..., network: _Optional[_Union[_types_pb2.Network, _Mapping]] = ...) -> None: ...

class DetachNetworkRequest(_message.Message):
    __slots__ = ("node_id", "attachment_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    attachment_id: str
    def __init__(self, node_id: _Optional[str] = ..., attachment_id: _Optional[str] = ...) -> None: ...

class DetachNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
