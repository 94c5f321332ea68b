"""Property tests: no valid input crashes the engine or yields negative/NaN values; every
invalid cell is rejected naming its line and column."""

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rightsizer.engine.strategies import STRATEGY_NAMES, build_strategy
from rightsizer.recommend import recommend_frame
from rightsizer.samples.frame import SamplesError, validate_samples
from rightsizer.sources.samples_file import read_samples

maybe = st.one_of(st.none(), st.floats(0, 1e3, allow_nan=False))
memory = st.one_of(st.none(), st.floats(0, 1e12, allow_nan=False))
row = st.fixed_dictionaries(
    {
        "timestamp": st.floats(1.6e9, 1.6e9 + 30 * 86400, allow_nan=False),
        "namespace": st.sampled_from(["a", "b"]),
        "workload": st.sampled_from(["w", "Deployment/x", "StatefulSet/y"]),
        "pod": st.sampled_from(["p0", "p1"]),
        "container": st.sampled_from(["c", "d"]),
        "cpu": maybe,
        "memory": memory,
        "cpu_request": maybe,
        "cpu_limit": maybe,
        "memory_request": memory,
        "memory_limit": memory,
        "oom": st.booleans(),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=80), st.sampled_from(STRATEGY_NAMES))
def test_valid_input_gives_sane_recommendations(rows: list[dict], name: str) -> None:  # type: ignore[type-arg]
    raw = pd.DataFrame(rows)
    has_data = raw["cpu"].notna() | raw["memory"].notna() | raw["oom"]
    raw = raw[has_data]
    if raw.empty:
        return
    frame = validate_samples(raw, "generated")
    strategy, policy = build_strategy(name)
    recs = recommend_frame(frame, strategy, policy)
    assert [r.key for r in recs] == sorted(r.key for r in recs)
    for r in recs:
        for res in (r.target, r.lower_bound, r.upper_bound, r.uncapped_target, r.limits):
            for value in (res.cpu_millicores, res.memory_bytes):
                assert value is None or (isinstance(value, int) and value >= 0)
        assert r.lower_bound.cpu_millicores <= r.target.cpu_millicores  # type: ignore[operator]
        assert r.target.cpu_millicores <= r.upper_bound.cpu_millicores  # type: ignore[operator]
        assert r.lower_bound.memory_bytes <= r.target.memory_bytes  # type: ignore[operator]
        assert r.target.memory_bytes <= r.upper_bound.memory_bytes  # type: ignore[operator]
        assert not math.isnan(r.confidence)
        assert r.confidence >= 0


BAD_VALUES = {
    "timestamp": st.sampled_from(["soon", "2023-13-45T00:00:00Z", "nan", "1e999"]),
    "cpu": st.sampled_from(["-0.5", "NaN", "inf", "1.2.3", "abc", "-inf"]),
    "memory": st.sampled_from(["-1", "nan", "Infinity", "12GB"]),
    "memory_limit": st.sampled_from(["-10", "x"]),
    "oom": st.sampled_from(["2", "yes", "-1"]),
    "namespace": st.just(""),
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(0, 9),
    st.sampled_from(sorted(BAD_VALUES)).flatmap(lambda c: st.tuples(st.just(c), BAD_VALUES[c])),
)
def test_every_invalid_cell_is_rejected_with_its_location(
    tmp_path_factory: pytest.TempPathFactory, bad_row: int, column_and_value: tuple[str, str]
) -> None:
    column, value = column_and_value
    cells = {
        "timestamp": "1700000000", "namespace": "ns", "workload": "web", "pod": "p",
        "container": "c", "cpu": "0.1", "memory": "100", "memory_limit": "200", "oom": "0",
    }  # fmt: skip
    lines = [",".join(cells)]
    for i in range(10):
        values = dict(cells, timestamp=str(1700000000 + i))
        if i == bad_row:
            values[column] = value
        lines.append(",".join(values.values()))
    path = Path(tmp_path_factory.mktemp("bad")) / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SamplesError) as err:
        read_samples(path)
    assert err.value.line == bad_row + 2
    assert err.value.column == column
