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
    "demo_mode_off": (
        "**Off in this demo.** Fine-tuning, merging and evolution need a GPU machine and write large files; "
        "this demo (a CPU Space) keeps chat and rating. Run rp_eval on your own GPU server to use this tab."
    ),
    # -- Chat tab (rp_eval/ui/chat_tab.py) --
    "chat_tab": "Chat",
    "chat_intro": (
        "Talk in character with any registered model. Under each reply: why it ended (**ended** by itself, hit a "
        "**stop string**, **trimmed at the cap** to its last whole sentence, or **cut at the cap**), tokens and "
        "tokens/s. Every turn is stored for rating and evaluation."
    ),
    "chat_model_a": "Model",
    "chat_model_b": "Second model (side by side)",
    "chat_side_by_side": "Side by side: two models answer the same input with the same settings",
    "chat_persona": "Persona",
    "chat_user_name": "Your name in the chat ({{user}})",
    "chat_persona_heading": "Persona, system prompt and character cards",
    "chat_system_prompt": "System prompt (what the model sees before the chat; editable)",
    "chat_import_card": "Import a character card (SillyTavern V2 .json or .png, up to {mb} MB)",
    "chat_export_json": "Export card (JSON)",
    "chat_export_png": "Export card (PNG)",
    "chat_card_file": "Card file",
    "chat_imported": "Imported **{name}** as persona `{id}`.",
    "chat_sampling": "Sampling",
    "chat_temperature": "Temperature (0 = greedy)",
    "chat_top_p": "Top-p",
    "chat_top_k": "Top-k (0 = off)",
    "chat_repetition_penalty": "Repetition penalty",
    "chat_max_new_tokens": "Max new tokens",
    "chat_seed": "Seed (-1 = random)",
    "chat_message": "Message",
    "chat_message_placeholder": "Type your line and press Enter",
    "chat_send": "Send",
    "chat_stop": "Stop",
    "chat_regenerate": "Regenerate",
    "chat_undo": "Undo",
    "chat_clear": "New chat",
    "chat_show_raw": "Show raw text (what the model produced before the cut, special tokens included)",
    "chat_raw_prompt_heading": "Raw prompt",
    "chat_raw_prompt": "Show raw prompt",
    "chat_raw_prompt_box": "The exact prompt text (special tokens visible)",
    "chat_raw_prompt_none": "(no reply yet: type a message to see the prompt it would get)",
    "chat_history_heading": "Saved conversations",
    "chat_conversation": "Conversation",
    "chat_reopen": "Reopen",
    "chat_export_jsonl": "Export JSONL",
    "chat_refresh": "Refresh lists",
    "chat_jsonl_file": "Conversation file",
    "chat_pick_conversation": "Choose a saved conversation first.",
    "chat_no_conversation": "No conversation yet: send a message first.",
    "chat_generating": "Generating…",
    "chat_reply_failed": "⚠️ {error}",
    "chat_side_label": "{side}: {model}",
}


def t(key: str, **values: object) -> str:
    return STRINGS[key].format(**values) if values else STRINGS[key]
