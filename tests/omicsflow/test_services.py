"""The services file: mistakes are refused at load time, with the field that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from omicsflow.errors import ConfigError
from omicsflow.services import ServiceConfig, ServicesFile, load_services, parse_services

GOOD = """
[services.wgs-qc]
command = ["bash", "run.sh"]
cooldown_seconds = 900
max_retries = 3
"""


def parse(text: str, base: Path | None = None) -> ServicesFile:
    return parse_services(text, (base or Path("/nonexistent-dir")) / "services.toml")


def problems(text: str, base: Path | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(text, base)
    return str(exc.value)


def test_a_good_file_loads_with_its_values_and_defaults() -> None:
    svc = parse(GOOD).services["wgs-qc"]
    assert svc.name == "wgs-qc"
    assert svc.backend == "local"
    assert svc.command == ("bash", "run.sh")
    assert svc.cooldown_seconds == 900
    assert svc.max_retries == 3
    assert svc.temp_fail_exit_code == 75
    assert svc.max_system_retries == 3


def test_shell_string_command_is_refused() -> None:
    msg = problems('[services.wgs-qc]\ncommand = "bash run.sh && rm -rf /"\n')
    assert "services.wgs-qc.command" in msg
    assert "argv list" in msg
    assert "not a shell string" in msg


def test_empty_command_item_is_refused() -> None:
    msg = problems('[services.wgs-qc]\ncommand = ["bash", ""]\n')
    assert "services.wgs-qc.command" in msg


def test_local_service_needs_a_command() -> None:
    msg = problems("[services.wgs-qc]\ncooldown_seconds = 10\n")
    assert "services.wgs-qc" in msg
    assert "a local service needs command" in msg


def test_remote_service_needs_no_command() -> None:
    svc = parse('[services.omics]\nbackend = "healthomics"\nsettings = {workflow_id = "123"}\n')
    assert svc.services["omics"].command == ()
    assert svc.services["omics"].settings == {"workflow_id": "123"}


@pytest.mark.parametrize("key", ["max_retrys", "command_line", "sandbox", "Cooldown_seconds"])
def test_unknown_keys_are_refused_by_name(key: str) -> None:
    msg = problems(GOOD + f"{key} = 1\n")
    assert f"services.wgs-qc.{key}" in msg
    assert "Extra inputs are not permitted" in msg


def test_unknown_backend_is_refused() -> None:
    msg = problems(GOOD + 'backend = "slurm"\n')
    assert "services.wgs-qc.backend" in msg


@pytest.mark.parametrize(
    "field",
    [
        "cooldown_seconds",
        "retry_delay_seconds",
        "temp_fail_retry_delay_seconds",
        "failed_sync_retry_delay_seconds",
        "system_retry_delay_seconds",
        "max_system_retries",
    ],
)
def test_negative_delays_and_budgets_are_refused(field: str) -> None:
    text = f'[services.wgs-qc]\ncommand = ["bash", "run.sh"]\n{field} = -1\n'
    msg = problems(text)
    assert f"services.wgs-qc.{field}" in msg
    assert "greater than or equal to 0" in msg


def test_zero_retries_is_refused_and_the_message_names_the_field() -> None:
    msg = problems('[services.wgs-qc]\ncommand = ["bash", "run.sh"]\nmax_retries = 0\n')
    assert "services.wgs-qc.max_retries:" in msg


def test_wrong_type_names_the_field_path() -> None:
    msg = problems('[services.wgs-qc]\ncommand = ["bash", "run.sh"]\nmax_retries = "three"\n')
    assert "services.wgs-qc.max_retries:" in msg


def test_every_problem_in_every_service_is_reported_at_once() -> None:
    text = """
