"""A Table Schema file is read into the schema the checks use, or refused naming the field and the problem.

The invalid descriptors are generated: each kind of breakage (an unknown or unsupported type, every
constraint on every type that may not have it, bounds and enum values that are no value of the
field, minimum above maximum, a pattern that does not compile, ...) is written into one field of a
valid descriptor holding a field of each type, and the refusal must name that field by name and
index, and the problem. The fingerprint that keys remembered verdicts follows the file's content.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared_tasks.run import trust
from shared_tasks.storage.catalog import FileCatalog
from shared_tasks.validation import schema
from shared_tasks.validation.schema import (
    COLUMN_NAMES,
    COLUMNS_BY_NAME,
    GENERATE_PROPERTY,
    ID_COLUMN,
    SCHEMA_FILE,
    DatasetRules,
    IntColumn,
    employee_rules,
)
from shared_tasks.validation.table_fields import (
    CONSTRAINTS_OF,
    READ_TYPES,
    STANDARD_CONSTRAINTS,
    STANDARD_TYPES,
    TableSchema,
)
from shared_tasks.validation.table_schema import TableSchemaError, load_table_schema, read_table_schema

BASE: dict[str, Any] = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "minimum": 1}},
        {"name": "price", "type": "number", "constraints": {"maximum": 1e6}},
        {"name": "label", "type": "string", "constraints": {"maxLength": 20}},
        {"name": "active", "type": "boolean"},
        {"name": "day", "type": "date", "format": "%d/%m/%Y"},
        {"name": "at", "type": "datetime"},
        {"name": "note"},
    ],
    "primaryKey": ["id"],
}
INDEX = {f["name"]: number for number, f in enumerate(BASE["fields"])}
BY_TYPE = {f.get("type", "any"): f["name"] for f in BASE["fields"]}
A_VALUE_OF = {
    "minimum": 1,
    "maximum": 1,
    "exclusiveMinimum": 1,
    "exclusiveMaximum": 1,
    "pattern": "x",
    "minLength": 1,
    "maxLength": 1,
    "jsonSchema": {},
}
WRONG_VALUE = {"integer": "ten", "number": "x", "boolean": "maybe", "date": "2024-02-30", "datetime": "noon"}
ORDERED_PAIR = {
    "integer": (5, 1),
    "number": (5.5, 1.5),
    "date": ("01/02/2024", "01/01/2024"),
    "datetime": ("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"),
}


def broken(name: str, change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """BASE with the field `name` changed: properties set (constraints merged), some dropped."""
    descriptor = copy.deepcopy(BASE)
    field = descriptor["fields"][INDEX[name]]
    for key in drop:
        field.pop(key, None)
    for key, value in change.items():
        if key == "constraints":
            field.setdefault("constraints", {}).update(value)
        else:
            field[key] = value
    return descriptor


def field_cases() -> dict[str, tuple[dict[str, Any], str, str]]:
    """Each kind of invalid field: (descriptor, the field's name, a fragment of its problem)."""
    cases = {"unknown type": (broken("id", {"type": "integr"}), "id", "unknown type 'integr'")}
    for type_name in STANDARD_TYPES:
        if type_name not in READ_TYPES:
            descriptor = broken("label", {"type": type_name}, drop=("constraints",))
            cases[f"type {type_name}"] = (descriptor, "label", f"type {type_name!r} is not supported by this product")
    for type_name, name in BY_TYPE.items():
        for constraint in STANDARD_CONSTRAINTS:
            if constraint not in CONSTRAINTS_OF[type_name]:
                descriptor = broken(name, {"constraints": {constraint: A_VALUE_OF[constraint]}})
                fragment = f"constraint {constraint!r} is not valid for type {type_name!r}"
                cases[f"{constraint} on a {type_name}"] = (descriptor, name, fragment)
        cases[f"an unknown constraint on a {type_name}"] = (
            broken(name, {"constraints": {"maxValue": 3}}),
            name,
            f"constraint 'maxValue' is no Table Schema constraint, for type {type_name!r}",
        )
        if type_name in WRONG_VALUE:
            wrong = WRONG_VALUE[type_name]
            descriptor = broken(name, {"constraints": {"enum": [wrong]}})
            cases[f"an enum value that is no {type_name}"] = (descriptor, name, f"enum value {wrong!r} is not a valid")
        if type_name in ORDERED_PAIR:
            wrong = WRONG_VALUE[type_name]
            for bound in ("minimum", "exclusiveMaximum"):
                descriptor = broken(name, {"constraints": {bound: wrong}}, drop=("constraints",))
                cases[f"a {bound} that is no {type_name}"] = (descriptor, name, f"{bound} {wrong!r} is not a valid")
            high, low = ORDERED_PAIR[type_name]
            descriptor = broken(name, {"constraints": {"minimum": high, "maximum": low}})
            cases[f"minimum above maximum of a {type_name}"] = (descriptor, name, f"minimum {high!r} is above maximum")
            descriptor = broken(name, {"constraints": {"exclusiveMinimum": low, "maximum": low}}, drop=("constraints",))
            cases[f"an empty exclusive range of a {type_name}"] = (descriptor, name, "leaves no value below maximum")
            descriptor = broken(name, {"constraints": {"minimum": low, "exclusiveMinimum": low}}, drop=("constraints",))
            cases[f"minimum and exclusiveMinimum of a {type_name}"] = (descriptor, name, "are both given")
    cases |= {
        "a string enum value that is a number": (
            broken("label", {"constraints": {"enum": ["a", 1]}}),
            "label",
            "enum value 1 is not a valid string",
        ),
        "an enum value listed twice (as written or as a value)": (
            broken("id", {"constraints": {"enum": ["1", "01"]}}),
            "id",
            "enum value '01' is listed twice",
        ),
        "an enum value our formula rule refuses": (
            broken("label", {"constraints": {"enum": ["ok", "=1+1"]}}),
            "label",
            "enum value '=1+1' would be refused as a spreadsheet formula",
        ),
        "a pattern that does not compile": (
            broken("label", {"constraints": {"pattern": "(ab"}}),
            "label",
            "pattern '(ab' is not a regular expression",
        ),
        "minLength above maxLength": (
            broken("label", {"constraints": {"minLength": 30}}),
            "label",
            "minLength 30 is above maxLength 20",
        ),
        "a negative minLength": (
            broken("label", {"constraints": {"minLength": -1}}),
            "label",
            "minLength -1 is not a whole number of characters",
        ),
        "required not a boolean": (
            broken("active", {"constraints": {"required": "yes"}}),
            "active",
            "constraints/required: 'yes' is not of type 'boolean'",
        ),
        "unique not a boolean": (
            broken("note", {"constraints": {"unique": 1}}),
            "note",
            "constraints/unique: 1 is not of type 'boolean'",
        ),
        "a value both true and false": (
            broken("active", {"trueValues": ["yes", "1"], "falseValues": ["no", "1"]}),
            "active",
            "'1' is in both trueValues and falseValues",
        ),
        "trueValues on an integer": (broken("id", {"trueValues": ["1"]}), "id", "valid for type 'boolean' only"),
        "a format of no integer": (
            broken("id", {"format": "currency"}),
            "id",
            "format 'currency' is not valid for type 'integer'",
        ),
        "a string format not read": (broken("label", {"format": "email"}), "label", "format 'email': not supported"),
        "the any format of a date": (broken("day", {"format": "any"}), "day", "format 'any': not supported"),
        "a bad strptime directive": (broken("day", {"format": "%d/%Q"}), "day", "is not a strptime pattern"),
        "a date format without a day": (broken("day", {"format": "%Y-%m"}), "day", "does not read back the date"),
        "a datetime format without the time": (broken("at", {"format": "%Y-%m-%d"}), "at", "does not read back"),
        "categories": (broken("label", {"categories": ["a", "b"]}), "label", "categories: not supported"),
        "a decimal comma": (broken("price", {"decimalChar": ","}), "price", "decimalChar: only '.'"),
        "a group character": (broken("price", {"groupChar": ","}), "price", "groupChar: not supported"),
        "numbers with text around": (broken("price", {"bareNumber": False}), "price", "bareNumber false"),
        "a missing value not a string": (
            broken("note", {"missingValues": [None]}),
            "note",
            "missingValues",
        ),
        "a name used twice": (broken("note", {"name": "label"}), "label", "name already used by fields[2]"),
        "no name": (broken("note", {"name": ""}), "", "has no name"),
    }
    return cases


FIELD_CASES = field_cases()


@pytest.mark.parametrize("kind", sorted(FIELD_CASES))
def test_an_invalid_field_is_refused_naming_the_field_and_the_problem(kind: str) -> None:
    descriptor, name, fragment = FIELD_CASES[kind]
    with pytest.raises(TableSchemaError) as caught:
        read_table_schema(descriptor, "schema test.json")
    index = INDEX["note"] if kind in ("no name", "a name used twice") else INDEX[name]
    where = f"field {name!r} (fields[{index}])" if name else f"fields[{index}]"
    assert any(problem.startswith(where) and fragment in problem for problem in caught.value.problems), (
        caught.value.problems
    )
    assert str(caught.value).startswith("schema test.json is not a valid Table Schema")


def test_the_invalid_fields_cover_every_type_and_constraint() -> None:
    for type_name in READ_TYPES:
        for constraint in set(STANDARD_CONSTRAINTS) - set(CONSTRAINTS_OF[type_name]):
            assert f"{constraint} on a {type_name}" in FIELD_CASES
    assert {f"type {t}" for t in STANDARD_TYPES if t not in READ_TYPES} <= set(FIELD_CASES)
    assert len(FIELD_CASES) > 60


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"primaryKey": ["id", "nope"]}, "primaryKey: names no field 'nope'"),
        ({"primaryKey": "nope"}, "primaryKey: names no field 'nope'"),
        ({"primaryKey": 3}, "primaryKey: 3 is not of type"),
        ({"fields": []}, "fields: [] should be non-empty"),
        ({"fields": None}, "fields: None is not of type 'array'"),
        ({"missingValues": "NA"}, "missingValues: 'NA' is not of type 'array'"),
        ({"foreignKeys": [{"fields": ["id"], "reference": {"fields": ["id"]}}]}, "foreignKeys: not supported"),
        ({"uniqueKeys": [["id", "label"]]}, "uniqueKeys: not supported"),
        ({"fieldsMatch": "subset"}, "fieldsMatch 'subset': only 'exact' is read"),
    ],
)
def test_an_invalid_schema_property_is_refused_naming_it(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TableSchemaError) as caught:
        read_table_schema({**copy.deepcopy(BASE), **change})
    assert any(fragment in problem for problem in caught.value.problems), caught.value.problems


