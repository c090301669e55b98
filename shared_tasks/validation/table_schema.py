"""A Frictionless Table Schema descriptor (JSON or YAML) read into a typed, frozen schema, or refused.

The descriptor is checked against the standard's own JSON Schema (its v2 profile, kept beside this
module in schemas/) with jsonschema: the schema's own properties as a whole, and each field against
the profile's branch for its type, so that a problem names the field. Then for what the profile
cannot say: each field as table_fields reads it, a primaryKey naming no field, a name used twice.
Each problem names the field by name and index. jsonschema and the profile are loaded only when a
descriptor is read: importing this module costs a DAG processor or a code server nothing.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_tasks.validation.field_reading import FieldReading
from shared_tasks.validation.table_fields import Field, TableSchema, field_label, read_missing_values

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

# https://datapackage.org/profiles/2.0/tableschema.json as published (frictionlessdata/datapackage at
# 6a201af8, public domain): the standard's own statement of what a Table Schema descriptor is.
PROFILE = Path(__file__).with_name("schemas") / "tableschema-profile-2.0.json"
# Standard properties whose meaning this product does not apply: refused rather than ignored.
UNREAD_SCHEMA_PROPERTIES = ("foreignKeys", "uniqueKeys")


class TableSchemaError(ValueError):
    """A descriptor that is not a Table Schema this product reads; each problem names its field."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        listed = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{source} is not a valid Table Schema ({len(self.problems)} problem(s)):\n{listed}")


def load_table_schema(path: Path) -> TableSchema:
    """Read a Table Schema file: JSON (.json), YAML (.yaml, .yml); another suffix is tried as JSON."""
    source = f"schema {path.name}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TableSchemaError(source, [f"cannot be read: {error}"]) from None
    try:
        descriptor = _yaml(text) if path.suffix.lower() in (".yaml", ".yml") else _json(text)
    except ValueError as error:
        raise TableSchemaError(source, [str(error)]) from None
    return read_table_schema(descriptor, source)


def read_table_schema(descriptor: object, source: str = "schema") -> TableSchema:
    """A descriptor already parsed (a mapping) read into a TableSchema, or TableSchemaError."""
    if not isinstance(descriptor, Mapping):
        raise TableSchemaError(source, [f"is a {type(descriptor).__name__}, not an object with 'fields'"])
    problems = _schema_problems(descriptor)
    raw_fields = descriptor.get("fields")
    if problems or not isinstance(raw_fields, list):
        raise TableSchemaError(source, problems or ["'fields' is no list"])
    schema_missing = read_missing_values(descriptor.get("missingValues", [""]))
    primary_key = _primary_key(descriptor.get("primaryKey"))
    fields: list[Field] = []
    for index, raw in enumerate(raw_fields):
        field_problems, read = _read_field(index, raw, schema_missing, primary_key)
        problems += field_problems
        if read is not None:
            fields.append(read)
    problems += _names_problems(raw_fields, primary_key)
    if problems:
        raise TableSchemaError(source, problems)
    canonical = json.dumps(descriptor, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return TableSchema(
        fields=tuple(fields),
        primary_key=primary_key,
        missing_values=schema_missing,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        source=source,
    )


# --- Parsing ------------------------------------------------------------------------------------------


def _json(text: str) -> object:
    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"key {twice[0]!r} appears twice in one object")
        return dict(pairs)

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None


def _yaml(text: str) -> object:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader: see _yaml_loader
    except yaml.YAMLError as error:
        raise ValueError(f"not YAML: {error}") from None


@functools.cache
def _yaml_loader() -> type:
    """A SafeLoader with YAML 1.2's scalars: `yes`, `no`, `on`, `off` and dates stay strings
    (an enum of Yes and No is two strings, a date bound the text the field's format reads)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    dropped = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    Loader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag not in dropped]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(dropped[0], re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return Loader


# --- The profile --------------------------------------------------------------------------------------


@functools.cache
def _profile() -> dict[str, Any]:
    profile: dict[str, Any] = json.loads(PROFILE.read_text(encoding="utf-8"))
    return profile


@functools.cache
def _schema_validator() -> Validator:
    """The profile without its field branches (each field is checked against its own), and without
    fieldsMatch, which the v2 profile declares an array while the standard's text makes it a string."""
    from jsonschema import Draft7Validator

    profile = copy.deepcopy(_profile())
    profile["properties"]["fields"]["items"] = {}
    del profile["properties"]["fieldsMatch"]
    return Draft7Validator(profile)


@functools.cache
def _field_validator(field_type: str) -> Validator:
    from jsonschema import Draft7Validator

    branches = _profile()["properties"]["fields"]["items"]["oneOf"]
    branch = copy.deepcopy(next(b for b in branches if b["properties"]["type"]["enum"] == [field_type]))
    branch["required"] = ["name"]  # a field without a type is an `any` field
    return Draft7Validator(branch)


def _profile_problems(validator: Validator, instance: object, where: str) -> dict[str, str]:
    """The profile's problems by property path ('' for the object itself), the first of each."""
    from jsonschema.exceptions import best_match

    found: dict[str, str] = {}
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path = "/".join(map(str, error.absolute_path))
        if path not in found:
            error = best_match(error.context) if error.context else error
            found[path] = f"{where}{path or 'the object'}: {error.message}"
    return found


def _schema_problems(descriptor: Mapping[str, Any]) -> list[str]:
    problems = list(_profile_problems(_schema_validator(), dict(descriptor), "").values())
    matched = descriptor.get("fieldsMatch", "exact")
    if matched != "exact":
        problems.append(f"fieldsMatch {matched!r}: only 'exact' is read (the header is the fields, in order)")
    for name in UNREAD_SCHEMA_PROPERTIES:
        if name in descriptor:
            problems.append(f"{name}: not supported by this product")
    return problems


# --- Schema-level properties ------------------------------------------------------------------------


def _primary_key(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):  # v1's single field name
        return (raw,)
    return tuple(str(name) for name in raw) if isinstance(raw, list) else ()


def _names_problems(raw_fields: list[Any], primary_key: tuple[str, ...]) -> list[str]:
    problems = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_fields):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in first_index:
            problems.append(f"{field_label(index, name)}: name already used by fields[{first_index[name]}]")
        else:
            first_index[name] = index
    problems += [f"primaryKey: names no field {name!r}" for name in primary_key if name not in first_index]
    return problems


# --- One field --------------------------------------------------------------------------------------


def _read_field(
    index: int, raw: object, schema_missing: tuple[str, ...], primary_key: tuple[str, ...]
) -> tuple[list[str], Field | None]:
    """One field descriptor's problems, each naming the field, and its Field when it has none."""
    read = FieldReading(index, raw, schema_missing, primary_key)
    if read.problems:
        return read.problems, None
    profile = _profile_problems(_field_validator(read.type), dict(read.raw), f"{read.where}: ")
    # Our message for a property replaces the profile's (the profile's oneOf says little).
    merged = {**profile, **{path: f"{read.where}: {message}" for path, message in read.property_problems.items()}}
    return [merged[path] for path in sorted(merged)], None if merged else read.field
