"""Agreement between annotators (and with a judge), position bias, and export of labels to
a preference dataset; the same for rankings (Kendall's tau; a ranking dataset and all its
pairs). Pure functions over `backends.core.labels.store` votes and rankings; no torch, no gradio.

Export rule, stated once: tie and both-bad votes are abstentions that still count against
a decision. `majority`: a response wins when it is preferred by more than half of all
votes on the item. `unanimous`: every vote on the item prefers the same response.
Items without a winner are left out. The rejected response is the one the winner was
shown against most often.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from math import sqrt
from typing import Any, Literal

from backends.core.labels.store import Item, Ranking, Vote

Policy = Literal["majority", "unanimous"]


def vote_label(v: Vote) -> str:
    """A vote as a category comparable across annotators: `r<i>` for response i, or tie / both_bad."""
    return f"r{v.preferred}" if v.preferred is not None else v.choice


def per_item_agreement(votes: list[Vote]) -> dict[int, float]:
    """For items with two or more votes: the share of vote pairs that agree."""
    by_item: dict[int, list[str]] = {}
    for v in votes:
        by_item.setdefault(v.item_id, []).append(vote_label(v))
    out = {}
    for item, labels in by_item.items():
        pairs = list(combinations(labels, 2))
        if pairs:
            out[item] = sum(a == b for a, b in pairs) / len(pairs)
    return out


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two raters over the same items (labels in the same order)."""
    if len(a) != len(b) or not a:
        raise ValueError(
            f"cohen_kappa needs two equally long, non-empty label lists, got {len(a)} and {len(b)}"
        )
    n = len(a)
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return 1.0 if pe == 1.0 else (po - pe) / (1 - pe)


def fleiss_kappa(counts: list[list[int]]) -> float:
    """Fleiss' kappa from an items x categories matrix of rating counts (same raters per item)."""
    if not counts:
        raise ValueError("fleiss_kappa needs at least one item")
    n = sum(counts[0])
    if n < 2 or any(sum(row) != n for row in counts):
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings for every item")
    items = len(counts)
    p_i = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in counts]
    p_bar = sum(p_i) / items
    p_j = [sum(row[j] for row in counts) / (items * n) for j in range(len(counts[0]))]
    pe = sum(p * p for p in p_j)
    return 1.0 if pe == 1.0 else (p_bar - pe) / (1 - pe)


def agreement_report(votes: list[Vote]) -> dict[str, Any]:
    """Per-item agreement, pairwise Cohen's kappa, Fleiss' kappa, and position bias."""
    by_ann: dict[str, dict[int, str]] = {}
    for v in votes:
        by_ann.setdefault(v.annotator, {})[v.item_id] = vote_label(v)
    cohen = {}
    for x, y in combinations(sorted(by_ann), 2):
        common = sorted(set(by_ann[x]) & set(by_ann[y]))
        if len(common) >= 2:
            cohen[f"{x} vs {y}"] = cohen_kappa([by_ann[x][i] for i in common], [by_ann[y][i] for i in common])
    per_item = per_item_agreement(votes)
    labels = sorted({vote_label(v) for v in votes})
    rated: dict[int, Counter[str]] = {}
    for v in votes:
        rated.setdefault(v.item_id, Counter())[vote_label(v)] += 1
    sizes = Counter(sum(c.values()) for c in rated.values() if sum(c.values()) >= 2)
    fleiss = None
    if sizes:
        k = sizes.most_common(1)[0][0]
        matrix = [[c[label] for label in labels] for c in rated.values() if sum(c.values()) == k]
        fleiss = fleiss_kappa(matrix) if len(matrix) >= 2 else None
    decisive = [v for v in votes if v.choice in ("left", "right")]
    return {
        "annotators": sorted(by_ann),
        "votes": len(votes),
        "items_with_several_votes": len(per_item),
        "mean_item_agreement": sum(per_item.values()) / len(per_item) if per_item else None,
        "cohen_kappa": cohen,
        "fleiss_kappa": fleiss,
        "left_share": sum(v.choice == "left" for v in decisive) / len(decisive) if decisive else None,
    }


def judge_agreement(votes: list[Vote], scores: dict[int, list[float]]) -> float | None:
    """Share of decisive human votes whose preferred response the judge also scores higher
    (`scores[item_id]` = the judge's score of each response; equal scores count as disagreement)."""
    decisive = [v for v in votes if v.preferred is not None and v.item_id in scores]
    if not decisive:
        return None
    agree = 0
    for v in decisive:
        other = v.right_index if v.preferred == v.left_index else v.left_index
        s = scores[v.item_id]
        agree += s[v.preferred] > s[other]
    return agree / len(decisive)


