"""Storage providers (filesystem, S3, managed SeaweedFS) behind one interface.

Registered as the ``storage`` plugin: it contributes the ``fs`` and ``s3`` provider types
through ``faceforge_storage_providers``, exactly as a third-party plugin would add its own.
"""

from __future__ import annotations

from typing import Any

from ff_plugin_sdk import StorageProviderType, hookimpl
from ff_plugin_sdk.storage import StorageContext
from providers import fs


def _s3(context: StorageContext) -> Any:
    # aiobotocore is imported only when S3 is enabled: it costs start-up time.
    from providers import s3

    return s3.factory(context)


@hookimpl
def faceforge_storage_providers() -> list[StorageProviderType]:
    return [StorageProviderType(name="fs", factory=fs.factory),
            StorageProviderType(name="s3", factory=_s3)]
