"""The report with a zoo's worth of models (ten): one colour per model, every model in every legend and table,
transformers' slow paths labelled, and the crossover against the configured baseline (report.baseline)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from kernels.report import build_report
from test_report import embedded_specs, write_tables

ZOO = {"transformer_pp": "Transformer++ 1.3B", "gla": "GLA 1.3B", "mmfree": "MatMul-Free LM 1.3B",
       "retnet": "RetNet 1.3B", "hgrn": "HGRN 1.3B", "hgrn2": "HGRN2 1.3B", "delta_net": "DeltaNet 1.3B",
       "gsa": "GSA 1.3B", "mamba": "Mamba 1.3B (fla)", "mamba_hf": "Mamba 1.3B (transformers)"}
TASKS = ["sst2", "rte"]


@pytest.fixture(scope="module")
def zoo_report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("zoo")
    paths = write_tables(directory, ZOO, TASKS, significance=False)
    efficiency = pd.read_csv(paths["efficiency"])
    efficiency["implementation"] = [
        "transformers 5.24.0 MambaModel, slow path (pure PyTorch)" if m == "mamba_hf" else
        "fla 0.6.0 RetNetModel, fla's triton kernels" if m not in ("transformer_pp", "gla", "mmfree") else
        "kernels 0.1.0 GLAModel, this package's pure-PyTorch ops" for m in efficiency["model"]]
    efficiency["flops_source"] = ["formula" if m in ("transformer_pp", "gla", "mmfree") else "FlopCounterMode"
                                  for m in efficiency["model"]]
    efficiency.to_csv(paths["efficiency"], index=False)
    pd.DataFrame(columns=["model_a", "model_b", "task", "seed", "dataset", "split", "level", "n", "acc_a", "acc_b",
                          "diff", "b", "c", "p_value", "significant", "p_holm"]).to_csv(paths["significance"], index=False)
    config = {"run_name": "zoo", "models": {m: {"label": l, "family": "fla"} for m, l in ZOO.items()},
              "report": {"baseline": "mamba_hf"}}
    build_report(paths, directory / "report" / "index.html", directory / "report" / "figures", config=config,
                 models=ZOO, settings={"title": "Zoo", "width": 300, "height": 200})
    return (directory / "report" / "index.html").read_text(encoding="utf-8")


def test_every_model_keeps_a_colour_of_its_own(zoo_report):
    specs = embedded_specs(zoo_report)
    for name in ("glue_vs_advglue", "efficiency_scaling", "tradeoff"):
        text = json.dumps(specs[name])
        match = re.search(r'"domain": (\[[^\]]*\]), "range": (\[[^\]]*\])', text)
        domain, colours = json.loads(match.group(1)), json.loads(match.group(2))
        assert domain == list(ZOO.values()), name
        assert len(set(colours)) == len(ZOO), (name, colours)


def test_tables_list_every_model_and_label_the_slow_path(zoo_report):
    for table_id in ("headline", "pareto", "implementations"):
        table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', zoo_report, flags=re.S).group(0)
        for label in ZOO.values():
            assert label in table, (table_id, label)
    implementations = re.search(r'<table[^>]*id="implementations".*?</table>', zoo_report, flags=re.S).group(0)
    rows = re.findall(r"<tr>(.*?)</tr>", implementations, flags=re.S)
    slow = [r for r in rows if "slow path (pure PyTorch)" in r]
    assert len(slow) == 1 and "Mamba 1.3B (transformers)" in slow[0] and slow[0].rstrip().endswith("yes</td>")


def test_crossover_compares_with_the_configured_baseline(zoo_report):
    crossover = re.search(r'<table[^>]*id="crossover".*?</table>', zoo_report, flags=re.S).group(0)
    assert "than Mamba 1.3B (transformers)" in crossover and "than Transformer++" not in crossover
