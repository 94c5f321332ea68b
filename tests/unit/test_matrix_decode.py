"""Range answers decoded straight into arrays: the same numbers as the ordinary decode for
every body in Prometheus's canonical form, and ``None`` (the ordinary decode decides)
for anything else, hostile bodies included."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsizer.sources.matrix import decode_matrix


def body(series: list[dict[str, Any]], **extra: Any) -> bytes:
    doc = {"status": "success", "data": {"resultType": "matrix", "result": series}, **extra}
    return json.dumps(doc, separators=(",", ":")).encode()


label = st.text(min_size=0, max_size=12)
value_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["NaN", "+Inf", "-Inf", "1e-7", "0"]),
)
series_st = st.lists(
    st.fixed_dictionaries(
        {
            "metric": st.dictionaries(st.sampled_from(["pod", "container", "namespace"]), label),
            "values": st.lists(
                st.tuples(st.floats(min_value=0, max_value=4e9, allow_nan=False), value_text).map(
                    list
                ),
                max_size=20,
            ),
        }
    ),
    max_size=6,
)


@given(series_st)
def test_the_fast_decode_equals_the_ordinary_one(series: list[dict[str, Any]]) -> None:
    raw = body(series)
    fast = decode_matrix(raw)
    assert fast is not None
    ordinary = json.loads(raw)
    assert fast["status"] == "success"
    got, want = fast["data"]["result"], ordinary["data"]["result"]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g["metric"] == w["metric"]
        expected = np.asarray(w["values"], dtype=np.float64).reshape(-1, 2)
        assert g["values"].shape == expected.shape
        np.testing.assert_array_equal(g["values"], expected)


def test_labels_that_look_like_values_are_only_labels() -> None:
    tricky = {"pod": '"values":[[1,"2"]]', "container": "]]"}
    raw = body([{"metric": tricky, "values": [[60, "1.5"], [120, "2"]]}])
    fast = decode_matrix(raw)
    assert fast is not None
    assert fast["data"]["result"][0]["metric"] == tricky
    np.testing.assert_array_equal(fast["data"]["result"][0]["values"], [[60, 1.5], [120, 2]])


@pytest.mark.parametrize(
    "raw",
    [
        # not the canonical form: the ordinary decode takes over
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values": [[1,"2"]]}]}}',
        # pairs that are not pairs
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,"2","3"],[4]]}]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,"zzz"]]}]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,2]]}]}}',
        # JSON literals or numbers JSON does not allow, hidden in the pairs
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,"true"],[2,"null"]]}]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[01,"2"]]}]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,""]]}]}}',
        # values outside the result, or a series without them
        b'{"status":"success","values":[[1,"2"]],"data":{"resultType":"matrix","result":[]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}}],'
        b'"values":[[1,"2"]]}}',
        # two values arrays in one series
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,"2"]],"values":[[3,"4"]]}]}}',
        # truncated
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},'
        b'"values":[[1,"2"],[3,"4"',
        b"",
        b"[]",
    ],
)
def test_anything_else_goes_to_the_ordinary_decode(raw: bytes) -> None:
    assert decode_matrix(raw) is None


def test_warnings_and_errors_stay_in_the_body() -> None:
    fast = decode_matrix(body([{"metric": {}, "values": [[1, "2"]]}], warnings=["partial"]))
    assert fast is not None and fast["warnings"] == ["partial"]
