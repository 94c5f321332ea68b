"""Splitting a checkpoint over ConfigMaps: parts join back only when they belong together."""

from __future__ import annotations

from rightsizer.history import parts, store


def test_split_and_join_round_trip() -> None:
    blob = bytes(range(256)) * 10_000
    pieces = parts.split(blob, 1000)
    assert all(len(p) <= 1000 for p in pieces) and len(pieces) == 2560
    assert parts.join(pieces, parts.digest(blob)) == blob
    assert parts.split(b"", 10) == [b""]


def test_parts_of_two_checkpoints_are_refused() -> None:
    old, new = b"a" * 2500, b"b" * 2500
    mixed = [*parts.split(new, 1000)[:2], parts.split(old, 1000)[2]]
    assert parts.join(mixed, parts.digest(new)) is None


def test_part_names_are_valid_and_distinct() -> None:
    head = "rightsizer-checkpoint-" + "x" * 230 + "-y"
    names = {parts.part_name(head[: parts.MAX_NAME], i) for i in range(1, parts.MAX_PARTS)}
    assert len(names) == parts.MAX_PARTS - 1
    for name in names:
        assert len(name) <= parts.MAX_NAME
        assert ".part-" in name and not name.split(".part-")[0].endswith(("-", "."))


def test_a_checkpoint_beyond_every_part_is_not_written_and_said_so() -> None:
    too_big = b"x" * (parts.PART_BYTES * parts.MAX_PARTS + 1)
    result = store.save(None, "ns", "cm", too_big, "p", "uid")  # type: ignore[arg-type]
    assert result is store.SaveResult.TOO_LARGE  # refused before any API call
    assert result.problem("cm", len(too_big)) == (
        f"checkpoint not saved: {len(too_big)} bytes is more than the "
        f"{parts.PART_BYTES * parts.MAX_PARTS} allowed"
    )
    assert store.SaveResult.SAVED.problem("cm", 1) is None
