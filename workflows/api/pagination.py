"""Pagination for every API list: `limit` and `offset`, both checked (DRF's falls back to the
default on nonsense and passes any integer to the database, where a huge one overflows)."""

import re

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination

from workflows.services import ServiceError

WHOLE_NUMBER = re.compile(r"[0-9]{1,30}")
# Far beyond any real list, far below PostgreSQL's bigint (OFFSET and LIMIT are bigints).
MAX_OFFSET = 10**12


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` from 1 to API_MAX_PAGE_SIZE (default PAGE_SIZE), `?offset=` from 0; 400 otherwise
    (an empty value too)."""

    @property
    def max_limit(self) -> int:
        return settings.API_MAX_PAGE_SIZE

    def get_limit(self, request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return self.default_limit
        return _whole_number(raw, self.limit_query_param, low=1, high=self.max_limit)

    def get_offset(self, request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None:
            return 0
        return _whole_number(raw, self.offset_query_param, low=0, high=MAX_OFFSET)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters


def _whole_number(raw: str, name: str, *, low: int, high: int) -> int:
    value = int(raw) if WHOLE_NUMBER.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise ServiceError(
            f"?{name}= must be a whole number from {low} to {high}, not {raw[:40]!r}",
            code="invalid_pagination",
        )
    return value