def test_a_field_that_is_no_object_is_named_by_its_index() -> None:
    descriptor = copy.deepcopy(BASE)
    descriptor["fields"][3] = "active"
    with pytest.raises(TableSchemaError) as caught:
        read_table_schema(descriptor)
    assert caught.value.problems == ["fields[3]: is a str, not an object"]


def test_every_problem_of_a_descriptor_is_listed() -> None:
    descriptor = broken("id", {"type": "integr"})
    descriptor["fields"][INDEX["label"]]["constraints"]["pattern"] = "(x"
    descriptor["primaryKey"] = ["nope"]
    with pytest.raises(TableSchemaError) as caught:
        read_table_schema(descriptor)
    assert len(caught.value.problems) == 3
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "field 'id' (fields[0])",
        "field 'label' (fields[2])",
        "primaryKey",
    ]


def test_a_valid_descriptor_is_read_into_typed_fields() -> None:
    table = read_table_schema(BASE)
    assert table.names == ("id", "price", "label", "active", "day", "at", "note")
    assert [f.type for f in table.fields] == ["integer", "number", "string", "boolean", "date", "datetime", "any"]
    assert table.primary_key == ("id",)
    assert table.field("id").required and not table.field("price").required
    assert table.field("price").constraints.maximum == 1e6
    assert table.field("day").format == "%d/%m/%Y"
    assert table.field("day").read("26/01/2024") == (19748, None)  # days since 1970-01-01
    assert table.unique_keys == (("id",),)
    with pytest.raises(AttributeError):
        table.field("id").name = "other"  # type: ignore[misc]


