"""Plans of the real workflow in this process, through Snakemake's API: the jobs a run would execute and why
(Snakemake's own decision, as ``snakemake --dry-run`` prints it), in about half a second per plan instead of
the seconds a fresh ``snakemake`` process takes. ``finished_run`` makes a workdir look like a completed run
(empty outputs, recorded by ``snakemake --touch``, metadata and all), so that a plan shows what a config
change re-runs."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from workflow_helpers import REPO, TINY


def merged_config(*overlays: Path | dict) -> dict:
    """config/config.yaml with ``overlays`` merged over it as Snakemake merges --configfile files."""
    def merge(base: dict, extra: dict) -> dict:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for overlay in overlays:
        merge(config, overlay if isinstance(overlay, dict) else yaml.safe_load(Path(overlay).read_text()))
    return config


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    wildcards: tuple
    direct: bool      # its own params, input set, code or outputs call for it (not only an upstream job)
    reasons: str

    @property
    def model(self) -> str | None:
        return dict(self.wildcards).get("model")


@contextlib.contextmanager
def _workflow(workdir: Path, config: dict, targets=("report",), cores: int = 2, forceall: bool = False):
    """(workflow API, DAG API) of the real workflow run with exactly ``config`` (it replaces config.yaml)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, Quietness, ResourceSettings

    # JSON: Snakemake reads it first, much faster than YAML; one file per process (see signatures_of_each)
    config_file = workdir / f".plan_config.{os.getpid()}.json"
    config_file.write_text(json.dumps(config))
    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api, \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=cores),
                config_settings=ConfigSettings(configfiles=[config_file], replace_workflow_config=True),
                snakefile=REPO / "Snakefile", workdir=workdir)
            yield workflow_api, workflow_api.dag(DAGSettings(targets=set(targets), forceall=forceall))
    finally:
        os.chdir(cwd)


def _is_direct(reason) -> bool:
    return bool(reason.params_changed or reason.input_changed or reason.code_changed
                or reason.software_stack_changed or reason.missing_output or reason.forced)


def _built_dag(workflow_api, forceall: bool = False):
    workflow = workflow_api._workflow
    workflow._prepare_dag(forceall=forceall, ignore_incomplete=False, lock_warn_only=True, nolock=True)
    workflow._build_dag()
    return workflow.dag


def plan(workdir: Path, config: dict, targets=("report",)) -> list[PlannedJob]:
    """The jobs Snakemake would run for ``targets`` with exactly ``config`` (it replaces config.yaml)."""
    with _workflow(workdir, config, targets) as (workflow_api, _):
        dag = _built_dag(workflow_api)
        return sorted(
            (PlannedJob(job.rule.name, tuple(sorted(job.wildcards_dict.items())), _is_direct(dag.reason(job)),
                        str(dag.reason(job)))
             for job in dag.needrun_jobs()),
            key=lambda j: (j.rule, j.wildcards))


def signatures(workdir: Path, config: dict, targets=("report",)) -> dict[tuple, tuple]:
    """``{(rule, wildcards): (params, inputs)}`` of every job of the plan, as Snakemake records and compares
    them to decide re-runs (its serialised params and its sorted input paths): a config value re-runs a
    finished job exactly when it changes the job's entry here (or adds or removes the job)."""
    with _workflow(workdir, config, targets, forceall=True) as (workflow_api, _):
        dag = _built_dag(workflow_api, forceall=True)
        persistence = workflow_api._workflow.persistence
        return {(job.rule.name, tuple(sorted((k, str(v)) for k, v in job.wildcards_dict.items()))):
                (tuple(map(str, persistence._params(job))), tuple(map(str, persistence._input(job))))
                for job in dag.jobs}


def _signatures_task(args):
    return signatures(*args)


def signatures_of_each(workdir: Path, configs: list[dict], processes: int | None = None) -> list[dict]:
    """:func:`signatures` of each config, planned in ``processes`` worker processes (the machine's cores, at
    most 2 by default: each plan is CPU-bound, and the walk of every config value has about a hundred).
    Fresh interpreters (spawn), not forks of the test process, whose other threads may hold locks."""
    processes = processes or max(1, min(2, os.cpu_count() or 1))
    if processes == 1 or len(configs) < 2:
        return [signatures(workdir, config) for config in configs]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.map(_signatures_task, [(workdir, config) for config in configs], chunksize=1)


def params_of(workdir: Path, config: dict, rule: str, targets=("report",)) -> dict[tuple, dict]:
    """``{wildcards: {param: value}}`` of the jobs of ``rule``: what their scripts receive."""
    with _workflow(workdir, config, targets, forceall=True) as (workflow_api, _):
        return {tuple(sorted((k, str(v)) for k, v in job.wildcards_dict.items())): dict(job.params.items())
                for job in _built_dag(workflow_api, forceall=True).jobs if job.rule.name == rule}


def all_outputs(workdir: Path, config: dict, targets=("report",)) -> list[Path]:
    with _workflow(workdir, config, targets, forceall=True) as (workflow_api, _):
        return [workdir / str(f) for job in _built_dag(workflow_api, forceall=True).jobs for f in job.output]


def finished_run(workdir: Path, config: dict, targets=("report",)) -> None:
    """Make ``workdir`` a completed run of ``config``: every output exists (empty) and Snakemake has recorded
    it (``--touch --forceall``: metadata with params, inputs and code), so plans show only what changes."""
    from snakemake.settings.types import ExecutionSettings

    for path in all_outputs(workdir, config, targets):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    with _workflow(workdir, config, targets, cores=1, forceall=True) as (_, dag_api):
        dag_api.execute_workflow(executor="touch", execution_settings=ExecutionSettings())


TINY_CONFIG = TINY
