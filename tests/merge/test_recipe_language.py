"""A recipe's field errors in the page's language: pydantic's and mergekit's English messages become keyed ones
(the field name stays as written, it is the recipe's own)."""

from __future__ import annotations

import pytest

from rp_eval.merge import recipe
from rp_eval.ui.locale import error_text, in_language
from tests.japanese import english_words, japanese

CASES = [
    ("merge_method: linear", "models", "ちょうど 1 つ", "exactly one of models, slices or modules"),
    ("merge_method: linear\nmodels: 3", "models", "リスト", "should be a list"),
    ("models:\n  - model: a", "merge_method", "必須", "this field is required"),
    ("merge_method: linear\nmodels:\n  - {}", "models.0.model", "必須", "this field is required"),
    ("merge_method: linear\ndtype: 3\nmodels:\n  - {model: a}", "dtype", "文字列", "should be text"),
]


@pytest.mark.parametrize(("text", "field", "ja", "en"), CASES)
def test_recipe_errors_in_japanese_and_english(text, field, ja, en):
    with pytest.raises(recipe.RecipeError) as caught:
        recipe.parse(text)
    assert caught.value.field == field
    said = in_language("ja", lambda: error_text(caught.value))
    assert said.startswith(f"{field}: ") and ja in said and japanese(said), said
    allowed = {"models", "slices", "modules", "tokenizer_source", "tokenizer", "true", "false", "mergekit"}
    assert english_words(said.removeprefix(f"{field}: "), allowed) == [], said
    assert en in str(caught.value)  # the CLI and logs: English