def test_the_forms_the_standard_allows_read_alike() -> None:
    """A v1 primaryKey string, missingValues as objects, a `fmt:` format, a string bound or enum value."""
    descriptor = copy.deepcopy(BASE)
    descriptor["fields"][INDEX["id"]]["constraints"] |= {"minimum": "1", "enum": ["1", "2"]}
    descriptor["fields"][INDEX["day"]]["format"] = "fmt:%d/%m/%Y"
    as_v1 = {**descriptor, "primaryKey": "id", "missingValues": [{"value": "", "label": "blank"}]}
    table = read_table_schema(as_v1)
    assert table.primary_key == ("id",)
    assert table.missing_values == ("",)
    assert table.field("day").format == "%d/%m/%Y"
    assert table.field("id").constraints.minimum == 1
    assert table.field("id").constraints.enum == (1, 2)


def test_a_field_of_its_own_missing_values_replaces_the_schemas() -> None:
    descriptor = {**copy.deepcopy(BASE), "missingValues": ["", "NA"]}
    descriptor["fields"][INDEX["price"]]["missingValues"] = ["-"]
    table = read_table_schema(descriptor)
    assert table.field("label").read("NA") == (None, None)
    assert table.field("price").read("-") == (None, None)
    assert table.field("price").read("NA")[1] is not None


