import pytest

from explr.errors import ExplrError
from explr.rules.registry import finding
from explr.settings import Settings, load_settings


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_a_table(tmp_path):
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    assert load_settings(tmp_path) == Settings()


def test_found_from_a_subdirectory_upward(tmp_path):
    py = write(tmp_path / "pyproject.toml", '[tool.explr]\nselect = ["EXP1"]\nignore = ["exp107"]\nfail-on = "warning"\n')
    write(tmp_path / "pkg" / "pyproject.toml", "[project]\nname = 'inner, no table'\n")
    deep = tmp_path / "pkg" / "models"
    deep.mkdir()
    settings = load_settings(deep)
    assert settings == Settings(("EXP1",), ("EXP107",), "warning", py.resolve())


def test_nearest_table_wins(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.explr]\nfail-on = "never"\n')
    inner = write(tmp_path / "sub" / "pyproject.toml", '[tool.explr]\nfail-on = "info"\n')
    assert load_settings(inner.parent).fail_on == "info"


def test_cli_values_win():
    base = Settings(select=("EXP1",), ignore=("EXP107",), fail_on="warning")
    merged = base.with_cli(select=["EXP2"], ignore=["EXP208"], fail_on="error")
    assert merged.select == ("EXP2",) and merged.ignore == ("EXP107", "EXP208") and merged.fail_on == "error"
    assert base.with_cli() == base


def test_apply_filters_findings():
    found = [finding("EXP107", "head"), finding("EXP104", "opaque"), finding("EXP201", "nesterov")]
    assert [f.code for f in Settings(ignore=("EXP104",)).apply(found)] == ["EXP107", "EXP201"]
    assert [f.code for f in Settings(select=("EXP1",), ignore=("EXP107",)).apply(found)] == ["EXP104"]
    assert Settings().apply(found) == found


@pytest.mark.parametrize("table, message", [
    ('select = "EXP1"', "select must be a list of rule codes"),
    ('select = ["EXP999"]', "unknown rule code 'EXP999'"),
    ('ignore = [1]', "ignore must be a list"),
    ('fail-on = "sometimes"', "'sometimes' is not one of error, warning, info, never"),
    ('fail_on = "error"', "unknown key 'fail_on'"),
    ('select = [', "invalid TOML"),
])
def test_malformed_table_is_a_clear_error(tmp_path, table, message):
    py = write(tmp_path / "pyproject.toml", f"[tool.explr]\n{table}\n")
    with pytest.raises(ExplrError, match=message) as info:
        load_settings(tmp_path)
    assert str(py.resolve()) in str(info.value) and info.value.exit_code == 2


def test_tool_explr_not_a_table(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool]\nexplr = 3\n')
    with pytest.raises(ExplrError, match=r"\[tool.explr\] must be a table"):
        load_settings(tmp_path)


def test_cli_unknown_code_names_the_flag():
    with pytest.raises(ExplrError, match="--select: unknown rule code 'EXP0'"):
        Settings().with_cli(select=["EXP0"])
