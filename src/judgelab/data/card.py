"""The data card (L1): what a data build produced, as JSON and Markdown.

Per split: record and unique-prompt counts, sources, families, prompt length (characters and
words: min / mean / median / p95 / max), responses per record, the synthetic world's rule kinds
and rules-per-prompt, and the label distribution (scores, preferences, share with reasoning,
annotators) when labels exist. Plus the pairwise prompt overlap of the splits (all zero for a
valid build) and family overlap between training and held-out splits.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from judgelab.data.records import Record
from judgelab.data.splits import check_disjoint
from judgelab.data.world.text import words

CARD_SCHEMA = "judgelab.data_card/v1"


def _stats(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    s = sorted(values)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {
        "n": len(s),
        "min": s[0],
        "mean": round(statistics.fmean(s), 2),
        "median": statistics.median(s),
        "p95": p95,
        "max": s[-1],
    }


def _sorted_counter(c: Counter[Any]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))}


def split_card(records: Sequence[Record]) -> dict[str, Any]:
    """The card section of one split."""
    card: dict[str, Any] = {
        "records": len(records),
        "unique_prompts": len({r.prompt_hash for r in records}),
        "sources": _sorted_counter(Counter(r.source for r in records)),
        "prompt_chars": _stats([len(r.prompt) for r in records]),
        "prompt_words": _stats([len(words(r.prompt)) for r in records]),
        "responses_per_record": {str(k): v for k, v in sorted(Counter(len(r.responses) for r in records).items())},
    }
    fams = {r.meta["family"] for r in records if "family" in r.meta}
    if fams:
        card["families"] = len(fams)
    rules = [r.meta["constraints"] for r in records if isinstance(r.meta.get("constraints"), list)]
    if rules:
        card["constraint_kinds"] = _sorted_counter(Counter(c["kind"] for cs in rules for c in cs))
        card["constraints_per_prompt"] = {str(k): v for k, v in sorted(Counter(len(cs) for cs in rules).items())}
        card["genres"] = len({r.meta.get("genre") for r in records})
    resp_words = [len(words(x)) for r in records for x in r.responses]
    if resp_words:
        card["response_words"] = _stats(resp_words)
    labelled = [r for r in records if r.labels is not None]
    if labelled:
        scores = Counter(r.labels.score for r in labelled if r.labels and r.labels.score is not None)
        prefs = Counter(r.labels.preference for r in labelled if r.labels and r.labels.preference is not None)
        lab: dict[str, Any] = {
            "records": len(labelled),
            "with_reasoning": sum(1 for r in labelled if r.labels and r.labels.reasoning),
            "annotators": _sorted_counter(Counter(r.labels.annotator for r in labelled if r.labels)),
        }
        if scores:
            lab["score_histogram"] = {str(k): scores[k] for k in sorted(scores)}
            vals = [k for k, v in scores.items() for _ in range(v)]
            lab["score_mean"] = round(statistics.fmean(vals), 3)
        if prefs:
            lab["preference"] = {k: prefs.get(k, 0) for k in ("A", "B", "tie")}
        card["labels"] = lab
    return card


def compute_data_card(
    splits: Mapping[str, Sequence[Record]],
    *,
    build: Mapping[str, Any] | None = None,
    heldout_splits: Sequence[str] = (),
) -> dict[str, Any]:
    """The whole card: one section per split, overlaps, and ``build`` facts (seed, sources...)."""
    card: dict[str, Any] = {"schema": CARD_SCHEMA}
    if build:
        card["build"] = dict(build)
    card["splits"] = {name: split_card(recs) for name, recs in splits.items()}
    card["prompt_overlap"] = check_disjoint({k: list(v) for k, v in splits.items()})
    fam = {n: {r.meta["family"] for r in recs if "family" in r.meta} for n, recs in splits.items()}
    if any(fam.values()) and heldout_splits:
        train = set().union(*(fam[n] for n in fam if n not in heldout_splits))
        held = set().union(*(fam[n] for n in fam if n in heldout_splits))
        card["family_overlap_train_heldout"] = len(train & held)
    return card


def _fmt_stats(s: Mapping[str, Any]) -> str:
    if not s or s.get("n", 0) == 0:
        return "-"
    return f"{s['min']} / {s['mean']} / {s['median']} / {s['p95']} / {s['max']}"


def _fmt_counts(c: Mapping[str, Any], limit: int = 12) -> str:
    items = list(c.items())
    txt = ", ".join(f"{k}: {v}" for k, v in items[:limit])
    return txt + (f", … (+{len(items) - limit})" if len(items) > limit else "")


def render_data_card_md(card: Mapping[str, Any]) -> str:
    """The card as a Markdown page."""
    splits: Mapping[str, Any] = card["splits"]
    names = list(splits)
    out = ["# Data card", ""]
    build = card.get("build") or {}
    if build:
        out += [f"- {k}: {v}" for k, v in build.items()]
        out.append("")
    out += ["## Splits", "", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]

    def row(label: str, fn: Any) -> None:
        out.append(f"| {label} | " + " | ".join(str(fn(splits[n])) for n in names) + " |")

    row("records", lambda s: s["records"])
    row("unique prompts", lambda s: s["unique_prompts"])
    row("families", lambda s: s.get("families", "-"))
    row("prompt words (min/mean/median/p95/max)", lambda s: _fmt_stats(s["prompt_words"]))
    row("prompt chars (min/mean/median/p95/max)", lambda s: _fmt_stats(s["prompt_chars"]))
    row("responses per record", lambda s: _fmt_counts(s["responses_per_record"]))
    row("response words (min/mean/median/p95/max)", lambda s: _fmt_stats(s.get("response_words", {})))
    row("sources", lambda s: _fmt_counts(s["sources"]))
    out.append("")
    overlap = card.get("prompt_overlap", {})
    shared = sum(overlap.values())
    out.append(f"Prompts shared between splits: {shared} ({'disjoint' if shared == 0 else 'NOT disjoint'}).")
    if "family_overlap_train_heldout" in card:
        out.append(f"Families shared between training and held-out splits: {card['family_overlap_train_heldout']}.")
    out.append("")
    if any("constraint_kinds" in splits[n] for n in names):
        out += ["## Synthetic world", ""]
        for n in names:
            s = splits[n]
            if "constraint_kinds" in s:
                out.append(f"- **{n}**: rules per prompt {_fmt_counts(s['constraints_per_prompt'])}; kinds {_fmt_counts(s['constraint_kinds'], 20)}")
        out.append("")
    if any("labels" in splits[n] for n in names):
        out += ["## Labels", ""]
        for n in names:
            lab = splits[n].get("labels")
            if not lab:
                continue
            bits = [f"{lab['records']} labelled", f"{lab['with_reasoning']} with reasoning"]
            if "score_histogram" in lab:
                bits.append(f"scores {_fmt_counts(lab['score_histogram'], 20)} (mean {lab['score_mean']})")
            if "preference" in lab:
                bits.append(f"preference {_fmt_counts(lab['preference'])}")
            bits.append(f"annotators {_fmt_counts(lab['annotators'])}")
            out.append(f"- **{n}**: " + "; ".join(bits))
        out.append("")
    return "\n".join(out)


__all__ = ["CARD_SCHEMA", "compute_data_card", "render_data_card_md", "split_card"]
