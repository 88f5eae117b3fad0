"""Benchmark data as it comes: JSONSchemaBench / MaskBench `*.jsonl.gz`, the JSON Schema Test Suite, or `.json` files.

Every loader yields rows `{"dataset", "id", "schema", "tests"}` where `tests` is a list of
`{"data", "valid", "description"}` (empty for JSONSchemaBench, which has schemas only).
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path
from typing import Any

from ..errors import StructgenError

DRAFT7_URI = "http://json-schema.org/draft-07/schema#"


def _loads(text: str) -> Any:
    """json.loads; a document nested too deeply for it is parsed under a raised recursion limit and its
    schema kept as JSON text (a deep dict could not be pickled to a worker; engines take text too)."""
    try:
        return json.loads(text)
    except RecursionError:
        pass
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 200_000))
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "schema" in doc and not isinstance(doc["schema"], str):
            doc["schema"] = json.dumps(doc["schema"])
        return doc if isinstance(doc, dict) and "schema" in doc else text
    finally:
        sys.setrecursionlimit(old)


def _row(dataset: str, rid: Any, schema: Any, tests: list | None) -> dict:
    if isinstance(schema, str):  # some dumps store the schema as JSON text
        try:
            schema = json.loads(schema)
        except RecursionError:  # too deep to hold as objects: engines get the text
            pass
    return {"dataset": dataset, "id": str(rid), "schema": schema, "tests": list(tests or [])}


def load_rows(data: str | Path) -> list[dict]:
    """All rows under `data`: a `.jsonl.gz`/`.jsonl` file, a `.json` schema file, or a folder of those.

    Lines are `{"id", "schema"[, "tests"]}` (JSONSchemaBench, MaskBench); a `.json` file is one schema
    (its stem is the id) or, for a list of `{"schema", "tests"}` groups, JSON Schema Test Suite format.
    Files are read in sorted order; the dataset name is the file (or folder) stem.
    """
    path = Path(data).expanduser()
    if not path.exists():
        raise StructgenError(f"--data {str(data)!r}: no such file or folder")
    files = sorted(p for p in (path.rglob("*") if path.is_dir() else [path])
                   if p.is_file() and p.name.endswith((".jsonl.gz", ".jsonl", ".json")))
    rows: list[dict] = []
    for f in files:
        name = f.name.split(".")[0]
        try:
            if f.name.endswith(".json"):
                doc = _loads(f.read_text(encoding="utf-8"))
                rel = f.relative_to(path).with_suffix("").as_posix() if path.is_dir() else name
                if isinstance(doc, list):  # JSON Schema Test Suite: groups of {description, schema, tests}
                    rows += [_row(rel, g.get("description", i), g["schema"], g.get("tests")) for i, g in enumerate(doc)]
                else:
                    rows.append(_row(path.name if path.is_dir() else name, name, doc, None))
                continue
            opener = gzip.open if f.name.endswith(".gz") else open
            with opener(f, "rt", encoding="utf-8") as fh:
                for n, line in enumerate(fh):
                    if line.strip():
                        r = _loads(line)
                        rows.append(_row(name, r.get("id", n), r["schema"], r.get("tests")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StructgenError(f"{f}: not a benchmark file in a known format ({type(e).__name__}: {e})") from None
    if not rows:
        raise StructgenError(f"--data {str(data)!r}: no .jsonl.gz, .jsonl or .json files with schemas")
    return rows


def json_schema_suite_rows(suite_root: str | Path, draft: str = "draft2020-12") -> list[dict]:
    """The official JSON Schema Test Suite's groups for one draft (`tests/<draft>/**.json`), dataset = keyword
    file (`optional/format/email` ...); draft-07 groups get `$schema` so engines apply that draft."""
    root = Path(suite_root).expanduser()
    folder = root / "tests" / draft if (root / "tests" / draft).is_dir() else root / draft
    if not folder.is_dir():
        raise StructgenError(f"{root}: no JSON Schema Test Suite folder for {draft} (tests/{draft})")
    rows = load_rows(folder)
    for r in rows:
        r["dataset"] = f"{draft}/{r['dataset']}"
        if draft == "draft7" and isinstance(r["schema"], dict):
            r["schema"] = {"$schema": DRAFT7_URI, **r["schema"]}
    return rows


def sample(rows: list[dict], limit: int | None, seed: int = 0, per_dataset: bool = False) -> list[dict]:
    """The first `limit` rows after a `random.Random(seed)` shuffle (of each dataset with `per_dataset`, then
    the selection shuffled together)."""
    if not limit:
        return list(rows)
    if not per_dataset:
        out = list(rows)
        random.Random(seed).shuffle(out)
        return out[:limit]
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["dataset"], []).append(r)
    out = []
    for name in sorted(by):
        group = by[name]
        random.Random(seed).shuffle(group)
        out += group[:limit]
    random.Random(seed).shuffle(out)  # datasets interleaved, so a run cut short still covers each
    return out
