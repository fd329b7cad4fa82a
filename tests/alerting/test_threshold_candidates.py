"""The evaluator's shortcut: a rule looks only at the groups its threshold selects.

``QueryResult.candidates`` bisects the result's sorted values (shared by every rule on the
same selection); it must select exactly the groups a comparison of every group would, plus
every group without a comparable value, in the order of the groups.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from collector_server.alerts.models import COMPARISONS
from collector_server.alerts.query import GroupValue, QueryResult

values = st.one_of(
    st.none(),
    st.just(math.nan),
    st.integers(-5, 5).map(float),
    st.floats(allow_nan=False, allow_infinity=True, width=32),
)


def brute_force(result: QueryResult, comparison: str, threshold: float) -> list[str]:
    compare = COMPARISONS[comparison]
    return [
        key
        for key, group in result.groups.items()
        if group.value is None or math.isnan(group.value) or compare(group.value, threshold)
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(values, max_size=40),
    st.sampled_from(sorted(COMPARISONS)),
    st.one_of(st.integers(-5, 5).map(float), st.floats(allow_nan=False, width=32)),
)
def test_candidates_equal_a_comparison_of_every_group(group_values, comparison, threshold):
    result = QueryResult()
    for i, value in enumerate(group_values):
        result.add({"host": f"h{i:02d}"}, value)
    assert result.candidates(comparison, threshold) == brute_force(result, comparison, threshold)


def test_the_index_follows_a_replaced_group_mapping():
    result = QueryResult()
    result.add({"host": "a"}, 1.0)
    assert result.candidates(">", 0) == ["host=a"]
    result.groups = {"host=b": GroupValue({"host": "b"}, 5.0)}
    assert result.candidates(">", 0) == ["host=b"]
    result.add({"host": "c"}, 9.0)
    assert result.candidates(">", 6) == ["host=c"]
