"""Fresh adversarial attacks against the fine-tuned classifiers, offline (no TextAttack, no downloads).

TextAttack's anatomy, kept apart so that a recipe is a few lines (``recipes``):

- goal (``goal.UntargetedClassification``): score = 1 - p(true label); success = the prediction differs from
  the label; an example already misclassified is skipped. Every candidate scored is one query, cache hits
  included (the clean text is the first); the query budget truncates candidate lists, so it is never exceeded.
- transformations (``transformations``: character swap / substitution / deletion / insertion, QWERTY
  neighbours and homoglyphs from ``resources/attacks``, WordNet synonyms (``wordnet``: the bundled table or
  the full WordNet); ``whitebox.GradientWordSwap``: HotFlip's first-order flips to WordNet synonyms that are
  one token where they stand);
- constraints (``constraints``: no stopword, no word edited twice, total Levenshtein distance, minimum word
  length, maximum words changed);
- search (``search``: greedy over a word-importance ranking by the tokenizer's own unk token, by deletion or
  by PWWS's weighted saliency; beam search).

``recipes.RECIPES`` is the registry of recipes (what each changes, the recipe it follows, its departures).

The victim (``victim.ClassifierVictim``) encodes texts with the evaluation pipeline's encoder (same
template, truncation, padding and autocast dtype). Both fields of a pair are attackable. Random choices come
from one generator per example seeded by (seed, idx): the same seed gives the same results, whatever the
order of examples or where an interrupted run resumed. Output files carry the attacked model's fine-tuning
seed as ``seed`` and the seed of the random choices as ``attack_seed``. ``runner`` writes the per-example lines and
TextAttack's summary; ``job`` holds the workflow's jobs (rules/attack.smk). Universal triggers
(``whitebox.find_trigger``) are searched per (model, task, target class) and applied to every model.
"""
