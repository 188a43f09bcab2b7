"""The optimal generalisation: the lattice node (one level per quasi-identifier) with the least information loss that
satisfies k-anonymity, l-diversity and t-closeness with at most a share of records suppressed.

How the search stays exact while checking few nodes:

1. The monotone criteria (k-anonymity and distinct l-diversity, with suppression of the classes that fail them) hold
   for every generalisation of a node that meets them: merging classes never shrinks a class or its set of sensitive
   values, so no record that was kept becomes suppressed. The lattice is tagged by binary search along paths
   (Flash, Kohlmayer et al. 2012): a satisfying node tags everything above it, a failing node everything below.
2. Among satisfying nodes, the loss of a node is at least its loss without any suppression (a suppressed cell costs
   the most), and that bound is a sum of per-column tables: it costs nothing to compute for every node. Nodes are
   visited in order of the bound; the search stops once the bound reaches the best loss found. Entropy l-diversity and
   t-closeness are not monotone under suppression, so they are checked on the visited nodes only.

The data are first collapsed to distinct combinations of quasi-identifier codes (with their counts), so a node's check
is a few vectorised operations on that much smaller table. The rows may arrive already collapsed (``counts``: a frame
of distinct combinations built batch by batch with ``Combinations``), so a table of any length is searched in memory
bounded by its distinct combinations, and released batch by batch (``release_batch``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.anonymisation.hierarchy import MISSING, SUPPRESSED, AnonymisationError, Hierarchy

MEASURES = ("loss", "entropy")


@dataclass(frozen=True)
class Criteria:
    k: int = 5
    suppression_limit: float = 0.05
    l_diversity: int | None = None
    l_kind: str = "distinct"  # distinct | entropy
    t_closeness: float | None = None
    t_distance: str = "equal"  # equal | hierarchical
    sensitive: str | None = None

    def describe(self) -> str:
        parts = [f"k={self.k}"]
        if self.l_diversity:
            parts.append(f"{self.l_kind} l={self.l_diversity} on {self.sensitive}")
        if self.t_closeness is not None:
            parts.append(f"t={self.t_closeness} ({self.t_distance} distance) on {self.sensitive}")
        parts.append(f"at most {self.suppression_limit:.0%} suppressed")
        return ", ".join(parts)


@dataclass
class NodeResult:
    levels: tuple[int, ...]
    ok: bool
    suppressed: int
    classes: int
    loss: float
    entropy: float
    discernibility: float
    sizes: np.ndarray = field(repr=False)
    kept_mask: np.ndarray = field(repr=False)  # per combination: kept (True) or suppressed


def _as_strings(series: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(series):
        # 39.0 read from a CSV with gaps must match the hierarchy's "39".
        text = series.map(lambda v: MISSING if pd.isna(v) else (f"{int(v)}" if float(v).is_integer() else f"{v:g}"))
        return text.astype(str)
    return series.astype("string").fillna(MISSING).astype(str)


class Combinations:
    """Distinct combinations of ``columns`` (as the hierarchies spell them: text, every missing value ``MISSING``) with
    how many rows hold each, fed a batch at a time; memory is the distinct combinations (merged when the parts have
    doubled), in the order they first appear. ``head`` keeps the first rows as read, for samples."""

    def __init__(self, columns: list[str], head_rows: int = 10_000) -> None:
        self.columns = columns
        self.head_rows = head_rows
        self.heads: list[pd.DataFrame] = []
        self.kept_head = 0
        self.parts: list[pd.DataFrame] = []
        self.pending = 0
        self.merged = 0
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        if self.kept_head < self.head_rows:
            head = frame.head(self.head_rows - self.kept_head)
            self.heads.append(head)
            self.kept_head += len(head)
        if frame.empty:
            return
        text = pd.DataFrame({column: _as_strings(frame[column]).to_numpy() for column in self.columns})
        self.parts.append(text.groupby(self.columns, sort=False).size().reset_index(name=COUNT))
        self.pending += len(self.parts[-1])
        if self.pending > max(2 * self.merged, 1 << 16):
            self._merge()

    def _merge(self) -> None:
        if len(self.parts) > 1:
            whole = pd.concat(self.parts, ignore_index=True)
            self.parts = [whole.groupby(self.columns, sort=False)[COUNT].sum().reset_index()]
        self.merged = self.pending = len(self.parts[0]) if self.parts else 0

    def frame(self) -> pd.DataFrame:
        self._merge()
        if not self.parts:
            return pd.DataFrame(
                {
                    **{column: pd.Series([], dtype=object) for column in self.columns},
                    COUNT: pd.Series([], dtype=np.int64),
                }
            )
        return self.parts[0]

    def head(self) -> pd.DataFrame:
        return pd.concat(self.heads, ignore_index=True) if self.heads else pd.DataFrame(columns=self.columns)


COUNT = "__rows__"


class Problem:
    """The data collapsed to combinations of codes, with the hierarchies and criteria of one anonymisation.

    ``counts``: how many records each row of ``frame`` stands for (a ``Combinations`` frame's column ``COUNT``);
    without it every row is one record."""

    def __init__(
        self,
        frame: pd.DataFrame,
        hierarchies: list[Hierarchy],
        criteria: Criteria,
        sensitive_hierarchy: Hierarchy | None = None,
        counts: Any = None,
    ) -> None:
        self.hierarchies = hierarchies
        self.criteria = criteria
        self.columns = [h.column for h in hierarchies]
        for column in self.columns + ([criteria.sensitive] if criteria.sensitive else []):
            if column not in frame.columns:
                raise AnonymisationError(f"Column '{column}' is not in this version.", column=column)
        if criteria.k < 1:
            raise AnonymisationError("k must be at least 1.")
        if not 0 <= criteria.suppression_limit < 1:
            raise AnonymisationError("The suppression limit is a share between 0 and 1.")
        if (criteria.l_diversity or criteria.t_closeness is not None) and not criteria.sensitive:
            raise AnonymisationError("l-diversity and t-closeness need a sensitive attribute.")
        weights = np.ones(len(frame), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        self.n = int(weights.sum())
        if self.n == 0:
            raise AnonymisationError("The version has no rows.")
        row_codes = []
        for hierarchy in hierarchies:
            text = _as_strings(frame[hierarchy.column])
            uniques = pd.unique(text)
            hierarchy.require_covers([str(u) for u in uniques])
            row_codes.append(text.map(hierarchy.index).to_numpy(dtype=np.int64))
        codes = np.column_stack(row_codes) if row_codes else np.zeros((self.n, 0), dtype=np.int64)
        sizes = [len(h.values) for h in hierarchies]
        if criteria.sensitive:
            sens_text = _as_strings(frame[criteria.sensitive])
            self.sensitive_values, sens_codes = np.unique(sens_text.to_numpy(), return_inverse=True)
            codes = np.column_stack([codes, sens_codes])
            sizes.append(len(self.sensitive_values))
        combos, counts = _unique_rows(codes, sizes, weights)
        if criteria.sensitive:
            # One row per (quasi-identifier combination, sensitive value); ``qi_of`` maps it to its combination.
            self.pairs_sens = combos[:, -1]
            qi_combos, self.pairs_qi = _unique_rows_inverse(combos[:, :-1], sizes[:-1])
            self.combos = qi_combos
            self.combo_counts = np.bincount(self.pairs_qi, weights=counts).astype(np.int64)
            self.pair_counts = counts
            overall = np.bincount(self.pairs_sens, weights=counts, minlength=len(self.sensitive_values))
            self.overall = overall / overall.sum()
        else:
            self.combos, self.combo_counts = combos, counts
        self.row_codes = codes[:, : len(hierarchies)]
        self.sensitive_hierarchy = sensitive_hierarchy
        if criteria.t_distance == "hierarchical" and criteria.t_closeness is not None:
            if sensitive_hierarchy is None:
                raise AnonymisationError(
                    "Hierarchical t-closeness needs a hierarchy for the sensitive attribute.",
                    column=criteria.sensitive or "",
                )
            sensitive_hierarchy.require_covers([str(v) for v in self.sensitive_values])
        self.heights = [h.height for h in hierarchies]
        # Per column and level: each combination's generalised code, and per-cell losses.
        self.gen = [
            [h.codes[level][self.combos[:, j]] for level in range(h.height + 1)] for j, h in enumerate(hierarchies)
        ]
        self.radix = [[len(h.level_labels[level]) for level in range(h.height + 1)] for h in hierarchies]
        value_counts = [
            np.bincount(self.combos[:, j], weights=self.combo_counts, minlength=len(h.values))
            for j, h in enumerate(hierarchies)
        ]
        self.cell_loss = [
            [h.loss_per_value(level)[self.combos[:, j]] for level in range(h.height + 1)]
            for j, h in enumerate(hierarchies)
        ]
        self.cell_entropy = []
        for j, h in enumerate(hierarchies):
            per_level = []
            for level in range(h.height + 1):
                label_counts = np.bincount(h.codes[level], weights=value_counts[j])
                share = value_counts[j] / np.maximum(label_counts[h.codes[level]], 1)
                per_level.append(-np.log2(np.maximum(share, 1e-300))[self.combos[:, j]])
            self.cell_entropy.append(per_level)
        self.limit_rows = math.floor(criteria.suppression_limit * self.n + 1e-9)
        self.checks = 0

    def codes_of(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's level-0 code per quasi-identifier (a value outside a hierarchy is refused by name)."""
        columns = []
        for hierarchy in self.hierarchies:
            text = _as_strings(frame[hierarchy.column])
            codes = text.map(hierarchy.index)
            if codes.isna().any():
                hierarchy.require_covers([str(v) for v in pd.unique(text[codes.isna()])])
            columns.append(codes.to_numpy(dtype=np.int64))
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0), dtype=np.int64)

    # ----------------------------------------------------------------------------------------------- one node

    def classes(self, levels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        key = np.zeros(len(self.combos), dtype=np.int64)
        span = 1
        for j, level in enumerate(levels):
            radix = self.radix[j][level]
            if span * radix >= 2**62:  # fall back to sorting rows when the key would overflow
                stacked = np.column_stack([self.gen[i][levels[i]] for i in range(len(levels))])
                _, inverse = np.unique(stacked, axis=0, return_inverse=True)
                inverse = inverse.ravel()
                return inverse, np.bincount(inverse, weights=self.combo_counts)
            key += self.gen[j][level] * span
            span *= radix
        # Hash-based factorisation: about three times faster than sorting for this many keys.
        inverse = pd.factorize(key)[0]
        return inverse, np.bincount(inverse, weights=self.combo_counts)

    def evaluate(self, levels: tuple[int, ...], *, monotone_only: bool = False) -> NodeResult:
        self.checks += 1
        c = self.criteria
        inverse, sizes = self.classes(levels)
        passes = sizes >= c.k
        if c.sensitive and (c.l_diversity or c.t_closeness is not None):
            n_sens = len(self.sensitive_values)
            hist = np.bincount(
                inverse[self.pairs_qi] * n_sens + self.pairs_sens,
                weights=self.pair_counts,
                minlength=len(sizes) * n_sens,
            ).reshape(len(sizes), n_sens)
            if c.l_diversity:
                if c.l_kind == "distinct" or not monotone_only:
                    passes &= (hist > 0).sum(axis=1) >= c.l_diversity
                if c.l_kind == "entropy" and not monotone_only:
                    passes &= entropy_rows(hist) >= math.log(c.l_diversity) - 1e-12
            if c.t_closeness is not None and not monotone_only:
                passes &= self.distances(hist) <= c.t_closeness + 1e-12
        kept = passes[inverse]
        suppressed = int(sizes[~passes].sum())
        ok = suppressed <= self.limit_rows
        loss = entropy = discernibility = float("nan")
        if not monotone_only:
            weights = self.combo_counts
            cell_loss = sum(self.cell_loss[j][level] for j, level in enumerate(levels))
            top_loss = len(levels)  # a suppressed record loses everything
            loss = float((weights * np.where(kept, cell_loss, top_loss)).sum() / (self.n * max(1, len(levels))))
            cell_entropy = sum(self.cell_entropy[j][level] for j, level in enumerate(levels))
            top_entropy = sum(self.cell_entropy[j][h.height] for j, h in enumerate(self.hierarchies))
            entropy = float((weights * np.where(kept, cell_entropy, top_entropy)).sum())
            discernibility = float((sizes[passes] ** 2).sum() + suppressed * self.n)
        return NodeResult(levels, ok, suppressed, int(passes.sum()), loss, entropy, discernibility, sizes[passes], kept)

    def distances(self, hist: np.ndarray) -> np.ndarray:
        dist = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
        if self.criteria.t_distance == "hierarchical":
            return hierarchical_emd(dist, self.overall, self.sensitive_hierarchy, list(self.sensitive_values))
        return 0.5 * np.abs(dist - self.overall).sum(axis=1)

    def lower_bounds(self, nodes: np.ndarray, measure: str) -> np.ndarray:
        """Loss (or entropy) of each node as if nothing were suppressed: a lower bound of its real value."""
        table = self.cell_loss if measure == "loss" else self.cell_entropy
        per_level = [
            np.array([(self.combo_counts * table[j][level]).sum() for level in range(height + 1)])
            for j, height in enumerate(self.heights)
        ]
        total = sum(per_level[j][nodes[:, j]] for j in range(len(self.heights)))
        if measure == "loss":
            total = total / (self.n * max(1, len(self.heights)))
        return total


def entropy_rows(hist: np.ndarray) -> np.ndarray:
    totals = hist.sum(axis=1, keepdims=True)
    p = hist / np.maximum(totals, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=1)


def hierarchical_emd(dist: np.ndarray, overall: np.ndarray, hierarchy: Hierarchy, values: list[str]) -> np.ndarray:
    """Earth mover's distance with the hierarchical ground distance (Li, Li and Venkatasubramanian 2007): moving mass
    between two leaves costs the height of their lowest common ancestor over the hierarchy's height."""
    height = hierarchy.height
    extra = dist - overall  # per leaf (columns follow ``values``)
    leaf_rows = [hierarchy.index[v] for v in values]
    total = np.zeros(len(dist))
    for level in range(1, height + 1):
        parent = hierarchy.codes[level][leaf_rows]
        child = hierarchy.codes[level - 1][leaf_rows]
        # extra mass of each child node at level-1, then for each parent the positive and negative parts.
        n_child = int(child.max()) + 1
        child_extra = np.zeros((len(dist), n_child))
        np.add.at(child_extra.T, child, extra.T)
        child_parent = np.zeros(n_child, dtype=np.int64)
        child_parent[child] = parent
        n_parent = int(parent.max()) + 1
        pos = np.zeros((len(dist), n_parent))
        neg = np.zeros((len(dist), n_parent))
        np.add.at(pos.T, child_parent, np.clip(child_extra, 0, None).T)
        np.add.at(neg.T, child_parent, np.clip(-child_extra, 0, None).T)
        total += (level / height) * np.minimum(pos, neg).sum(axis=1)
    return total


def _unique_rows(
    codes: np.ndarray, sizes: list[int], weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    combos, inverse = _unique_rows_inverse(codes, sizes)
    counts = np.bincount(inverse, weights=weights, minlength=len(combos))
    return combos, np.rint(counts).astype(np.int64)


def _unique_rows_inverse(codes: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    if codes.shape[1] == 0:
        return np.zeros((1, 0), dtype=np.int64), np.zeros(len(codes), dtype=np.int64)
    if math.prod(max(1, s) for s in sizes) < 2**62:
        key = np.zeros(len(codes), dtype=np.int64)
        span = 1
        for j, size in enumerate(sizes):
            key += codes[:, j] * span
            span *= max(1, size)
        uniques, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return codes[first], inverse.ravel()
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    return combos, inverse.ravel()


# ------------------------------------------------------------------------------------------------------- the search


@dataclass
class SearchResult:
    best: NodeResult
    checked: int
    lattice_size: int
    seconds: float
    region: int  # nodes whose lower bound was below the incumbent's loss


def _lattice(heights: list[int]) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(h + 1) for h in heights], indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1) if heights else np.zeros((1, 0), dtype=np.int64)
    return nodes[np.argsort(nodes.sum(axis=1), kind="stable")]


def search(problem: Problem, measure: str = "loss") -> SearchResult:
    """The optimal node, exactly, while checking few nodes:

    1. An incumbent from a greedy descent: from the top (always checked first: if it fails, nothing can pass), step
       to the predecessor with the smallest bound that still satisfies, until none does.
    2. Only nodes whose lower bound is below the incumbent can beat it. Within that region, monotone checks run from
       the most general nodes down: a failing node tags its whole down-set as failing, a passing one its up-set.
    3. The passing nodes of the region are evaluated in full in order of their bound, stopping at the first bound
       that reaches the best loss found.
    """
    if measure not in MEASURES:
        raise AnonymisationError(f"Unknown measure '{measure}'; one of {', '.join(MEASURES)}.")
    started = time.perf_counter()
    nodes = _lattice(problem.heights)
    index = {tuple(int(x) for x in node): i for i, node in enumerate(nodes)}
    bounds = problem.lower_bounds(nodes, measure)
    status = np.zeros(len(nodes), dtype=np.int8)  # monotone part: 0 unknown, 1 satisfies, -1 fails
    evaluated: dict[int, NodeResult] = {}

    def full(i: int) -> NodeResult:
        if i not in evaluated:
            evaluated[i] = problem.evaluate(tuple(int(x) for x in nodes[i]))
            if evaluated[i].ok:  # the full criteria imply the monotone ones
                status[np.all(nodes >= nodes[i], axis=1)] = 1
        return evaluated[i]

    def monotone(i: int) -> bool:
        if status[i] == 0:
            ok = problem.evaluate(tuple(int(x) for x in nodes[i]), monotone_only=True).ok
            status[np.all(nodes >= nodes[i], axis=1) if ok else np.all(nodes <= nodes[i], axis=1)] = 1 if ok else -1
        return status[i] == 1

    top = len(nodes) - 1
    best = full(top)
    if not best.ok:
        raise AnonymisationError(_unsatisfiable(problem))
    current = top
    while True:
        predecessors = []
        for j in range(len(problem.heights)):
            if nodes[current][j] > 0:
                below = nodes[current].copy()
                below[j] -= 1
                predecessors.append(index[tuple(int(x) for x in below)])
        step = None
        for i in sorted(predecessors, key=lambda i: bounds[i]):
            if monotone(i) and full(i).ok:
                step = i
                break
        if step is None:
            break
        current = step
        if getattr(evaluated[step], measure) < getattr(best, measure):
            best = evaluated[step]
    region = np.flatnonzero(bounds < getattr(best, measure) - 1e-12)
    for i in region[np.argsort(-nodes[region].sum(axis=1), kind="stable")]:
        monotone(int(i))
    candidates = region[status[region] == 1]
    for i in candidates[np.argsort(bounds[candidates], kind="stable")]:
        if bounds[i] >= getattr(best, measure) - 1e-12:
            break
        result = full(int(i))
        if result.ok and getattr(result, measure) < getattr(best, measure) - 1e-12:
            best = result
    return SearchResult(best, problem.checks, len(nodes), time.perf_counter() - started, len(region))


def search_exhaustive(problem: Problem, measure: str = "loss") -> NodeResult:
    """Every node checked in full: the reference the pruned search must match (tests and the benchmark)."""
    best = None
    for node in _lattice(problem.heights):
        result = problem.evaluate(tuple(int(x) for x in node))
        if result.ok and (best is None or getattr(result, measure) < getattr(best, measure) - 1e-12):
            best = result
    if best is None:
        raise AnonymisationError(_unsatisfiable(problem))
    return best


def _unsatisfiable(problem: Problem) -> str:
    return (
        f"No generalisation satisfies {problem.criteria.describe()}: even with every quasi-identifier fully "
        f"generalised, too many of the {problem.n:,} records would have to be suppressed. Lower k, l or raise t, "
        "or allow more suppression."
    )


# --------------------------------------------------------------------------------------------------- the output


def apply(
    frame: pd.DataFrame, problem: Problem, levels: tuple[int, ...], result: NodeResult | None = None
) -> pd.DataFrame:
    """The anonymised table: quasi-identifiers replaced by their labels at ``levels``; records of classes that fail the
    criteria removed (suppressed). ``frame`` may be any part of the data (a batch, or a ``Combinations`` frame)."""
    result = result if result is not None else problem.evaluate(levels)
    row_codes = problem.codes_of(frame)
    keep_rows = result.kept_mask[_row_combo_index(problem, row_codes)]
    out = frame.loc[keep_rows].copy()
    for j, (hierarchy, level) in enumerate(zip(problem.hierarchies, levels, strict=True)):
        labels = np.asarray(hierarchy.labels[level], dtype=object)
        out[hierarchy.column] = labels[row_codes[keep_rows, j]].astype(str)
    return out.reset_index(drop=True)


def release_batch(batch: Any, problem: Problem, levels: tuple[int, ...], result: NodeResult) -> Any:
    """``apply`` on an Arrow record batch: the kept rows, quasi-identifiers as text labels, other columns untouched
    (their Arrow types kept)."""
    import pyarrow as pa

    quasi = problem.columns
    row_codes = problem.codes_of(batch.select(quasi).to_pandas())
    keep = result.kept_mask[_row_combo_index(problem, row_codes)]
    mask = pa.array(keep)
    arrays, fields = [], []
    for field_ in batch.schema:
        if field_.name in quasi:
            j = quasi.index(field_.name)
            labels = np.asarray(problem.hierarchies[j].labels[levels[j]], dtype=object)
            arrays.append(pa.array(labels[row_codes[keep, j]].astype(str).tolist(), pa.string()))
            fields.append(pa.field(field_.name, pa.string()))
        else:
            arrays.append(batch.column(field_.name).filter(mask))
            fields.append(field_)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def released_schema(schema: Any, quasi: list[str]) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.string()) if f.name in quasi else f for f in schema])


