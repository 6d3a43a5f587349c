from __future__ import annotations

import subprocess
import sys

import pytest

from rp_eval import settings
from rp_eval.settings import ConfigError
from tests.conftest import ROOT


@pytest.fixture
def config_path(tmp_path, monkeypatch):
    path = tmp_path / "rp_eval.yaml"
    monkeypatch.setenv("RP_EVAL_CONFIG", str(path))
    for key in settings.Config.model_fields:
        monkeypatch.delenv(f"RP_EVAL_{key.upper()}", raising=False)
    return path


def test_file_then_environment(config_path, monkeypatch, tmp_path):
    config_path.write_text(f"home: {tmp_path / 'ws'}\ndevice: cpu\ngeneration:\n  max_new_tokens: 64\n")
    assert settings.config().device == "cpu" and settings.config().generation == {"max_new_tokens": 64}
    assert settings.home() == tmp_path / "ws" and settings.database_url().endswith("ws/rp_eval.sqlite")
    monkeypatch.setenv("RP_EVAL_HOME", str(tmp_path / "other"))
    assert settings.home() == tmp_path / "other"


def test_unknown_key_names_the_key_and_the_file(config_path):
    config_path.write_text("hom: /tmp/x\n")
    with pytest.raises(ConfigError, match=rf"'hom' in config file {config_path}.*known settings: home"):
        settings.config()


def test_bad_values_and_unreadable_files(config_path, monkeypatch):
    config_path.write_text("device: tpu\n")
    with pytest.raises(ConfigError, match=r"'device' in config file"):
        settings.config()
    config_path.write_text("device: [unclosed\n")
    with pytest.raises(ConfigError, match="can not be read"):
        settings.config()
    config_path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        settings.config()
    config_path.write_text("")
    monkeypatch.setenv("RP_EVAL_DEMO_MODE", "maybe")
    with pytest.raises(ConfigError, match="RP_EVAL_DEMO_MODE"):
        settings.config()


def test_demo_mode_is_on_by_itself_on_a_cpu_space(config_path, monkeypatch):
    config_path.write_text("")
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not settings.demo_mode()
    monkeypatch.setenv("SPACE_ID", "lab/rp-eval-demo")
    assert settings.demo_mode() is (not settings._has_gpu())
    monkeypatch.setenv("RP_EVAL_DEMO_MODE", "off")
    assert not settings.demo_mode()


def test_app_help_lists_every_setting_and_a_bad_config_stops_with_its_name(config_path):
    out = subprocess.run([sys.executable, "app.py", "--help"], capture_output=True, text=True, cwd=ROOT)
    for key in settings.Config.model_fields:
        assert f"RP_EVAL_{key.upper()}" in out.stdout
    config_path.write_text("colour: blue\n")
    bad = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "'colour'" in bad.stderr