[services.a]
command = "bash a.sh"
[services.b]
command = ["bash", "b.sh"]
retry_delay_seconds = -5
[services.c]
command = ["bash", "c.sh"]
"""
    msg = problems(text)
    assert "services.a.command" in msg
    assert "services.b.retry_delay_seconds" in msg
    assert "services.c" not in msg


@pytest.mark.parametrize("name", ["lower", "1BAD", "WITH-DASH", "SPACE NAME", "A$B", ""])
def test_bad_environment_variable_names_are_refused(name: str) -> None:
    text = GOOD + f'environment = {{ "{name}" = "x" }}\n'
    msg = problems(text)
    assert "services.wgs-qc.environment" in msg
    assert "not a valid environment variable name" in msg


def test_good_environment_variables_are_kept() -> None:
    svc = parse(GOOD + 'environment = { REF_GENOME = "hg38", _X1 = "" }\n').services["wgs-qc"]
    assert svc.environment == {"REF_GENOME": "hg38", "_X1": ""}


def test_env_role_mapping_refuses_bad_names_and_unknown_roles() -> None:
    msg = problems(GOOD + 'env = { base_dir = "lomi-base" }\n')
    assert "services.wgs-qc.env" in msg
    assert "'lomi-base' is not a valid environment variable name" in msg
    msg = problems(GOOD + 'env = { home_dir = "HOME_X" }\n')
    assert "services.wgs-qc.env" in msg
    assert "home_dir" in msg


def test_env_role_mapping_sets_the_names_the_pipeline_expects() -> None:
    svc = parse(GOOD + 'env = { base_dir = "LOMI_BASE_DIR", user_dir = "LOMI_USER_DIR" }\n')
    cfg = svc.services["wgs-qc"]
    assert (cfg.base_dir_env, cfg.user_dir_env) == ("LOMI_BASE_DIR", "LOMI_USER_DIR")
    default = parse(GOOD).services["wgs-qc"]
    assert (default.base_dir_env, default.user_dir_env) == (
        "OMICSFLOW_BASE_DIR",
        "OMICSFLOW_USER_DIR",
    )


@pytest.mark.parametrize(
    "entry", ["/etc", "/tmp/out", "..", "../other", "out/../../escape", "", "  "]
)
def test_whitelist_entries_must_stay_inside_the_pipeline_dir(entry: str) -> None:
    msg = problems(GOOD + f'sandbox_write_whitelist = ["results", "{entry}"]\n')
    assert "services.wgs-qc.sandbox_write_whitelist" in msg
    assert "relative, no '..'" in msg


def test_relative_whitelist_entries_are_kept() -> None:
    svc = parse(GOOD + 'sandbox_write_whitelist = ["results", "cache/db.sqlite"]\n')
    assert svc.services["wgs-qc"].sandbox_write_whitelist == ("results", "cache/db.sqlite")


@pytest.mark.parametrize("name", ["bad name", "-dash-first", "a/b", "x" * 64])
def test_bad_service_names_are_refused(name: str) -> None:
    msg = problems(f'[services."{name}"]\ncommand = ["bash", "run.sh"]\n')
    assert "service names use letters" in msg


def test_file_without_services_is_refused() -> None:
    assert "needs at least one [services.<name>] table" in problems("[other]\nx = 1\n")
    assert "needs at least one" in problems("")


def test_service_that_is_not_a_table_is_refused() -> None:
    assert "services.wgs-qc: must be a table" in problems('[services]\nwgs-qc = "bash"\n')


def test_invalid_toml_says_so_with_the_path() -> None:
    msg = problems("[services.wgs-qc\n")
    assert "services.toml: not valid TOML" in msg


def test_script_path_is_resolved_against_the_services_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    (conf / "pipelines").mkdir(parents=True)
    script = conf / "pipelines" / "qc.sh"
    script.write_text("#!/bin/bash\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the cwd must not matter
    svc = parse('[services.qc]\ncommand = ["bash", "pipelines/qc.sh", "--fast"]\n', conf)
    cfg = svc.services["qc"]
    assert cfg.command == ("bash", str(script.resolve()), "--fast")
    assert cfg.workdir == script.parent.resolve()


def test_program_name_stays_a_program_name(tmp_path: Path) -> None:
    # A file called "bash" next to the services file must not replace the bash program.
    (tmp_path / "bash").write_text("")
    (tmp_path / "run.sh").write_text("")
    cfg = parse('[services.qc]\ncommand = ["bash", "run.sh"]\n', tmp_path).services["qc"]
    assert cfg.command[0] == "bash"
    assert cfg.command[1] == str((tmp_path / "run.sh").resolve())


def test_relative_workdir_is_resolved_against_the_services_file(tmp_path: Path) -> None:
    text = '[services.qc]\ncommand = ["bash", "run.sh"]\nworkdir = "work"\n'
    cfg = parse(text, tmp_path).services["qc"]
    assert cfg.workdir == (tmp_path / "work").resolve()


def test_missing_absolute_script_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sh"
    msg = problems(f'[services.qc]\ncommand = ["bash", "{missing}"]\n', tmp_path)
    assert f"services.qc.command: {missing} does not exist" in msg


def test_load_services_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    (tmp_path / "run.sh").write_text("")
    path.write_text(GOOD)
    loaded = load_services(path)
    assert loaded.path == path
    assert isinstance(loaded.get("wgs-qc"), ServiceConfig)
    assert loaded.get("other") is None


def test_load_services_on_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read services file"):
        load_services(tmp_path / "missing.toml")


def test_policy_is_frozen() -> None:
    cfg = parse(GOOD).services["wgs-qc"]
    with pytest.raises(ValueError):
        cfg.max_retries = 10


def test_an_absolute_script_path_makes_its_directory_the_workdir(tmp_path: Path) -> None:
    """The sandbox hides the host's /tmp except the workdir: a pipeline given by absolute
    path must get its own directory as workdir, wherever the services file lives."""
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "run.sh"
    script.write_text("#!/bin/bash\n")
    elsewhere = tmp_path / "conf"
    elsewhere.mkdir()
    text = f'[services.s]\ncommand = ["bash", "{script}"]\n'
    svc = parse_services(text, elsewhere / "services.toml").services["s"]
    assert svc.workdir == repo.resolve()
    assert svc.command == ("bash", str(script.resolve()))
