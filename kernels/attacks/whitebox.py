"""White-box pieces: HotFlip's gradient-guided word swap (Ebrahimi et al. 2018) and the universal
trigger search (Wallace et al. 2019), both from the gradient of the loss w.r.t. the input embeddings.

First-order estimate of replacing the token at position i by v: ``(e_v - e_{x_i}) . g_i``, with ``g_i``
the embedding gradient there. A swap is a token flip, so a candidate counts only when it is one token *as
it will stand in the text*: every candidate text is tokenised and must differ from the current one in
that single position (a byte-level BPE spells a word at the start of a text without the leading-space
marker: ``material`` there is ``m|ater|ial``, not the ``Ġmaterial`` of the vocabulary), and that token is
the one whose gain is scored. HotFlip's candidates are the replaced word's WordNet synonyms
(``kernels.attacks.wordnet``; TextAttack's recipe keeps swaps of the same part of speech within
counter-fitted-embedding distance, both downloads), optionally also within a cosine radius in the victim's
own embedding table. The trigger search takes, per trigger position, the words that are one token there.
Gradient passes are not queries (TextAttack does not count them either); ``gradient_calls`` records them.

MatMul-Free LM trains through a straight-through estimator: the gradients of its ternary layers can be
uninformative (obfuscated gradients, Athalye et al. 2018, arXiv 1802.00420), so a low white-box success
rate there is not evidence of robustness; read it next to the black-box recipes.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from kernels.attacks.text import AttackedText
from kernels.attacks.victim import ClassifierVictim, TokenizedInput, whole_word_vocabulary
from kernels.attacks.wordnet import match_case


def flipped_token(before: TokenizedInput, after: TokenizedInput, position: int) -> int | None:
    """The token id at ``position`` of ``after`` when ``after`` differs from ``before`` there only, else None."""
    if len(after.ids) != len(before.ids):
        return None
    differ = [i for i, (a, b) in enumerate(zip(before.ids, after.ids)) if a != b]
    return after.ids[position] if differ == [position] else None


def cosine(first: np.ndarray, second: np.ndarray) -> float:
    return float(first @ second / max(np.linalg.norm(first) * np.linalg.norm(second), 1e-12))


class GradientWordSwap:
    """HotFlip's swap over WordNet synonyms: per call, the ``top_n`` (word, synonym) flips with the best
    first-order gain among those that are one token in context and (``min_cos_sim`` > -1) within the cosine
    radius of the replaced token in the victim's embedding table. ``counts`` says how many synonyms each
    filter kept, over every expansion of the search."""

    def __init__(self, victim: ClassifierVictim, synonyms, min_cos_sim: float, top_n: int):
        self.victim = victim
        self.synonyms = synonyms
        self.min_cos_sim = float(min_cos_sim)
        self.top_n = int(top_n)
        self.table = victim.embedding_table().cpu().numpy().astype(np.float64)
        self.gradient_calls = 0
        self.counts = Counter(dict.fromkeys(("synonyms", "one_token_in_context", "within_cos_sim"), 0))

    def _proposals(self, text: AttackedText, tokens: TokenizedInput, indices) -> list[tuple[int, int, AttackedText]]:
        """(word index, token position, candidate text) for each synonym of each single-token word."""
        out = []
        for index in indices:
            positions = tokens.tokens_overlapping(*text.word_span(index))
            if len(positions) != 1:
                continue  # not a single-token word (or truncated away)
            word = text.words[index]
            for spelling in dict.fromkeys(match_case(s.word, word) for s in self.synonyms.synonyms(word)):
                if spelling != word:
                    out.append((index, positions[0], text.replace_word(index, spelling)))
        return out

    def __call__(self, text: AttackedText, indices, rng: np.random.Generator, label: int | None = None
                 ) -> list[AttackedText]:
        (tokens,) = self.victim.tokenize([text.pair])
        proposals = self._proposals(text, tokens, indices)
        self.counts["synonyms"] += len(proposals)
        if not proposals:
            return []
        (grad,) = self.victim.embedding_gradients([tokens], [int(label)])  # ascent on the true label's loss
        self.gradient_calls += 1
        options: list[tuple[float, AttackedText]] = []
        for (index, position, candidate), after in zip(proposals, self.victim.tokenize([p[2].pair for p in proposals])):
            new_id = flipped_token(tokens, after, position)
            if new_id is None:
                continue
            self.counts["one_token_in_context"] += 1
            current, new = self.table[tokens.ids[position]], self.table[new_id]
            if cosine(current, new) < self.min_cos_sim:
                continue
            self.counts["within_cos_sim"] += 1
            options.append((float((new - current) @ grad[position]), candidate))
        order = sorted(range(len(options)), key=lambda i: -options[i][0])
        return [options[i][1] for i in order[:self.top_n]]


class _Vocabulary:
    """The whole-word tokens that are one token at a trigger position: at the start of the text
    (``first``) or after a space; with ``is_word``, only those whose letters are a word (a BPE vocabulary
    also holds word beginnings such as ``celebr``)."""

    def __init__(self, victim: ClassifierVictim, first: bool, is_word=None):
        _, words = whole_word_vocabulary(victim.tokenizer)
        if is_word is not None:
            words = [w for w in words if is_word(w)]
        ids, kept = [], []
        for word, tokens in zip(words, victim.tokenize([(f"{w} {w}", None) for w in words])):
            start = 0 if first else len(word) + 1
            positions = tokens.tokens_overlapping(0, start, start + len(word))
            if len(positions) == 1:
                ids.append(tokens.ids[positions[0]])
                kept.append(word)
        if not ids:
            raise ValueError("the tokenizer has no whole-word tokens to swap in (white-box recipes need them)")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.words = kept
        self.embeddings = victim.embedding_table().cpu().numpy().astype(np.float64)[self.ids]


def apply_trigger(words: list[str], pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The trigger prepended to the first field of every input."""
    prefix = " ".join(words)
    return [(f"{prefix} {a}", b) for a, b in pairs]


