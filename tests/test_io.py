"""Atomic outputs and job logs (kernels.io): failures must leave the old file and a readable log."""

from __future__ import annotations

import pytest

from kernels.io import atomic_path, log_to, write_json


def test_atomic_path_never_touches_the_target_until_success(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new")
        assert target.read_text() == "old"  # readers still see the complete old file
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failure_inside_atomic_path_keeps_the_old_target(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.5})
    with pytest.raises(RuntimeError, match="killed half-way"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"accur')
            raise RuntimeError("killed half-way")
    assert target.read_text() == '{\n  "accuracy": 0.5\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_a_failing_job_writes_its_traceback_and_cause_to_its_log(tmp_path, capsys):
    log = tmp_path / "logs" / "job.log"

    def stage():
        raise ValueError("results/data/glue/rte/train.parquet: field 'label' has null values\nmore detail")

    with pytest.raises(ValueError):
        with log_to(log):
            print("started", file=__import__("sys").stderr)
            stage()
    text = log.read_text()
    assert text.startswith("started\n")
    assert "Traceback (most recent call last)" in text and "in stage" in text
    assert text.rstrip().endswith("ERROR: ValueError: results/data/glue/rte/train.parquet: field 'label' has null values")


def test_embedded_json_cannot_break_out_of_its_script_element():
    """A model label like '<!--<script>' must stay data: <, > and & are JSON escapes in the page."""
    import json

    from kernels.report.page import script_json

    label = "GLA <!--<script></script>&amp;"
    embedded = script_json({"label": label})
    assert not any(char in embedded for char in "<>&")
    assert json.loads(embedded) == {"label": label}


def test_every_workflow_script_logs_through_log_to():
    """Each script the rules run wraps its work in kernels.io.log_to, so that a failing job's traceback and
    cause end up in its rule log (the unit test above shows what log_to writes)."""
    from workflow_helpers import REPO

    scripts = [p for p in (REPO / "workflow_scripts").glob("*.py") if "snakemake" in p.read_text()]
    assert len(scripts) >= 10
    for script in scripts:
        assert "with log_to(" in script.read_text(), script.name
