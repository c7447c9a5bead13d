"""Bad settings are refused at start, before any request, with one clear sentence each."""

from __future__ import annotations

import re
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_ceilometer.errors import ConfigError
from tap_ceilometer.naming import stream_names
from tap_ceilometer.tap import TapCeilometer
from tap_ceilometer.v2.query import parse_selections

PASSWORD_AUTH = {
    "auth_url": "http://127.0.0.1:1/identity/v3",
    "username": "admin",
    "password": "s3cret-password",
    "project_name": "admin",
}


def _refusal(config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        TapCeilometer(config=config, setup_mapper=False, validate_config=True)
    return str(caught.value)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "No credentials"),
        ({"auth_url": "http://k/v3", "username": "u"}, "needs password"),
        ({"username": "u", "password": "p"}, "needs auth_url"),
        (
            {**PASSWORD_AUTH, "application_credential_id": "x"},
            "Contradictory credentials: settings for password and application credential",
        ),
        ({"token": "t"}, "Token authentication needs endpoint_override"),
        ({**PASSWORD_AUTH, "tenant_name": "other"}, "tenant_name and project_name"),
        ({**PASSWORD_AUTH, "start_date": "2024-13-45T00:00:00Z"}, "start_date"),
        (
            {**PASSWORD_AUTH, "start_date": "2024-02-01T00:00:00Z", "end_date": "2024-01-01"},
            "end_date must be later than start_date",
        ),
        ({**PASSWORD_AUTH, "page_size": 0}, "page_size must be at least 1"),
        (
            {
                **PASSWORD_AUTH,
                "selections": [{"query": [{"field": "timestamp", "op": "gt", "value": "x"}]}],
            },
            "use start_date",
        ),
        (
            {
                **PASSWORD_AUTH,
                "selections": [{"query": [{"field": "project", "op": "ne", "value": "x"}]}],
            },
            "only eq",
        ),
        (
            {
                **PASSWORD_AUTH,
                "selections": [{"query": [{"field": "counter_volume", "value": "1"}]}],
            },
            "does not filter samples on 'counter_volume'",
        ),
        ({**PASSWORD_AUTH, "selections": [{"query": [], "meters": []}]}, "non-empty list"),
        ({**PASSWORD_AUTH, "selections": [{"query": [], "bogus": 1}]}, "unknown keys ['bogus']"),
    ],
)
def test_bad_settings_are_refused_clearly(config, expected):
    message = _refusal(config)
    assert expected in message
    assert "s3cret-password" not in message


def test_schema_errors_come_from_the_sdk_validator():
    with pytest.raises(ConfigValidationError) as caught:
        TapCeilometer(config={**PASSWORD_AUTH, "page_size": "many"}, setup_mapper=False)
    assert any("page_size" in error for error in caught.value.errors)


def test_selection_keys_are_stable_and_named_ones_win():
    raw = [
        {"query": [{"field": "project_id", "value": "p1"}]},
        {"name": "billing", "query": [{"field": "resource", "op": "eq", "value": "r"}]},
    ]
    first, second = parse_selections(raw)
    assert first.key == parse_selections(raw)[0].key
    assert first.key.startswith("q-")
    assert second.key == "billing"
    with pytest.raises(ConfigError, match="share the name"):
        parse_selections([raw[0], raw[0]])


def test_selection_metadata_values_are_typed_like_the_simple_query():
    (selection,) = parse_selections(
        [
            {
                "query": [
                    {"field": "metadata.flavor.vcpus", "value": "2"},
                    {"field": "metadata.display_name", "value": "web-1"},
                    {"field": "resource_metadata.size", "value": "0", "type": "string"},
                ]
            }
        ]
    )
    assert [c.as_complex_filter() for c in selection.conditions] == [
        {"=": {"metadata.flavor.vcpus": 2}},
        {"=": {"metadata.display_name": "web-1"}},
        {"=": {"metadata.size": "0"}},
    ]


def test_selection_on_source_avoids_the_complex_query():
    (selection,) = parse_selections([{"query": [{"field": "source", "value": "openstack"}]}])
    assert not selection.complex_query_safe


@pytest.mark.parametrize(
    ("meters", "expected"),
    [
        (["disk.read.bytes"], {"disk.read.bytes": "disk_read_bytes"}),
        (["instance:m1.tiny"], {"instance:m1.tiny": "instance_m1_tiny"}),
        (["cpu_util"], {"cpu_util": "cpu_util"}),
    ],
)
def test_stream_names_are_sql_safe(meters, expected):
    assert stream_names(meters) == expected


def test_stream_names_never_collide():
    meters = ["disk.read.bytes", "disk_read_bytes", "Disk.Read.Bytes", "disk:read:bytes", "x" * 90]
    names = stream_names(meters)
    assert len(set(names.values())) == len(meters)
    assert names["disk_read_bytes"] == "disk_read_bytes"  # an already safe name is kept
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]{0,58}", name) for name in names.values())