def target_loss(victim: ClassifierVictim, words: list[str], pairs, target: int) -> float:
    """Mean cross-entropy toward ``target`` of the triggered inputs (what the search minimises)."""
    probs = victim.probabilities(apply_trigger(words, pairs))
    return float(-np.log(np.maximum(probs[:, target], 1e-12)).mean())


def find_trigger(victim: ClassifierVictim, pairs: list[tuple[str, str | None]], target: int, *, length: int = 3,
                 steps: int = 3, candidates: int = 40, beam: int = 1, init_word: str = "the", is_word=None) -> dict:
    """Wallace et al.'s search: average the target-loss gradient at each trigger position over ``pairs``,
    take the ``candidates`` tokens with the best first-order gain per position, then a left-to-right beam
    search on the real loss; repeat ``steps`` times or until the loss stops falling. ``is_word``: which
    tokens' letters count as words (None: every letters-only token)."""
    first = _Vocabulary(victim, first=True, is_word=is_word)
    inner = _Vocabulary(victim, first=False, is_word=is_word)
    vocabs = [first] + [inner] * (int(length) - 1)
    words = [init_word if init_word in v.words else v.words[0] for v in vocabs]
    loss = target_loss(victim, words, pairs, target)
    history, evaluated = [loss], len(pairs)
    for _ in range(int(steps)):
        gradient = _trigger_gradient(victim, words, pairs, target)
        # first-order loss change (e_v - e_current) . g: the smallest e_v . g first (e_current is common)
        best_per_position = [np.argsort(v.embeddings @ g, kind="stable")[:int(candidates)]
                             for v, g in zip(vocabs, gradient)]
        beams = [(loss, words)]
        for position, options in enumerate(best_per_position):
            words_here = vocabs[position].words
            expanded = {tuple(w[:position] + [words_here[j]] + w[position + 1:]) for _, w in beams for j in options}
            expanded = sorted(expanded - {tuple(w) for _, w in beams})
            scored = [(target_loss(victim, list(w), pairs, target), list(w)) for w in expanded]
            evaluated += len(expanded) * len(pairs)
            beams = sorted(beams + scored, key=lambda item: item[0])[:int(beam)]
        if beams[0][0] >= loss:
            break
        loss, words = beams[0]
        history.append(loss)
    scored = [int(v.ids[v.words.index(w)]) for v, w in zip(vocabs, words)]
    return {"words": words, "text": " ".join(words), "scored_token_ids": scored,
            "token_ids": trigger_token_ids(victim, words, pairs[0]), "target": int(target), "loss": loss, "loss_history": history, "model_queries": evaluated}


def trigger_word_spans(words: list[str]) -> list[tuple[int, int]]:
    """Character spans of the trigger's words at the start of the first field (``apply_trigger``)."""
    spans, offset = [], 0
    for word in words:
        spans.append((offset, offset + len(word)))
        offset += len(word) + 1
    return spans


def _trigger_gradient(victim: ClassifierVictim, words: list[str], pairs, target: int) -> list[np.ndarray]:
    """Per trigger word, the target-loss gradient at its token (its first, were it ever split), averaged over the inputs."""
    tokenized = victim.tokenize(apply_trigger(words, pairs))
    grads = victim.embedding_gradients(tokenized, [int(target)] * len(pairs))
    out = []
    for start, end in trigger_word_spans(words):
        rows = [g[t.tokens_overlapping(0, start, end)[0]] for t, g in zip(tokenized, grads)
                if t.tokens_overlapping(0, start, end)]
        out.append(np.mean(rows, axis=0) if rows else np.zeros(grads[0].shape[1]))
    return out


def trigger_token_ids(victim: ClassifierVictim, words: list[str], pair: tuple[str, str | None]) -> list[list[int]]:
    """The token ids each trigger word is encoded as in front of ``pair`` (one per word when the search's
    per-position vocabularies hold: what it scored is what a triggered input contains)."""
    (tokens,) = victim.tokenize(apply_trigger(words, [pair]))
    return [[tokens.ids[i] for i in tokens.tokens_overlapping(0, start, end)] for start, end in trigger_word_spans(words)]
