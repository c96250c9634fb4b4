"""The small-record plumbing of the build: packed strings and grouping in parts."""

from __future__ import annotations

import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.dedup import Strings
from pipeline.grouping import GroupInParts, parts_for


@pytest.mark.parametrize(
    "items",
    [
        [],
        [b""],
        [b"", b""],
        [b"0123456789abcdef"] * 5,  # equal width: no sizes stored
        [b"a", b"bb", b""],
        ["x", "yy", ""],
        ["é" * 300, "a", "\udc80 lone surrogate"],  # sizes above one byte, surrogatepass
    ],
)
def test_strings_round_trip_through_pickle(items: list) -> None:
    packed = Strings(items)
    assert list(packed) == items
    assert len(packed) == len(items)
    assert list(pickle.loads(pickle.dumps(packed))) == items


def test_strings_store_equal_widths_without_sizes_and_ids_in_one_byte_each() -> None:
    assert Strings([b"k" * 16] * 100).sizes is None
    ids = Strings([f"<urn:uuid:{i}>\x00{i % 7}" for i in range(1000)])  # lengths vary
    assert ids.sizes is not None and ids.sizes.itemsize == 1


def _sorted_groups(kv: tuple[int, list[str]]) -> tuple[int, list[str]]:
    return kv[0], sorted(kv[1])


@pytest.mark.parametrize("parts", [1, 4])
def test_group_in_parts_equals_one_group_by_key(parts: int) -> None:
    records = [(k % 23, f"v{k}") for k in range(500)]
    expected = {}
    for k, v in records:
        expected.setdefault(k, []).append(v)
    with beam.Pipeline() as p:
        grouped = (
            p
            | beam.Create(records)
            | GroupInParts(lambda g: g | "Sort" >> beam.Map(_sorted_groups), parts=parts)
        )
        assert_that(grouped, equal_to([(k, sorted(v)) for k, v in expected.items()]))


def _tagged(kv: tuple[int, list[str]]):
    yield beam.pvalue.TaggedOutput("even" if kv[0] % 2 == 0 else "odd", (kv[0], len(kv[1])))


@pytest.mark.parametrize("parts", [1, 3])
def test_group_in_parts_flattens_each_tag(parts: int) -> None:
    records = [(k % 10, k) for k in range(100)]
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create(records)
            | GroupInParts(
                lambda g: g | "Tag" >> beam.FlatMap(_tagged).with_outputs("even", "odd"),
                tags=("even", "odd"),
                parts=3,
            )
        )
        assert_that(out["even"], equal_to([(k, 10) for k in range(0, 10, 2)]), label="Even")
        assert_that(out["odd"], equal_to([(k, 10) for k in range(1, 10, 2)]), label="Odd")


def test_parts_follow_the_input_size() -> None:
    assert [parts_for(n << 20) for n in (0, 1, 64, 65, 300, 512, 10_000)] == [1, 1, 1, 2, 5, 8, 8]
