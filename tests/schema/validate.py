#!/usr/bin/python3
"""Validates portmatrix JSON outputs against docs/schema/NAME.schema.json.

usage: validate.py NAME FILE...   (NAME: check, egress, preflight, ports, diff,
                                   egress-ssh, preflight-ssh)
Prints one line per file; exit 0 when every file is valid, 1 otherwise, 2 on
bad usage or a schema that is itself invalid. The schemas reference each
other by relative path; all of them are loaded from the folder, never fetched.
"""
import json
import pathlib
import sys

import jsonschema

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent.parent / "docs" / "schema"


def validator(name):
    store = {}
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        store[schema["$id"]] = schema
        store[path.as_uri()] = schema
    path = SCHEMAS / f"{name}.schema.json"
    if not path.exists():
        sys.exit(f"validate.py: no schema {path}")
    schema = json.loads(path.read_text())
    resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=store)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    try:
        check = validator(argv[1])
    except jsonschema.SchemaError as e:
        print(f"validate.py: the schema is invalid: {e.message}", file=sys.stderr)
        return 2
    bad = 0
    for name in argv[2:]:
        try:
            with open(name) as f:
                document = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{name}: not JSON: {e}")
            bad += 1
            continue
        errors = sorted(check.iter_errors(document), key=lambda e: list(e.absolute_path))
        if not errors:
            print(f"{name}: valid ({argv[1]}.schema.json)")
            continue
        bad += 1
        for e in errors[:10]:
            where = "/".join(str(p) for p in e.absolute_path) or "(top)"
            print(f"{name}: {where}: {e.message[:300]}")
        if len(errors) > 10:
            print(f"{name}: ... and {len(errors) - 10} more")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
