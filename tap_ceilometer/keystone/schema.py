"""The schemas of the Keystone streams: a whitelist, so that no secret field can ever pass."""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

ID_MAX_LENGTH = 64  # Keystone's id columns are String(64)


def _id(name: str, description: str) -> th.Property[Any]:
    return th.Property(
        name, th.StringType(max_length=ID_MAX_LENGTH), required=True, description=description
    )


PROJECT_SCHEMA: dict[str, Any] = th.PropertiesList(
    _id("id", "Keystone's project id: the samples' project_id (primary key)"),
    th.Property("name", th.StringType, description="The project's name"),
    th.Property("domain_id", th.StringType, description="The domain the project belongs to"),
    th.Property(
        "parent_id",
        th.StringType,
        description="The parent project; the domain's id for a top-level project",
    ),
    th.Property("enabled", th.BooleanType, description="False for a disabled project"),
    th.Property("description", th.StringType, description="Free text; may be empty"),
    th.Property("is_domain", th.BooleanType, description="True for a project acting as a domain"),
).to_dict()

DOMAIN_SCHEMA: dict[str, Any] = th.PropertiesList(
    _id("id", "Keystone's domain id (primary key)"),
    th.Property("name", th.StringType, description="The domain's name"),
    th.Property("enabled", th.BooleanType, description="False for a disabled domain"),
    th.Property("description", th.StringType, description="Free text; may be empty"),
).to_dict()

# Users carry password hashes, emails and options in some deployments' answers: only these
# fields are ever read from a user.
USER_SCHEMA: dict[str, Any] = th.PropertiesList(
    _id("id", "Keystone's user id: the samples' user_id (primary key)"),
    th.Property("name", th.StringType, description="The user's name"),
    th.Property("domain_id", th.StringType, description="The domain the user belongs to"),
    th.Property("enabled", th.BooleanType, description="False for a disabled user"),
    th.Property("default_project_id", th.StringType, description="The user's default project"),
    th.Property("description", th.StringType, description="Free text; may be empty"),
).to_dict()
