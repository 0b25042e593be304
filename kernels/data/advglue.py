"""AdvGLUE dev readers: the official items joined with the authors' annotations (dev_ann.json).

The items come from ``dev.json`` (bundled) or from ``AI-Secure/adv_glue`` (hub); the attack level,
method and the clean text of the perturbed field come from ``dev_ann.json``. Items and annotations
are joined on (set, idx) and must agree on text and label. Rows stay in dev.json order, which the
official predictions file relies on.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from kernels.io import atomic_path, set_aside

from .bundled import verify_bundled_file
from .glue import check_hub_features, load_hub_split, read_utf8
from .schema import DataValidationError, validate_advglue_rows, with_contract_dtypes
from .tasks import ADVGLUE_HUB_CONFIGS, ADVGLUE_LEVELS, ADVGLUE_SETS, TaskSpec, advglue_task

ANNOTATION_LEVEL_FIELD = "data_construction"  # the level; `method` alone is ambiguous (CheckList, StressTest)
DOWNLOAD_TIMEOUT_S = 60


def read_json(path: str | os.PathLike):
    text = read_utf8(path)
    if not text.strip():
        raise DataValidationError(f"{path}: empty file (expected a JSON object keyed by AdvGLUE set)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{path}: not valid JSON: {err}") from None


def advglue_sets_of(obj, source: str) -> dict[str, list[dict]]:
    """The six AdvGLUE sets of a dev.json-like object, each a list of item dicts."""
    if not isinstance(obj, dict):
        raise DataValidationError(f"{source}: expected a JSON object keyed by set ({', '.join(ADVGLUE_SETS)})")
    missing = [name for name in ADVGLUE_SETS if name not in obj]
    if missing:
        raise DataValidationError(f"{source}: missing AdvGLUE set(s) {', '.join(missing)}")
    for name in ADVGLUE_SETS:
        if not isinstance(obj[name], list) or not obj[name]:
            raise DataValidationError(f"{source}: set {name!r} must be a non-empty list of items")
    return {name: obj[name] for name in ADVGLUE_SETS}


def _field(item: dict, field: str, adv_set: str, position: int, source: str):
    if not isinstance(item, dict) or field not in item:
        raise DataValidationError(f"{source}: set {adv_set!r} item {position}: missing field {field!r}")
    return item[field]


def _annotation_columns(ann: dict, spec: TaskSpec, adv_set: str, position: int, source: str) -> dict:
    """level, method and original texts of one annotated item, checked for consistency."""
    level = _field(ann, ANNOTATION_LEVEL_FIELD, adv_set, position, source)
    method = _field(ann, "method", adv_set, position, source)
    where = f"{source}: set {adv_set!r} idx {ann.get('idx')}"
    if level not in ADVGLUE_LEVELS:
        raise DataValidationError(
            f"{where}: field {ANNOTATION_LEVEL_FIELD!r} is {level!r}, expected one of {', '.join(ADVGLUE_LEVELS)}"
        )
    if not isinstance(method, str) or not method:
        raise DataValidationError(f"{where}: field 'method' must be a non-empty string, got {method!r}")
    known = {f"original_{field}" for field in spec.text_fields}
    present = sorted(key for key in ann if key.startswith("original_"))
    unknown = [key for key in present if key not in known]
    if unknown:
        raise DataValidationError(f"{where}: unexpected field(s) {', '.join(unknown)} for set {adv_set!r}")
    # Word and sentence attacks perturb exactly one field; human-written items have no original.
    expected = 0 if level == "human" else 1
    if len(present) != expected:
        raise DataValidationError(
            f"{where}: a {level}-level item must have {expected} original_<field> field(s), has {present or 'none'}"
        )
    originals = [ann.get(f"original_{field}") for field in spec.text_fields]
    return {
        "level": level,
        "method": method,
        "original_text_a": originals[0],
        "original_text_b": originals[1] if spec.is_pair else None,
    }


def _index_annotations(annotations: list[dict], adv_set: str, source: str) -> dict[int, tuple[int, dict]]:
    by_idx = {}
    for position, ann in enumerate(annotations):
        idx = _field(ann, "idx", adv_set, position, source)
        if idx in by_idx:
            raise DataValidationError(f"{source}: set {adv_set!r}: duplicate idx {idx}")
        by_idx[idx] = (position, ann)
    return by_idx


def join_annotations(
    adv_set: str, items: list[dict], items_source: str, annotations: list[dict], annotations_source: str
) -> pd.DataFrame:
    """Normalised AdvGLUE frame of one set: ``items`` in their order, annotated from ``annotations``.

    Text fields and label must be identical in both; otherwise the annotation would describe
    another example, so this raises an error naming set, idx and field.
    """
    spec = advglue_task(adv_set)
    by_idx = _index_annotations(annotations, adv_set, annotations_source)
    if len(by_idx) != len(items):
        raise DataValidationError(
            f"set {adv_set!r}: {items_source} has {len(items)} items but {annotations_source} has {len(by_idx)}"
        )
    records = []
    for position, item in enumerate(items):
        idx = _field(item, "idx", adv_set, position, items_source)
        if idx not in by_idx:
            raise DataValidationError(
                f"set {adv_set!r} idx {idx}: in {items_source} but not in annotations {annotations_source}"
            )
        ann_position, ann = by_idx[idx]
        for field in spec.text_fields + ("label",):
            ours = _field(item, field, adv_set, position, items_source)
            theirs = _field(ann, field, adv_set, ann_position, annotations_source)
            if ours != theirs:
                raise DataValidationError(
                    f"set {adv_set!r} idx {idx}: field {field!r} disagrees between {items_source} "
                    f"({ours!r}) and annotations {annotations_source} ({theirs!r})"
                )
        if isinstance(item["label"], bool) or not isinstance(item["label"], int):
            raise DataValidationError(f"{items_source}: set {adv_set!r} idx {idx}: label {item['label']!r} is not an integer")
        texts = [item[field] for field in spec.text_fields]
        records.append(
            {
                "idx": idx,
                "text_a": texts[0],
                "text_b": texts[1] if spec.is_pair else None,
                "label": item["label"],
                **_annotation_columns(ann, spec, adv_set, ann_position, annotations_source),
            }
        )
    frame = with_contract_dtypes(pd.DataFrame.from_records(records))
    validate_advglue_rows(frame, spec, f"{items_source} [{adv_set}]")
    return frame


def read_bundled_advglue(bundled_dir: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """All six sets from ``<bundled_dir>/advglue/dev.json`` joined with ``dev_ann.json``."""
    dev_path = Path(bundled_dir) / "advglue" / "dev.json"
    ann_path = Path(bundled_dir) / "advglue" / "dev_ann.json"
    for path in (dev_path, ann_path):
        if not path.is_file():
            raise FileNotFoundError(f"AdvGLUE file {path} is missing; the bundled data lives in resources/data")
        verify_bundled_file(bundled_dir, path)
    items = advglue_sets_of(read_json(dev_path), str(dev_path))
    annotations = advglue_sets_of(read_json(ann_path), str(ann_path))
    return {
        name: join_annotations(name, items[name], str(dev_path), annotations[name], str(ann_path))
        for name in ADVGLUE_SETS
    }


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "resilient-efficient-llms" / "advglue"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_annotation_source(url: str) -> bytes:
    """The bytes at ``url``: http(s) or file:// URLs, or a local path (how the rehearsal points at its copy)."""
    if "://" not in url:
        try:
            return Path(url).read_bytes()
        except OSError as err:
            raise RuntimeError(f"could not read the AdvGLUE annotations from {url}: {err}") from err
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return response.read()
    except (OSError, ValueError) as err:
        raise RuntimeError(f"could not download the AdvGLUE annotations from {url}: {err}") from err


