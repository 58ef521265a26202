"""Shipped policies and templates are found from a checkout and from a regular install."""

from __future__ import annotations

from pathlib import Path

from memaudit import paths


def test_checkout_folders_win(monkeypatch, tmp_path):
    (tmp_path / "policies").mkdir()
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)
    assert paths._shipped("policies") == tmp_path / "policies"


def test_installed_share_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "site-packages")
    monkeypatch.setattr(paths, "INSTALLED_SHARE", tmp_path / "share" / "memaudit")
    assert paths._shipped("templates") == tmp_path / "share" / "memaudit" / "templates"


def test_every_shipped_file_is_declared_for_installation():
    import tomllib

    config = tomllib.loads((paths.PROJECT_ROOT / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    assert data_files["share/memaudit/policies"] == ["policies/*.yaml"]
    assert data_files["share/memaudit/templates"] == ["templates/*.j2"]
    assert {p.suffix for p in paths.TEMPLATES_DIR.iterdir() if p.name != "README.md"} == {".j2"}


def test_every_shipped_model_file_is_declared_for_installation():
    import glob
    import tomllib

    root = paths.PROJECT_ROOT
    config = tomllib.loads((root / "pyproject.toml").read_text())
    declared = {
        Path(match).resolve()
        for patterns in config["tool"]["setuptools"]["data-files"].values()
        for pattern in patterns
        for match in glob.glob(str(root / pattern))
    }
    shipped = {path.resolve() for path in (root / "models").rglob("*") if path.is_file() and path.name != "README.md"}
    assert shipped and shipped <= declared