def export_pairs(items: list[Item], votes: list[Vote], policy: Policy = "majority") -> list[dict[str, Any]]:
    """Preference rows (`prompt`, `chosen`, `rejected`, conversational when the prompt is)."""
    by_item: dict[int, list[Vote]] = {}
    for v in votes:
        by_item.setdefault(v.item_id, []).append(v)
    rows = []
    for item in items:
        vs = by_item.get(item.id, [])
        if not vs:
            continue
        prefs = Counter(v.preferred for v in vs if v.preferred is not None)
        if not prefs:
            continue
        winner, n = prefs.most_common(1)[0]
        if policy == "unanimous" and n != len(vs):
            continue
        if policy == "majority" and n * 2 <= len(vs):
            continue
        against = Counter(
            v.right_index if v.left_index == winner else v.left_index
            for v in vs
            if winner in (v.left_index, v.right_index)
        )
        loser = against.most_common(1)[0][0]
        conv = isinstance(item.prompt, list)
        rows.append(
            {
                "prompt": item.prompt,
                "chosen": _as_message(item.responses[winner], conv),
                "rejected": _as_message(item.responses[loser], conv),
                "votes": len(vs),
            }
        )
    return rows


def _as_message(response: Any, conversational: bool) -> Any:
    """A plain-string response becomes an assistant turn when the prompt is a conversation."""
    if conversational and not isinstance(response, list):
        return [{"role": "assistant", "content": str(response)}]
    return response


# --- rankings ---------------------------------------------------------------------------
def kendall_tau(a: list[float], b: list[float]) -> float | None:
    """Kendall's tau-b of two rankings of the same responses (lower = better in both; ties
    allowed). None when one of them ties everything (tau is undefined)."""
    if len(a) != len(b):
        raise ValueError(f"kendall_tau needs two rankings of the same responses, got {len(a)} and {len(b)}")
    concordant = discordant = ties_a = ties_b = 0
    for i, j in combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0:
            ties_a += 1
        if db == 0:
            ties_b += 1
        if da * db > 0:
            concordant += 1
        elif da * db < 0:
            discordant += 1
    pairs = len(a) * (len(a) - 1) // 2
    denom = sqrt((pairs - ties_a) * (pairs - ties_b))
    return (concordant - discordant) / denom if denom else None


def ranking_report(rankings: list[Ranking], scores: dict[int, list[float]] | None = None) -> dict[str, Any]:
    """Kendall's tau between annotators who ranked the same items (per pair of annotators
    and over all pairs of rankings of an item), and between people and a judge's scores."""
    by_item: dict[int, list[Ranking]] = {}
    for r in rankings:
        by_item.setdefault(r.item_id, []).append(r)
    per_pair: dict[str, list[float]] = {}
    all_taus: list[float] = []
    for rs in by_item.values():
        for x, y in combinations(sorted(rs, key=lambda r: r.annotator), 2):
            tau = kendall_tau(x.ranks, y.ranks)
            if tau is not None:
                per_pair.setdefault(f"{x.annotator} vs {y.annotator}", []).append(tau)
                all_taus.append(tau)
    judge = []
    for r in rankings:
        if scores and r.item_id in scores:
            # a higher score is better, a lower tier is better
            tau = kendall_tau(r.ranks, [-s for s in scores[r.item_id]])
            if tau is not None:
                judge.append(tau)
    return {
        "annotators": sorted({r.annotator for r in rankings}),
        "rankings": len(rankings),
        "items_with_several_rankings": sum(len(rs) >= 2 for rs in by_item.values()),
        "mean_tau": sum(all_taus) / len(all_taus) if all_taus else None,
        "tau_by_pair": {k: sum(v) / len(v) for k, v in sorted(per_pair.items())},
        "judge_tau": sum(judge) / len(judge) if judge else None,
    }


def export_rankings(items: list[Item], rankings: list[Ranking]) -> list[dict[str, Any]]:
    """A ranking dataset: one row per ranking, `ranks[i]` the tier of `responses[i]` (0 = best)."""
    by_id = {it.id: it for it in items}
    return [
        {
            "prompt": by_id[r.item_id].prompt,
            "responses": by_id[r.item_id].responses,
            "ranks": r.ranks,
            "annotator": r.annotator,
        }
        for r in rankings
        if r.item_id in by_id
    ]


def ranking_pairs(items: list[Item], rankings: list[Ranking]) -> list[dict[str, Any]]:
    """Every pair of a ranking in preference format: a ranking of K answers without ties
    gives K(K-1)/2 rows (tied answers give none). `reward.weighting: per_prompt` then
    weighs each prompt's pairs so the prompt counts once, as InstructGPT did."""
    by_id = {it.id: it for it in items}
    rows = []
    for r in rankings:
        item = by_id.get(r.item_id)
        if item is None:
            continue
        conv = isinstance(item.prompt, list)
        for i, j in combinations(range(len(r.ranks)), 2):
            if r.ranks[i] == r.ranks[j]:
                continue
            win, lose = (i, j) if r.ranks[i] < r.ranks[j] else (j, i)
            rows.append(
                {
                    "prompt": item.prompt,
                    "chosen": _as_message(item.responses[win], conv),
                    "rejected": _as_message(item.responses[lose], conv),
                    "annotator": r.annotator,
                }
            )
    return rows