def test_yaml_and_json_files_read_alike_and_yaml_keeps_yes_and_dates_as_text(tmp_path: Path) -> None:
    descriptor = copy.deepcopy(BASE)
    descriptor["fields"][INDEX["label"]]["constraints"]["enum"] = ["Yes", "No", "on", "2024-01-01"]
    descriptor["fields"][INDEX["at"]]["constraints"] = {"minimum": "2024-01-01T00:00:00Z"}
    as_json, as_yaml = tmp_path / "s.json", tmp_path / "s.yaml"
    as_json.write_text(json.dumps(descriptor), encoding="utf-8")
    # Unquoted, as a person writes YAML: YAML 1.1 would read Yes as true and the dates as dates.
    text = yaml.safe_dump(descriptor, sort_keys=False).replace("'Yes'", "Yes").replace("'2024-01-01'", "2024-01-01")
    assert "- Yes" in text and "- 2024-01-01" in text
    as_yaml.write_text(text, encoding="utf-8")
    from_json, from_yaml = load_table_schema(as_json), load_table_schema(as_yaml)
    assert from_yaml == from_json
    assert from_yaml.fingerprint == from_json.fingerprint
    assert from_yaml.field("label").constraints.enum == ("Yes", "No", "on", "2024-01-01")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"fields": [{"name": "a"}], "fields": []}', "key 'fields' appears twice in one object"),
        ('{"fields": [{"name": "a", "type": "number", "constraints": {"minimum": NaN}}]}', "NaN is not JSON"),
        ('{"fields": [', "not JSON"),
        ("[1, 2]", "is a list, not an object with 'fields'"),
    ],
)
def test_a_file_that_is_no_json_object_is_refused_naming_why(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.schema.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TableSchemaError) as caught:
        load_table_schema(path)
    assert any(fragment in problem for problem in caught.value.problems), caught.value.problems
    assert caught.value.source == "schema bad.schema.json"


def test_an_unreadable_yaml_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("fields: [\n  - name: a\n", encoding="utf-8")
    with pytest.raises(TableSchemaError, match="not YAML"):
        load_table_schema(path)
    with pytest.raises(TableSchemaError, match="cannot be read"):
        load_table_schema(tmp_path / "absent.json")


# --- The employee dataset's schema ------------------------------------------------------------------------


def test_the_employee_schema_file_holds_the_datasets_rules() -> None:
    table = load_table_schema(SCHEMA_FILE)
    assert table.names == COLUMN_NAMES
    assert table.primary_key == (ID_COLUMN,)
    assert all(f.required for f in table.fields)
    employee_id = table.field(ID_COLUMN)
    assert (employee_id.type, employee_id.constraints.unique) == ("integer", True)
    assert (employee_id.constraints.minimum, employee_id.constraints.maximum) == (1, 2**53)
    assert employee_rules().generated_key == ID_COLUMN