def check_annotation_checksum(payload: bytes, url: str, expected_sha256: str | None) -> None:
    """Refuse a download whose SHA-256 is not the pinned one (config data.hub.advglue_annotations_sha256)."""
    if expected_sha256 is None:
        return
    actual = sha256_of(payload)
    if actual != expected_sha256.lower():
        raise DataValidationError(
            f"{url}: SHA-256 {actual} does not match the pinned {expected_sha256} "
            "(config key data.hub.advglue_annotations_sha256): the file changed upstream or the download is "
            "corrupt; nothing was cached")


def fetch_annotations(url: str, cache_dir: str | os.PathLike | None = None,
                      expected_sha256: str | None = None) -> Path:
    """Download ``url`` (http(s), file:// or a local path) once into the cache; return the cached path.

    The cache file is named by a hash of the URL, so a changed URL never reuses a stale file;
    it is written atomically and only kept once it matches ``expected_sha256`` (when given) and
    parses as AdvGLUE annotations. A cached file is checked against the pin again on every use; one that
    fails (damaged, or cached under an older pin) is set aside with a warning and downloaded again.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = Path(urllib.parse.urlparse(url).path).name or "annotations.json"
    target = cache / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"
    if target.is_file():
        try:
            check_annotation_checksum(target.read_bytes(), f"{target} (cached from {url})", expected_sha256)
            advglue_sets_of(read_json(target), f"{target} (cached from {url})")
            return target
        except DataValidationError as err:  # a damaged or outdated cache entry: set it aside, fetch again
            set_aside(target, str(err).split(": ", 1)[-1])
    payload = _read_annotation_source(url)
    check_annotation_checksum(payload, url, expected_sha256)
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)
        advglue_sets_of(read_json(tmp), f"{url} (downloaded)")
    return target


def _hub_items(hub_id: str, adv_set: str, revision: str | None) -> list[dict]:
    spec = advglue_task(adv_set)
    config = ADVGLUE_HUB_CONFIGS[adv_set]
    dataset = load_hub_split(hub_id, config, "validation", revision)
    check_hub_features(dataset, spec, f"{hub_id} [{config}/validation]")
    fields = ("idx",) + spec.text_fields + ("label",)
    columns = {field: list(dataset[field]) for field in fields}
    return [{field: columns[field][row] for field in fields} for row in range(len(dataset))]


def read_hub_advglue(
    hub_id: str,
    annotations_url: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    annotations_sha256: str | None = None,
) -> dict[str, pd.DataFrame]:
    """All six sets via ``load_dataset(hub_id, "adv_<set>", split="validation")`` joined with the
    authors' annotations downloaded from ``annotations_url`` (checked against ``annotations_sha256``)."""
    ann_path = fetch_annotations(annotations_url, cache_dir, expected_sha256=annotations_sha256)
    annotations = advglue_sets_of(read_json(ann_path), annotations_url)
    frames = {}
    for name in ADVGLUE_SETS:
        source = f"{hub_id} [{ADVGLUE_HUB_CONFIGS[name]}/validation]"
        frames[name] = join_annotations(name, _hub_items(hub_id, name, revision), source, annotations[name], annotations_url)
    return frames
