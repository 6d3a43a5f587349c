"""The shipped personas and the persona schema: every file loads, errors name the file and the field."""

from __future__ import annotations

import pytest

from rp_eval.chat.personas import PERSONAS_DIR, PersonaError, load_persona, load_personas


def test_shipped_personas_load_and_differ():
    personas = load_personas()
    assert len(personas) >= 8
    first_persons = [tuple(p.style.first_person) for p in personas.values()]
    assert len(set(first_persons)) >= 7, "speaking styles should differ by first-person pronoun"
    for pid, p in personas.items():
        assert p.id == pid and p.style.expected and p.style.forbidden, pid
        assert not set(p.style.first_person) & set(p.style.forbidden), pid
        # the example dialogue speaks as the character: some of its expected markers appear there
        assert any(m in p.mes_example or m in p.first_mes for m in p.style.expected), pid


def test_placeholders_are_filled_in_the_opening():
    persona = load_personas()["samurai"]
    system, greeting = persona.opening("花子")
    assert system["role"] == "system" and greeting["role"] == "assistant"
    for m in (system, greeting):
        assert "{{" not in m["content"]
    assert "花子" in greeting["content"] and persona.name in system["content"]
    assert persona.first_mes.replace("{{user}}", "花子") == greeting["content"]


def test_missing_field_names_file_and_field(tmp_path):
    text = (PERSONAS_DIR / "kansai.yaml").read_text(encoding="utf-8")
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("scenario:"))
    broken = broken.replace("  夏の夕方、商店街の駄菓子屋", "#")  # drop the scenario's body too
    path = tmp_path / "nanashi.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(PersonaError, match=r"nanashi\.yaml.*field 'scenario'"):
        load_persona(path)


def test_bad_yaml_and_bad_types_are_named(tmp_path):
    bad = tmp_path / "kowareta.yaml"
    bad.write_text("name: [unclosed\ndescription: x\n", encoding="utf-8")
    with pytest.raises(PersonaError, match=r"kowareta\.yaml: bad YAML at line \d+"):
        load_persona(bad)
    typo = tmp_path / "typo.yaml"
    src = (PERSONAS_DIR / "butler.yaml").read_text(encoding="utf-8")
    typo.write_text(
        src.replace("  first_person: [わたくし]", "  first_person: [わたくし]\n  frist: x"), encoding="utf-8"
    )
    with pytest.raises(PersonaError, match=r"typo\.yaml.*field 'style\.frist'"):
        load_persona(typo)