def _row_combo_index(problem: Problem, row_codes: np.ndarray | None = None) -> np.ndarray:
    """For each row, the index of its quasi-identifier combination in ``problem.combos``."""
    row_codes = problem.row_codes if row_codes is None else row_codes
    sizes = [len(h.values) for h in problem.hierarchies]
    if math.prod(max(1, s) for s in sizes) >= 2**62:
        position = {tuple(row): i for i, row in enumerate(problem.combos.tolist())}
        return np.array([position[tuple(row)] for row in row_codes.tolist()], dtype=np.int64)
    row_keys = _keys(row_codes, sizes)
    combo_keys = _keys(problem.combos, sizes)
    order = np.argsort(combo_keys)
    return order[np.searchsorted(combo_keys[order], row_keys)]


def _keys(codes: np.ndarray, sizes: list[int]) -> np.ndarray:
    key = np.zeros(len(codes), dtype=np.int64)
    span = 1
    for j, size in enumerate(sizes):
        key += codes[:, j] * span
        span *= max(1, size)
    return key


def describe_levels(problem: Problem, levels: tuple[int, ...]) -> list[dict[str, Any]]:
    return [
        {
            "column": h.column,
            "level": level,
            "height": h.height,
            "kind": h.kind,
            "example": h.labels[level][0] if h.values else SUPPRESSED,
        }
        for h, level in zip(problem.hierarchies, levels, strict=True)
    ]
