from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Actor(_message.Message):
    __slots__ = ("actor_id", "version", "actor_template_namespace", "actor_template_name", "status", "ateom_pod_namespace", "ateom_pod_name", "ateom_pod_ip", "last_snapshot", "in_progress_snapshot")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Actor.Status]
        STATUS_RESUMING: _ClassVar[Actor.Status]
        STATUS_RUNNING: _ClassVar[Actor.Status]
        STATUS_SUSPENDING: _ClassVar[Actor.Status]
        STATUS_SUSPENDED: _ClassVar[Actor.Status]
    STATUS_UNSPECIFIED: Actor.Status
    STATUS_RESUMING: Actor.Status
    STATUS_RUNNING: Actor.Status
    STATUS_SUSPENDING: Actor.Status
    STATUS_SUSPENDED: Actor.Status
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_TEMPLATE_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_TEMPLATE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATEOM_POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ATEOM_POD_NAME_FIELD_NUMBER: _ClassVar[int]
    ATEOM_POD_IP_FIELD_NUMBER: _ClassVar[int]
    LAST_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    version: int
    actor_template_namespace: str
    actor_template_name: str
    status: Actor.Status
    ateom_pod_namespace: str
    ateom_pod_name: str
    ateom_pod_ip: str
    last_snapshot: str
    in_progress_snapshot: str
    def __init__(self, actor_id: _Optional[str] = ..., version: _Optional[int] = ..., actor_template_namespace: _Optional[str] = ..., actor_template_name: _Optional[str] = ..., status: _Optional[_Union[Actor.Status, str]] = ..., ateom_pod_namespace: _Optional[str] = ..., ateom_pod_name: _Optional[str] = ..., ateom_pod_ip: _Optional[str] = ..., last_snapshot: _Optional[str] = ..., in_progress_snapshot: _Optional[str] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("worker_namespace", "worker_pool", "worker_pod", "actor_namespace", "actor_template", "actor_id", "ip", "version")
    WORKER_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKER_POOL_FIELD_NUMBER: _ClassVar[int]
    WORKER_POD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    worker_namespace: str
    worker_pool: str
    worker_pod: str
    actor_namespace: str
    actor_template: str
    actor_id: str
    ip: str
    version: int
    def __init__(self, worker_namespace: _Optional[str] = ..., worker_pool: _Optional[str] = ..., worker_pod: _Optional[str] = ..., actor_namespace: _Optional[str] = ..., actor_template: _Optional[str] = ..., actor_id: _Optional[str] = ..., ip: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...
