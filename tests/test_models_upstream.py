"""Living beside the upstream packages: transformers' Auto classes, and fla imported in the same process.

Auto mappings are process-wide state that any earlier import (fla's, in another test) changes, so each
check runs in a fresh interpreter where the import order is exactly the one under test.
"""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

from test_models_common import PAD, TINY_ARCH, VOCAB
from workflow_helpers import run_python

HAS_FLA = importlib.util.find_spec("fla") is not None and importlib.util.find_spec("triton") is not None


TINY = f"""
import tempfile, torch
import kernels.models as km
ARCH = {TINY_ARCH!r}
def tiny(family, **extra):
    return km.config_class(family)(vocab_size={VOCAB}, pad_token_id={PAD}, **ARCH[family], **extra)
"""


def test_auto_classes_resolve_to_ours_without_upstream_imports():
    out = run_python(TINY + textwrap.dedent("""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification
    for family in ("transformer_pp", "gla", "mmfree"):
        directory = tempfile.mkdtemp()
        km.classifier_class(family)(tiny(family, num_labels=2)).save_pretrained(directory)
        assert type(AutoConfig.from_pretrained(directory)) is km.config_class(family), family
        model = AutoModelForSequenceClassification.from_pretrained(directory)
        assert type(model) is km.classifier_class(family), family
        lm_dir = tempfile.mkdtemp()
        km.causal_lm_class(family)(tiny(family)).save_pretrained(lm_dir)
        assert type(AutoModelForCausalLM.from_pretrained(lm_dir)) is km.causal_lm_class(family), family
        print("ok", family)
    """))
    assert out.split() == ["ok", "transformer_pp", "ok", "gla", "ok", "mmfree"]


FLA_BOTH_WORK = """
from fla.models import GLAConfig as FlaGLAConfig, GLAForCausalLM as FlaGLAForCausalLM
from fla.models import TransformerConfig as FlaTransformerConfig
from transformers import AutoConfig, AutoModelForCausalLM
from kernels.models.gla import GLAForCausalLM

# fla owns the model types in the Auto mappings, whichever was imported first (documented)
assert AutoConfig.for_model("gla").__class__ is FlaGLAConfig
assert AutoConfig.for_model("transformer").__class__ is FlaTransformerConfig

# our causal LM's checkpoint is an fla checkpoint: fla's class loads it, weight for weight
ours_dir = tempfile.mkdtemp()
ours = GLAForCausalLM(tiny("gla")).eval()
ours.save_pretrained(ours_dir)
theirs = AutoModelForCausalLM.from_pretrained(ours_dir)
assert type(theirs) is FlaGLAForCausalLM
ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
assert ours_sd.keys() == theirs_sd.keys()
assert all(torch.equal(ours_sd[k], theirs_sd[k]) for k in ours_sd)

# and fla's own checkpoint loads into our classifier: every backbone weight, only the head new
fla_dir = tempfile.mkdtemp()
fla_model = FlaGLAForCausalLM(FlaGLAConfig(vocab_size=tiny("gla").vocab_size, **ARCH["gla"]))
fla_model.save_pretrained(fla_dir)
classifier = km.load_classifier("gla", fla_dir, num_labels=3)
assert type(classifier) is km.classifier_class("gla")
fla_sd = fla_model.state_dict()
backbone = classifier.model.state_dict()
assert {"model." + k for k in backbone} == {k for k in fla_sd if k.startswith("model.")}
assert all(torch.equal(v, fla_sd["model." + k]) for k, v in backbone.items())
with torch.no_grad():
    logits = classifier(torch.randint(1, 64, (2, 9))).logits
assert logits.shape == (2, 3) and torch.isfinite(logits).all()
print("both work")
"""


@pytest.mark.heavy  # 25 s: two fresh processes importing fla
@pytest.mark.skipif(not HAS_FLA, reason="fla (with triton) is not installed")
@pytest.mark.parametrize("fla_first", [True, False], ids=["fla-imported-first", "ours-imported-first"])
def test_fla_in_the_same_process_both_work(fla_first):
    first, second = ("import fla", "") if fla_first else ("", "import fla")
    code = TINY.replace("import kernels.models as km", f"{first}\nimport kernels.models as km\n{second}")
    assert run_python(code + FLA_BOTH_WORK).strip().endswith("both work")
