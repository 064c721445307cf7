"""The id-set helpers the validation and the experiment checks decide with (lib/frames.py)."""

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from personalization_assets.lib.frames import distinct_count, each_once_on_both_sides


def chunked(*chunks: list) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(chunk, pa.string()) for chunk in chunks], type=pa.string())


@pytest.mark.parametrize(
    "values",
    [
        chunked([]),
        chunked(["a", "b"], ["c"]),
        chunked(["a", "b"], ["a"]),
        chunked(["a", None], ["b"]),
        chunked([None, None]),
        chunked(["", "", "x"]),
        chunked(["Ä", "A", "a", "a "]),  # compared byte for byte: no case or space folding
    ],
)
def test_distinct_count_counts_as_arrow_unique_does(values):
    assert distinct_count(values) == len(pc.unique(values))


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (chunked(["a", "b", "c"]), chunked(["c"], ["a", "b"]), True),
        (chunked([]), chunked([]), True),
        (chunked(["a", "a"]), chunked(["b", "b"]), False),  # each value twice in all: not once per side
        (chunked(["a", "b"]), chunked(["a", "a"]), False),
        (chunked(["a", "b"]), chunked(["a", "B"]), False),
        (chunked(["a", "b"]), chunked(["a", "b", "c"]), False),
        (chunked(["a", None]), chunked([None, "a"]), True),
        (chunked(["a", None]), chunked(["a", "b"]), False),
    ],
)
def test_each_once_on_both_sides(left, right, expected):
    assert each_once_on_both_sides(left, right) is expected
