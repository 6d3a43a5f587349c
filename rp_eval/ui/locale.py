"""Every string the UI shows, in one table (Japanese comes with the deploy issue: add a second column)."""

STRINGS: dict[str, str] = {
    "title": "rp_eval: role-play chat models",
    "demo_banner": (
        "**Offline demo models.** `demo-llama-a`, `demo-llama-b` and `demo-mistral` are tiny models (about a "
        "million parameters) trained for a minute on a small Japanese role-play corpus, so the whole app can be "
        "tried with no network and no GPU. Their Japanese is rough because they are so small; register real models "
        "below (a Hugging Face id or a folder) for real work."
    ),
    "models_tab": "Models",
    "models_intro": "Every model the app can chat with, rate, evaluate, fine-tune or merge.",
    "add_heading": "Add a model",
    "source": "Hugging Face id or local folder",
    "source_placeholder": "elyza/ELYZA-japanese-Llama-2-7b-instruct  or  /data/models/my-merge",
    "name": "Name in the registry (optional)",
    "prompt_format": "Prompt format",
    "trust_remote_code": "Trust remote code (runs the model's own Python code)",
    "add": "Check and add",
    "remove_heading": "Remove a model",
    "remove_choice": "Model",
    "delete_files": "Also delete its files (only models rp_eval made in its workspace)",
    "remove": "Remove",
    "refresh": "Refresh",
    "added": "Registered **{name}** ({architecture}).",
    "removed": "Removed **{name}** from the registry.",
    "removed_files": "Removed **{name}** and deleted its files.",
    "choose_model": "Choose a model to remove first.",
    "startup_problems": "Some configured models could not be registered:",
}


def t(key: str, **values: object) -> str:
    return STRINGS[key].format(**values) if values else STRINGS[key]
