"""The settings: their schema, the checks made before any data moves, and the read settings."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from singer_sdk import typing as th

from tap_ceilometer.errors import ConfigError
from tap_ceilometer.session import select_auth_mode
from tap_ceilometer.timestamps import parse_api_time

if TYPE_CHECKING:
    from collections.abc import Mapping, Set

QUERY_METHODS = ("auto", "complex", "simple")
APIS = ("auto", "v2", "gnocchi")
LAYOUTS = ("per_meter", "single")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CONDITION = th.ObjectType(
    th.Property("field", th.StringType, required=True),
    th.Property("op", th.StringType),
    th.Property("value", th.StringType, required=True),
    th.Property("type", th.StringType),
)

CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    # Keystone
    th.Property(
        "auth_url",
        th.URIType,
        description="Keystone URL, e.g. https://keystone:5000/v3 (v2.0 URLs work too)",
    ),
    th.Property(
        "username", th.StringType, description="Keystone user name (password authentication)"
    ),
    th.Property("user_id", th.StringType, description="Keystone user id, instead of username"),
    th.Property("password", th.StringType, secret=True, description="Keystone password"),
    th.Property(
        "project_name",
        th.StringType,
        description=("Project to scope the token to; with the admin role, every project's samples"),
    ),
    th.Property("project_id", th.StringType, description="Project id, instead of project_name"),
    th.Property(
        "tenant_name",
        th.StringType,
        description="Keystone v2.0 name of the project (same as project_name)",
    ),
    th.Property(
        "user_domain_name",
        th.StringType,
        default="Default",
        description="Domain of the user (Keystone v3)",
    ),
    th.Property(
        "project_domain_name",
        th.StringType,
        default="Default",
        description="Domain of the project (Keystone v3)",
    ),
    th.Property(
        "application_credential_id",
        th.StringType,
        description="Application credential id, instead of a password",
    ),
    th.Property(
        "application_credential_secret",
        th.StringType,
        secret=True,
        description="Application credential secret",
    ),
    th.Property(
        "token",
        th.StringType,
        secret=True,
        description="A pre-issued Keystone token; needs endpoint_override",
    ),
    th.Property(
        "endpoint_override",
        th.URIType,
        description="Ceilometer URL to use instead of the service catalog's, e.g. http://ceilometer:8777",
    ),
    th.Property(
        "region_name",
        th.StringType,
        description="Region of the metering endpoint in the catalog",
    ),
    th.Property(
        "interface",
        th.StringType,
        default="public",
        allowed_values=["public", "internal", "admin"],
        description="Which catalog endpoint to use",
    ),
    th.Property(
        "service_type",
        th.StringType,
        default="metering",
        description="Catalog service type of Ceilometer",
    ),
    th.Property(
        "ca_cert",
        th.StringType,
        description="CA bundle (PEM file) to verify Keystone and Ceilometer TLS certificates",
    ),
    th.Property(
        "insecure",
        th.BooleanType,
        default=False,
        description="Skip TLS certificate verification (not for production)",
    ),
    th.Property(
        "api",
        th.StringType,
        default="auto",
        allowed_values=list(APIS),
        description=(
            "v2: Ceilometer's sample API (up to Pike); gnocchi: Gnocchi's measures (Queens and"
            " later); auto: from the catalog (a metering endpoint whose sample API works, else"
            " a metric endpoint) or from what endpoint_override answers"
        ),
    ),
    th.Property(
        "gnocchi_basic_user",
        th.StringType,
        description=(
            "A standalone Gnocchi's user (auth_mode basic: a name, no password; `admin` sees"
            " everything); needs endpoint_override, no Keystone settings"
        ),
    ),
    # What to export
    th.Property(
        "meters",
        th.ArrayType(th.StringType),
        description="Meters to export; default: every meter the API lists",
    ),
    th.Property(
        "selections",
        th.ArrayType(
            th.ObjectType(
                th.Property(
                    "name",
                    th.StringType,
                    description="Stable name of the selection; its bookmarks are kept under it",
                ),
                th.Property(
                    "query",
                    th.ArrayType(CONDITION),
                    description="API v2: simple-query conditions (field, op, value, type), ANDed",
                ),
                th.Property(
                    "search",
                    th.CustomType({"type": ["object", "string"]}),
                    description=(
                        'Gnocchi: a resource search, e.g. {"=": {"project_id": "<id>"}} or'
                        ' the string form project_id="<id>"'
                    ),
                ),
                th.Property(
                    "resource_type",
                    th.StringType,
                    description="Gnocchi: the resource type searched (default generic)",
                ),
                th.Property(
                    "meters",
                    th.ArrayType(th.StringType),
                    description="Meters this query applies to; default: all exported meters",
                ),
            )
        ),
        description="Filter queries and the meters they apply to; each keeps its own bookmark",
    ),
    th.Property(
        "layout",
        th.StringType,
        default="per_meter",
        allowed_values=list(LAYOUTS),
        description=(
            "per_meter: one stream (table) per meter; single: one stream `samples` for every"
            " meter (the original request's one table), bookmarks still kept per meter"
        ),
    ),
    th.Property(
        "partition",
        th.ObjectType(
            th.Property("index", th.IntegerType, required=True, description="0 to count - 1"),
            th.Property("count", th.IntegerType, required=True, description="How many parts"),
        ),
        description=(
            "Export one stable, disjoint share of the meters (by a hash of the meter name);"
            " `count` runs with indexes 0 to count - 1 export everything once"
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="Export samples from this time on (first run); default: all",
    ),
    th.Property("end_date", th.DateTimeType, description="Export samples before this time only"),
    th.Property(
        "granularities",
        th.ArrayType(th.IntegerType),
        description=(
            "Gnocchi: periods (seconds) to export, where a metric's policy has them; default:"
            " per metric, the finest kept at least 7 days (300 s for ceilometer-low)"
        ),
    ),
    th.Property(
        "aggregations",
        th.ArrayType(th.StringType),
        description=(
            "Gnocchi: aggregation methods to export, where a metric's policy has them; default:"
            " mean and rate:mean (else every method of the policy)"
        ),
    ),
    th.Property(
        "metrics_per_request",
        th.IntegerType,
        default=100,
        description="Gnocchi: series read in one POST /v1/aggregates",
    ),
    # How
    th.Property("page_size", th.IntegerType, default=1000, description="Samples per API request"),
    th.Property(
        "lookback_window",
        th.IntegerType,
        default=0,
        description="Seconds re-read below the bookmark to catch samples recorded late",
    ),
    th.Property(
        "query_method",
        th.StringType,
        default="auto",
        allowed_values=list(QUERY_METHODS),
        description=(
            "complex: keyset pages over POST /v2/query/samples; simple: time windows over"
            " GET /v2/meters/{name} (for HBase storage); auto: complex where the API has it"
        ),
    ),
    th.Property(
        "poll_interval",
        th.IntegerType,
        description="Seconds between sweeps; when set, the tap keeps running",
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=5,
        description=(
            "Retries of a failed request (5xx, timeouts, resets), with exponential backoff"
            " and jitter"
        ),
    ),
    th.Property(
        "request_timeout",
        th.NumberType,
        default=300,
        description="Seconds to wait for one API answer",
    ),
).to_dict()


def check_settings(config: Mapping[str, Any], known: Set[str]) -> None:
    """Raise ConfigError naming the first setting to change; `known` are the schema's keys."""
    for key in sorted(set(config) - known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        msg = f"Unknown setting {key!r}{hint}; `tap-ceilometer --about` lists the settings."
        raise ConfigError(msg)
    for key in ("auth_url", "endpoint_override"):
        if config.get(key):
            url = urlparse(str(config[key]))
            if url.scheme not in ("http", "https") or not url.hostname:
                msg = f"{key} {config[key]!r} is not an http(s) URL."
                raise ConfigError(msg)
    select_auth_mode(config)
    dates: dict[str, datetime] = {}
    for key in ("start_date", "end_date"):
        if config.get(key):
            try:
                dates[key] = parse_api_time(str(config[key]))
            except ValueError:
                msg = (
                    f"{key} {config[key]!r} is not an ISO 8601 date-time;"
                    " write it like 2024-01-01T00:00:00Z."
                )
                raise ConfigError(msg) from None
    if "start_date" in dates and "end_date" in dates and dates["end_date"] <= dates["start_date"]:
        msg = "end_date must be later than start_date."
        raise ConfigError(msg)
    for key, least in (
        ("page_size", 1),
        ("metrics_per_request", 1),
        ("lookback_window", 0),
        ("max_retries", 0),
        ("poll_interval", 1),
    ):
        if config.get(key) is not None and int(config[key]) < least:
            msg = f"{key} must be at least {least}."
            raise ConfigError(msg)
    if config.get("request_timeout") is not None and float(config["request_timeout"]) <= 0:
        msg = "request_timeout must be positive."
        raise ConfigError(msg)
    if config.get("partition") is not None:
        Partition.from_config(config["partition"])
    _check_gnocchi_settings(config)


def _check_gnocchi_settings(config: Mapping[str, Any]) -> None:
    for grain in config.get("granularities") or []:
        if not isinstance(grain, int) or grain < 1:
            msg = f"granularities are whole seconds of at least 1, not {grain!r}."
            raise ConfigError(msg)
    if config.get("gnocchi_basic_user") and config.get("api") == "v2":
        msg = "gnocchi_basic_user is for a standalone Gnocchi; it cannot read Ceilometer's API v2."
        raise ConfigError(msg)


@dataclass(frozen=True)
class ReadSettings:
    """How streams read: the time range, the page size, the lookback and the query method."""

    start: datetime = EPOCH
    end: datetime | None = None
    page_size: int = 1000
    lookback: timedelta = timedelta(0)
    query_method: str = "auto"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReadSettings:
        start, end = config.get("start_date"), config.get("end_date")
        return cls(
            start=parse_api_time(str(start)) if start else EPOCH,
            end=parse_api_time(str(end)) if end else None,
            page_size=int(config.get("page_size") or 1000),
            lookback=timedelta(seconds=int(config.get("lookback_window") or 0)),
            query_method=str(config.get("query_method") or "auto"),
        )


@dataclass(frozen=True)
class Partition:
    """One share of a partitioned export: the meters whose name hashes to `index` of `count`."""

    index: int = 0
    count: int = 1

    @classmethod
    def from_config(cls, value: Any) -> Partition:
        if value is None:
            return cls()
        index, count = value.get("index"), value.get("count")
        if not isinstance(count, int) or count < 1:
            msg = f"partition.count must be a whole number of at least 1, not {count!r}."
            raise ConfigError(msg)
        if not isinstance(index, int) or not 0 <= index < count:
            msg = f"partition.index must be 0 to {count - 1} (partition.count - 1), not {index!r}."
            raise ConfigError(msg)
        return cls(index, count)

    def owns(self, name: str) -> bool:
        """Whether `name` falls in this share: stable across runs, machines and Python
        versions (a digest of the name, not Python's salted hash)."""
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index
