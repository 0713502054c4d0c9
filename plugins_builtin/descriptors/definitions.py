"""The descriptor-scope field definitions, asked of the entities plugin's ``entities.fields``
service (admin-declared keys: type, label, rules).

Without that service (the entities plugin disabled, or an older one) every key is free: values
are taken as they come.
"""

from __future__ import annotations

from typing import Any

from ff_plugin_sdk import Kernel

SERVICE = "entities.fields"
#: the field-definition scope that governs descriptors
SCOPE = "descriptor"


class Definitions:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def _service(self) -> Any:
        return self.kernel.services.get(SERVICE)

    async def check(self, key: str, value: Any, path: str = "$.value") -> Any:
        """The value as its definition normalizes it (a date made ``YYYY-MM-DD``...);
        raises ``ValidationFailed`` naming ``path`` and the rule.  A key with no definition
        comes back unchanged."""
        service = self._service()
        if service is None:
            return value
        return service.check_value(SCOPE, key, value, path=path)

    async def get(self, key: str) -> dict[str, Any] | None:
        """The key's definition (``field_type``, ``label``, ``options``...), or None."""
        service = self._service()
        if service is None:
            return None
        return service.definition(SCOPE, key)

    async def all(self) -> list[dict[str, Any]]:
        """Every live descriptor-scope definition."""
        service = self._service()
        if service is None:
            return []
        return list(service.definitions(SCOPE))
