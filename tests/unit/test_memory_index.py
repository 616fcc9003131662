"""The memory repository's sorted index with marked removals reads exactly as a plain
sorted list would, through any sequence of adds and removes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.memory_index import SortedKeys

operations = st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=200)


@given(operations, st.integers(0, 31), st.integers(1, 5))
def test_reads_as_a_sorted_list_would(ops: list[tuple[bool, int]], bound: int, limit: int) -> None:
    index = SortedKeys[tuple[int, str]]()
    model: list[tuple[int, str]] = []
    for adding, n in ops:
        key = (n, f"t{n}")
        if adding and key not in model:
            index.add(key)
            model.append(key)
        elif not adding and key in model:
            index.remove(key)
            model.remove(key)
        model.sort()
        assert len(index) == len(model)
        assert list(index.ascending()) == model
        assert index.first() == (model[0] if model else None)
    below = [key for key in model if key < (bound, "")][::-1]
    page, more = index.page_before((bound, ""), limit)
    assert page == below[:limit]
    assert more == (len(below) > limit)
    assert index.page_before(None, limit)[0] == model[::-1][:limit]
