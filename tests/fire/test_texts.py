"""Broadcast texts: templates, building labels and the 35–100 character check at load."""

from __future__ import annotations

import pytest

from gateway.config import FireSection, parse_config
from gateway.errors import ConfigError
from gateway.fire.texts import (
    DEFAULT_TEXT_DRILL,
    DEFAULT_TEXT_FIRE,
    DEFAULT_TEXT_PREALARM,
    MAX_CHARS,
    MIN_CHARS,
    building_label,
    render,
)

BASE = '[gateway]\nid = "gw"\nsite = "s"\n'


@pytest.mark.parametrize("template", [DEFAULT_TEXT_FIRE, DEFAULT_TEXT_DRILL, DEFAULT_TEXT_PREALARM])
def test_default_texts_fit_a_broadcast(template: str) -> None:
    for building, floor in (("1", 1), ("12", 33), ("b012", None)):
        assert MIN_CHARS <= len(render(template, building, floor, "z")) <= MAX_CHARS


def test_fire_text_names_building_and_floor() -> None:
    text = render(DEFAULT_TEXT_FIRE, building_label("b12", "12栋"), 3, "b12-f3")
    assert text.startswith("12栋3楼发生火警，请立即从最近的安全出口疏散，切勿乘坐电梯")
    assert building_label("b12") == "b12"
    assert building_label("b12", "栋") == "栋"
    assert building_label("b12", "东区A座") == "东区A座"
    assert render(DEFAULT_TEXT_FIRE, "b9", None, "z").startswith("b9栋某楼")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{building}栋起火", "renders to 5 characters"),
        ("{building}栋{level}楼" + "请疏散" * 12, r"unknown placeholder\(s\) \{level\}"),
        ("{building" + "请疏散" * 12, "not a valid template"),
        ("{building}" + "很长" * 60, "renders to 122 characters"),
    ],
)
def test_bad_template_is_rejected_at_load_naming_the_key_and_line(text: str, problem: str) -> None:
    config = BASE + f'[fire]\nack_s = 30\ntext_fire = "{text}"\n'
    with pytest.raises(ConfigError, match=problem) as err:
        parse_config(config, "site.toml")
    assert "site.toml:6: fire.text_fire" in str(err.value)


def test_fire_keys_can_be_overridden_from_the_command_line() -> None:
    cfg = parse_config(BASE, "site.toml", ["fire.release_scope=building", "fire.voice_repeat=3"])
    assert (cfg.fire.release_scope, cfg.fire.voice_repeat) == ("building", 3)
    with pytest.raises(ConfigError, match=r"--set fire\.release_scope"):
        parse_config(BASE, "site.toml", ["fire.release_scope=floor"])
    assert FireSection().text_fire == DEFAULT_TEXT_FIRE