def test_the_generators_ranges_are_the_fields_custom_property() -> None:
    """Not a fact of what a valid value is: a custom property beside the field, which the standard allows."""
    descriptor = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for field in descriptor["fields"]:
        column = COLUMNS_BY_NAME[field["name"]]
        if isinstance(column, IntColumn):
            assert (column.typical_min, column.typical_max) == tuple(field[GENERATE_PROPERTY].values())
            assert field[GENERATE_PROPERTY].keys() == {"minimum", "maximum"}
        else:
            assert GENERATE_PROPERTY not in field


def test_the_generated_key_must_be_the_integer_primary_key() -> None:
    with pytest.raises(ValueError, match="the generated key 'label' is not its integer primaryKey"):
        DatasetRules(read_table_schema(BASE), generated_key="label")


def test_importing_the_schema_reads_no_file_and_no_json_schema_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import shared_tasks.validation.validate, shared_tasks.run.trust;"
        "from shared_tasks.validation import schema;"
        "print('jsonschema' in sys.modules, 'COLUMNS' in vars(schema), schema.employee_rules.cache_info().currsize)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "0"]


# --- The fingerprint ---------------------------------------------------------------------------------------


def changed_copies(tmp_path: Path) -> dict[str, Path]:
    """The employee schema file, and copies each changed in one way that matters, or does not."""
    descriptor = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    rng = random.Random(3)
    changes: dict[str, Any] = {}
    field = descriptor["fields"]
    age = copy.deepcopy(descriptor)
    age["fields"][1]["constraints"]["maximum"] = 101
    changes["a bound"] = age
    value = copy.deepcopy(descriptor)
    value["fields"][2]["constraints"]["enum"].append("Other")
    changes["an enum value"] = value
    added = copy.deepcopy(descriptor)
    added["fields"].append({"name": "Team", "type": "string", "constraints": {"required": True}})
    changes["a field"] = added
    missing = {**copy.deepcopy(descriptor), "missingValues": ["", "NA"]}
    changes["the missing values"] = missing
    generated = copy.deepcopy(descriptor)
    generated["fields"][1][GENERATE_PROPERTY]["maximum"] = 60
    changes["the generator's range"] = generated
    shuffled = copy.deepcopy(descriptor)
    shuffled["fields"] = [dict(rng.sample(sorted(f.items()), len(f))) for f in field]
    paths = {"the file as it is": SCHEMA_FILE}
    for name, changed in changes.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(changed, indent=2), encoding="utf-8")
    paths["only its layout"] = tmp_path / "layout.json"
    paths["only its layout"].write_text(json.dumps(shuffled, indent=None), encoding="utf-8")
    return paths


def test_a_schema_change_changes_the_fingerprint_and_reformatting_does_not(tmp_path: Path) -> None:
    tables: dict[str, TableSchema] = {name: load_table_schema(path) for name, path in changed_copies(tmp_path).items()}
    prints = {name: table.fingerprint for name, table in tables.items()}
    original = prints.pop("the file as it is")
    assert prints.pop("only its layout") == original
    assert original not in prints.values()
    assert len(set(prints.values())) == len(prints)
    rules = {DatasetRules(table, generated_key=ID_COLUMN).fingerprint for table in tables.values()}
    assert len(rules) == len(tables) - 1
    assert DatasetRules(tables["a bound"]).fingerprint != DatasetRules(tables["a bound"], ID_COLUMN).fingerprint


def test_a_verdict_remembered_under_one_schema_is_not_known_under_a_changed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = FileCatalog(tmp_path / "memo", None)
    md5 = "0123456789abcdef0123456789abcdef"
    trust.remember_valid(catalog, md5)
    before = trust.verdict_key()
    assert trust.known_valid(catalog, md5)
    monkeypatch.setattr(schema, "SCHEMA_FILE", changed_copies(tmp_path)["a bound"])
    schema.employee_rules.cache_clear()
    try:
        assert trust.verdict_key() != before
        assert not trust.known_valid(catalog, md5)  # the version is validated again, against the new schema
        trust.remember_valid(catalog, md5)
        assert trust.known_valid(catalog, md5)
    finally:
        monkeypatch.undo()
        schema.employee_rules.cache_clear()
    assert trust.verdict_key() == before and trust.known_valid(catalog, md5)
