"""Capacity-aware allocation of job recommendations across assistance targets.

Each target may receive up to ``slots`` recommendations, each posting may be
recommended to at most as many targets as it has vacancies left, and no target gets
the same posting twice. Among the allocations that place the most recommendations,
the solver returns one with the greatest total match score.

Method: a min-cost flow (OR-Tools ``SimpleMinCostFlow``) on the network

    source -> target   capacity = slots, cost 0
    target -> posting  capacity = 1,     cost = -round(score * SCORE_SCALE)
    posting -> sink    capacity = vacancies left, cost 0

solved with ``solve_max_flow_with_min_cost``: the maximum flow is the greatest number
of recommendations the vacancies allow, and the minimum cost among maximum flows is
the greatest total score. Arc capacities make the headcount a hard limit, unlike a
congestion penalty, which only discourages crowding.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from ortools.graph.python import min_cost_flow

from geo.errors import DoorstepError

logger = logging.getLogger(__name__)

SCORE_SCALE = 10_000
"""Scores are multiplied by this and rounded, because the solver takes integer costs."""

PREFERENCE_COLUMNS = ("seeker_id", "posting_id", "score")


class AllocationError(DoorstepError, ValueError):
    """The allocation inputs are invalid (missing columns, negative capacity or slots)."""


@dataclass(frozen=True, slots=True)
class Allocation:
    """The recommendations chosen for each target and the vacancies they use."""

    chosen: pd.DataFrame
    """Rows of the preferences that were allocated, best score first within each target."""
    used: dict[str, int]
    """Posting id to the number of targets it was allocated to."""


def allocate(
    preferences: pd.DataFrame,
    vacancies: Mapping[str, int],
    slots: Mapping[str, int] | int,
) -> Allocation:
    """Allocate postings to targets without exceeding any posting's vacancies.

    Parameters
    ----------
    preferences : pandas.DataFrame
        One row per (target, candidate posting) with columns ``seeker_id``,
        ``posting_id`` and ``score`` (higher is better, finite); other columns are
        carried into the result. Duplicate pairs keep their best score.
    vacancies : Mapping[str, int]
        Posting id to the number of vacancies left (>= 0). A posting missing here has
        no vacancy left.
    slots : Mapping[str, int] or int
        Recommendations each target still needs (>= 0), per target or one number for all.

    Returns
    -------
    Allocation
        The chosen preference rows and the vacancies used per posting.

    Raises
    ------
    AllocationError
        A column is missing, a score is not finite, or a capacity or slot count is negative.
    """
    rows = _checked_preferences(preferences)
    _check_counts(vacancies, "vacancies")
    if isinstance(slots, Mapping):
        _check_counts(slots, "slots")
    elif slots < 0:
        raise AllocationError(f"slots {slots} is negative; expected 0 or more")
    if rows.empty:
        return Allocation(rows, {})

    solver, arcs = _flow_network(rows, vacancies, slots)
    status = solver.solve_max_flow_with_min_cost()
    if status != solver.OPTIMAL:
        raise AllocationError(f"min-cost flow solver ended with status {status}")

    picked = [position for position, arc in arcs.items() if solver.flow(arc) > 0]
    chosen = rows.loc[picked].sort_values(["seeker_id", "score"], ascending=[True, False])
    used = chosen["posting_id"].value_counts().to_dict()
    logger.info(
        "allocated %d recommendations to %d targets over %d postings",
        len(chosen),
        chosen["seeker_id"].nunique(),
        len(used),
    )
    return Allocation(chosen.reset_index(drop=True), {str(k): int(v) for k, v in used.items()})


def _checked_preferences(preferences: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in PREFERENCE_COLUMNS if column not in preferences.columns]
    if missing:
        raise AllocationError(f"preferences lack the column(s) {missing}")
    scores = pd.to_numeric(preferences["score"], errors="coerce")
    if not scores.map(pd.notna).all() or (scores.abs() == float("inf")).any():
        raise AllocationError("every preference score must be a finite number")
    rows = preferences.assign(
        seeker_id=preferences["seeker_id"].astype(str),
        posting_id=preferences["posting_id"].astype(str),
        score=scores.astype(float),
    )
    best_first = rows.sort_values("score", ascending=False, kind="stable")
    return best_first.drop_duplicates(["seeker_id", "posting_id"]).reset_index(drop=True)


def _check_counts(counts: Mapping[str, int], name: str) -> None:
    negative = [key for key, value in counts.items() if value < 0]
    if negative:
        raise AllocationError(f"{name} of {negative[:5]} are negative; expected 0 or more")


def _flow_network(
    rows: pd.DataFrame, vacancies: Mapping[str, int], slots: Mapping[str, int] | int
) -> tuple[min_cost_flow.SimpleMinCostFlow, dict[int, int]]:
    """Build the network of the module docstring; return it and row position -> arc index."""
    targets = sorted(rows["seeker_id"].unique())
    postings = sorted(rows["posting_id"].unique())
    target_node = {seeker_id: 2 + i for i, seeker_id in enumerate(targets)}
    posting_node = {posting_id: 2 + len(targets) + i for i, posting_id in enumerate(postings)}
    source, sink = 0, 1

    solver = min_cost_flow.SimpleMinCostFlow()
    total = 0
    for seeker_id, node in target_node.items():
        requested = int(slots.get(seeker_id, 0) if isinstance(slots, Mapping) else slots)
        solver.add_arc_with_capacity_and_unit_cost(source, node, requested, 0)
        total += requested
    # The solver pushes as much of this supply as the capacities allow.
    solver.set_node_supply(source, total)
    solver.set_node_supply(sink, -total)
    for posting_id, node in posting_node.items():
        solver.add_arc_with_capacity_and_unit_cost(node, sink, int(vacancies.get(posting_id, 0)), 0)
    arcs: dict[int, int] = {}
    for position, seeker_id, posting_id, score in zip(
        rows.index, rows["seeker_id"], rows["posting_id"], rows["score"], strict=True
    ):
        cost = -round(float(score) * SCORE_SCALE)
        arcs[int(position)] = solver.add_arc_with_capacity_and_unit_cost(
            target_node[seeker_id], posting_node[posting_id], 1, cost
        )
    return solver, arcs
