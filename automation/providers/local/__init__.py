"""The `local` provider: real OS processes declared in a YAML services file, supervised on this host.

services_file -> processes -> health -> state -> replicas -> provider (`LocalProvider`, name "local").
"""

from automation.providers.local.processes import ReplicaProcess
from automation.providers.local.provider import LocalProvider
from automation.providers.local.services_file import (
    DEFAULT_SERVICES_FILE,
    SERVICES_FILE_ENV,
    ServicesFile,
    ServicesFileError,
    ServiceSpec,
    load_services_file,
)
from automation.providers.local.state import DEFAULT_STATE_DIR, STATE_DIR_ENV, ServiceState

__all__ = [
    "DEFAULT_SERVICES_FILE",
    "DEFAULT_STATE_DIR",
    "SERVICES_FILE_ENV",
    "STATE_DIR_ENV",
    "LocalProvider",
    "ReplicaProcess",
    "ServiceSpec",
    "ServiceState",
    "ServicesFile",
    "ServicesFileError",
    "load_services_file",
]
