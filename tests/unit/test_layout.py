"""The source root ``operator/`` must never become a package (it would shadow stdlib)."""

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_dir_is_not_a_package() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists(), (
        "operator/__init__.py shadows Python's standard library 'operator' module"
    )


def test_stdlib_operator_still_importable() -> None:
    op = importlib.import_module("operator")
    assert op.add(2, 3) == 5
    assert "site-packages" not in str(getattr(op, "__file__", "builtin"))


def test_rightsizer_is_importable_from_the_source_root() -> None:
    import rightsizer

    assert Path(rightsizer.__file__).resolve().parent == ROOT / "operator" / "rightsizer"
