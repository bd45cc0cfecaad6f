"""Request-body validation against Discord's OpenAPI description.

The spec lives outside the repository (``<repo>/../shared/discord/openapi.json``, MIT) and is loaded
once per process. Routes are matched by their path template; a request body is checked against the
``requestBody`` schema of the matching operation with ``$ref``s resolved inside the same document.

One deliberate relaxation: the spec types snowflakes as decimal strings, while Discord itself (and
discord.py, e.g. for attachment ids) also accepts JSON integers. ``SnowflakeType`` is widened to accept
both, so the validator flags real mistakes rather than a representation Discord is happy with.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "discord" / "openapi.json"
_SPEC_URI = "urn:discord:openapi"
_METHODS = ("get", "put", "post", "patch", "delete")


def _segments(template: str) -> tuple[str, ...]:
    return tuple(s for s in template.split("/") if s)


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def match_template(template: str, path: str) -> dict[str, str] | None:
    """Path parameters if ``path`` fits ``template`` ("/channels/{channel_id}/messages"), else None."""
    t_parts, p_parts = _segments(template), _segments(path)
    if len(t_parts) != len(p_parts):
        return None
    params: dict[str, str] = {}
    for t, p in zip(t_parts, p_parts, strict=True):
        if _is_param(t):
            params[t[1:-1]] = p
        elif t != p:
            return None
    return params


def best_template(templates: Iterable[str], path: str) -> tuple[str, dict[str, str]] | None:
    """The most specific template matching ``path``: literal segments win over parameters, leftmost first."""
    best: tuple[tuple[bool, ...], str, dict[str, str]] | None = None
    for template in templates:
        params = match_template(template, path)
        if params is None:
            continue
        score = tuple(not _is_param(s) for s in _segments(template))
        if best is None or score > best[0]:
            best = (score, template, params)
    return None if best is None else (best[1], best[2])


def _most_specific(error: ValidationError) -> ValidationError:
    """The leaf of an anyOf/oneOf error tree that got furthest into the body (the useful message)."""
    if not error.context:
        return error
    leaves = [_most_specific(child) for child in error.context]
    return max(leaves, key=lambda e: (len(e.absolute_path), e.validator not in {"const", "enum", "type"}))


@dataclass(frozen=True)
class SchemaError:
    """One way a body broke the schema: where (a JSON path) and why."""

    path: str
    message: str


class OpenAPIValidator:
    """Validates request bodies per (method, path template) with the spec's own schemas."""

    def __init__(self, spec: dict[str, Any]) -> None:
        spec = copy.deepcopy(spec)
        schemas = spec["components"]["schemas"]
        snowflake = schemas["SnowflakeType"]
        schemas["SnowflakeType"] = {"anyOf": [snowflake, {"type": "integer", "minimum": 0}]}
        self._spec = spec
        resource: Resource[Any] = DRAFT202012.create_resource(spec)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
        self.templates: tuple[str, ...] = tuple(spec["paths"])
        self._validators: dict[tuple[str, str], Draft202012Validator | None] = {}

    @classmethod
    @functools.cache
    def load(cls, path: Path = SPEC_PATH) -> OpenAPIValidator:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def operation_id(self, method: str, template: str) -> str | None:
        op = self._spec["paths"].get(template, {}).get(method.lower())
        return None if op is None else op.get("operationId")

    def _validator(self, method: str, template: str) -> Draft202012Validator | None:
        key = (method.lower(), template)
        if key not in self._validators:
            validator = None
            op = self._spec["paths"].get(template, {}).get(key[0])
            content = (op or {}).get("requestBody", {}).get("content", {})
            if "application/json" in content:
                pointer = "/".join(
                    p.replace("~", "~0").replace("/", "~1")
                    for p in (
                        "paths",
                        template,
                        key[0],
                        "requestBody",
                        "content",
                        "application/json",
                        "schema",
                    )
                )
                validator = Draft202012Validator({"$ref": f"{_SPEC_URI}#/{pointer}"}, registry=self._registry)
            self._validators[key] = validator
        return self._validators[key]

    def has_body_schema(self, method: str, template: str) -> bool:
        return self._validator(method, template) is not None

    def validate(self, method: str, template: str, body: Any) -> list[SchemaError]:
        """Every schema error of ``body``; empty when it is valid or the operation takes no JSON body."""
        validator = self._validator(method, template)
        if validator is None:
            return []
        errors = []
        for error in validator.iter_errors(body):
            deepest = _most_specific(error)
            where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in deepest.absolute_path)
            errors.append(SchemaError(path=where or "<body>", message=deepest.message[:500]))
        return errors
