from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscribeLogsRequest(_message.Message):
    __slots__ = ("services", "tasks", "follow", "tail", "since_ns")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    follow: bool
    tail: int
    since_ns: int
    def __init__(self, services: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[str]] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ..., since_ns: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("task_id", "timestamp_ns", "stream", "data")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    timestamp_ns: int
    stream: str
    data: bytes
    def __init__(self, task_id: _Optional[str] = ..., timestamp_ns: _Optional[int] = ..., stream: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class LogTask(_message.Message):
    __slots__ = ("task_id", "service_id", "service_name", "slot", "node_id", "node_name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    service_id: str
    service_name: str
    slot: int
    node_id: str
    node_name: str
    def __init__(self, task_id: _Optional[str] = ..., service_id: _Optional[str] = ..., service_name: _Optional[str] = ..., slot: _Optional[int] = ..., node_id: _Optional[str] = ..., node_name: _Optional[str] = ...) -> None: ...

class SubscribeLogsMessage(_message.Message):
    __slots__ = ("lines", "tasks", "warning")
    LINES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    tasks: _containers.RepeatedCompositeFieldContainer[LogTask]
    warning: str
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., tasks: _Optional[_Iterable[_Union[LogTask, _Mapping]]] = ..., warning: _Optional[str] = ...) -> None: ...

class LogSubscription(_message.Message):
    __slots__ = ("id", "service_ids", "task_ids", "follow", "tail", "since_ns", "publish_to")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TO_FIELD_NUMBER: _ClassVar[int]
    id: str
    service_ids: _containers.RepeatedScalarFieldContainer[str]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    follow: bool
    tail: int
    since_ns: int
    publish_to: str
    def __init__(self, id: _Optional[str] = ..., service_ids: _Optional[_Iterable[str]] = ..., task_ids: _Optional[_Iterable[str]] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ..., since_ns: _Optional[int] = ..., publish_to: _Optional[str] = ...) -> None: ...

class LogSubscriptions(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[LogSubscription]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[LogSubscription, _Mapping]]] = ...) -> None: ...

class PublishLogsMessage(_message.Message):
    __slots__ = ("subscription_id", "lines", "close")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    close: bool
    def __init__(self, subscription_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., close: _Optional[bool] = ...) -> None: ...

class PublishLogsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
