from shoal.proto import types_pb2 as _types_pb2
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
    __slots__ = ("node_id", "role", "managers", "certificate", "ca_certificate", "ca_key_kek", "etcd_endpoints")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CA_KEY_KEK_FIELD_NUMBER: _ClassVar[int]
    ETCD_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    role: _types_pb2.NodeSpec.Role
    managers: _containers.RepeatedScalarFieldContainer[str]
    certificate: bytes
    ca_certificate: bytes
    ca_key_kek: bytes
    etcd_endpoints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_id: _Optional[str] = ..., role: _Optional[_Union[_types_pb2.NodeSpec.Role, str]] = ..., managers: _Optional[_Iterable[str]] = ..., certificate: _Optional[bytes] = ..., ca_certificate: _Optional[bytes] = ..., ca_key_kek: _Optional[bytes] = ..., etcd_endpoints: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("node_id", "token", "description")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    token: str
    description: _types_pb2.NodeDescription
    def __init__(self, node_id: _Optional[str] = ..., token: _Optional[str] = ..., description: _Optional[_Union[_types_pb2.NodeDescription, _Mapping]] = ...) -> None: ...

class Assignments(_message.Message):
    __slots__ = ("full", "updated", "removed")
    FULL_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    full: bool
    updated: _containers.RepeatedCompositeFieldContainer[_types_pb2.Task]
    removed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, full: _Optional[bool] = ..., updated: _Optional[_Iterable[_Union[_types_pb2.Task, _Mapping]]] = ..., removed: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("session_id", "managers", "heartbeat_period_ns", "assignments")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    managers: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_period_ns: int
    assignments: Assignments
    def __init__(self, session_id: _Optional[str] = ..., managers: _Optional[_Iterable[str]] = ..., heartbeat_period_ns: _Optional[int] = ..., assignments: _Optional[_Union[Assignments, _Mapping]] = ...) -> None: ...

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
