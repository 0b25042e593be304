"""White-box pieces: HotFlip's gradient-guided word swap (Ebrahimi et al. 2018) and the universal
trigger search (Wallace et al. 2019), both from the gradient of the loss w.r.t. the input embeddings.

First-order estimate of replacing the token at position i by v: ``(e_v - e_{x_i}) . g_i``, with ``g_i``
the embedding gradient there. Candidates are whole-word tokens of the victim's own vocabulary
(``whole_word_vocabulary``); HotFlip also keeps only those within a cosine-similarity radius of the
replaced word in the victim's embedding table (TextAttack's counter-fitted embeddings and POS tagger are
downloads), and edits only words that are one token, so a swap is a whole-word swap. Gradient passes are
not queries (TextAttack does not count them either); ``gradient_calls`` records them.

MatMul-Free LM trains through a straight-through estimator: the gradients of its ternary layers can be
uninformative (obfuscated gradients, Athalye et al. 2018, arXiv 1802.00420), so a low white-box success
rate there is not evidence of robustness; read it next to the black-box recipes.
"""

from __future__ import annotations

import numpy as np

from kernels.attacks.text import AttackedText
from kernels.attacks.victim import ClassifierVictim, whole_word_vocabulary


class _Vocabulary:
    def __init__(self, victim: ClassifierVictim):
        self.ids, self.words = whole_word_vocabulary(victim.tokenizer)
        if self.ids.size == 0:
            raise ValueError("the tokenizer has no whole-word tokens to swap in (white-box recipes need them)")
        self.table = victim.embedding_table().cpu().numpy().astype(np.float64)
        self.embeddings = self.table[self.ids]
        norms = np.linalg.norm(self.embeddings, axis=1, keepdims=True)
        self.unit = self.embeddings / np.maximum(norms, 1e-12)


class GradientWordSwap:
    def __init__(self, victim: ClassifierVictim, min_cos_sim: float, top_n: int):
        self.victim = victim
        self.min_cos_sim = float(min_cos_sim)
        self.top_n = int(top_n)
        self.vocab = _Vocabulary(victim)
        self.gradient_calls = 0

    def __call__(self, text: AttackedText, indices, rng: np.random.Generator, label: int | None = None
                 ) -> list[AttackedText]:
        (tokens,) = self.victim.tokenize([text.pair])
        (grad,) = self.victim.embedding_gradients([tokens], [int(label)])  # ascent on the true label's loss
        self.gradient_calls += 1
        options: list[tuple[float, int, str]] = []
        for index in indices:
            positions = tokens.tokens_overlapping(*text.word_span(index))
            if len(positions) != 1:
                continue  # not a single-token word (or truncated away)
            current_id = tokens.ids[positions[0]]
            current = self.vocab.table[current_id]
            gains = self.vocab.embeddings @ grad[positions[0]] - current @ grad[positions[0]]
            cosine = self.vocab.unit @ (current / max(np.linalg.norm(current), 1e-12))
            word = text.words[index].lower()
            allowed = (cosine >= self.min_cos_sim) & (self.vocab.ids != current_id)
            for j in np.flatnonzero(allowed)[np.argsort(-gains[allowed], kind="stable")][:self.top_n]:
                if self.vocab.words[j].lower() != word:
                    options.append((float(gains[j]), index, self.vocab.words[j]))
        options.sort(key=lambda option: -option[0])
        return [text.replace_word(index, new) for _, index, new in options[:self.top_n]]


def apply_trigger(words: list[str], pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The trigger prepended to the first field of every input."""
    prefix = " ".join(words)
    return [(f"{prefix} {a}", b) for a, b in pairs]


def target_loss(victim: ClassifierVictim, words: list[str], pairs, target: int) -> float:
    """Mean cross-entropy toward ``target`` of the triggered inputs (what the search minimises)."""
    probs = victim.probabilities(apply_trigger(words, pairs))
    return float(-np.log(np.maximum(probs[:, target], 1e-12)).mean())


def find_trigger(victim: ClassifierVictim, pairs: list[tuple[str, str | None]], target: int, *, length: int = 3,
                 steps: int = 3, candidates: int = 40, beam: int = 1, init_word: str = "the") -> dict:
    """Wallace et al.'s search: average the target-loss gradient at each trigger position over ``pairs``,
    take the ``candidates`` tokens with the best first-order gain per position, then a left-to-right beam
    search on the real loss; repeat ``steps`` times or until the loss stops falling."""
    vocab = _Vocabulary(victim)
    words = [init_word if init_word in vocab.words else vocab.words[0]] * int(length)
    loss = target_loss(victim, words, pairs, target)
    history, evaluated = [loss], len(pairs)
    for _ in range(int(steps)):
        gradient = _trigger_gradient(victim, words, pairs, target)
        # first-order loss change (e_v - e_current) . g: the smallest e_v . g first (e_current is common)
        best_per_position = [np.argsort(vocab.embeddings @ g, kind="stable")[:int(candidates)] for g in gradient]
        beams = [(loss, words)]
        for position, options in enumerate(best_per_position):
            expanded = {tuple(w[:position] + [vocab.words[j]] + w[position + 1:]) for _, w in beams for j in options}
            expanded = sorted(expanded - {tuple(w) for _, w in beams})
            scored = [(target_loss(victim, list(w), pairs, target), list(w)) for w in expanded]
            evaluated += len(expanded) * len(pairs)
            beams = sorted(beams + scored, key=lambda item: item[0])[:int(beam)]
        if beams[0][0] >= loss:
            break
        loss, words = beams[0]
        history.append(loss)
    return {"words": words, "text": " ".join(words), "target": int(target), "loss": loss,
            "loss_history": history, "model_queries": evaluated}


def _trigger_gradient(victim: ClassifierVictim, words: list[str], pairs, target: int) -> list[np.ndarray]:
    """Per trigger word, the target-loss gradient at its first token, averaged over the inputs."""
    tokenized = victim.tokenize(apply_trigger(words, pairs))
    grads = victim.embedding_gradients(tokenized, [int(target)] * len(pairs))
    starts, offset = [], 0
    for word in words:
        starts.append((offset, offset + len(word)))
        offset += len(word) + 1
    out = []
    for start, end in starts:
        rows = [g[t.tokens_overlapping(0, start, end)[0]] for t, g in zip(tokenized, grads)
                if t.tokens_overlapping(0, start, end)]
        out.append(np.mean(rows, axis=0) if rows else np.zeros(grads[0].shape[1]))
    return out
