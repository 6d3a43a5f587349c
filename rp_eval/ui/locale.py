"""Every string the UI shows, in English (`STRINGS`) and Japanese (`JA`), and how a page gets its language.

Labels made while a page is built become Gradio I18n keys, which the browser shows in its own language (Japanese
for a `ja` browser, English otherwise) or the one picked with the switch in the header. Messages made in event
handlers are formatted here, on the server, in the language of the request: the switch's cookie, else the
browser's Accept-Language. Tab modules only call `t(key, **values)`.
"""

import hashlib
import json
from contextvars import ContextVar
from pathlib import Path

import gradio as gr
from gradio.context import Context, LocalContext
from gradio.i18n import I18nData

from rp_eval.errors import MESSAGES, RpEvalError, Said, format_message
from rp_eval.ui.locale_ja import GRADIO_LABELS_JA, JA, METRIC_LABELS_JA

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
    "login": "rp_eval: sign in to chat and rate.",
    "login_admin": "rp_eval administration: sign in with an admin account.",
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
    "chat_import_card": "Import a character card (SillyTavern V2 or V3, .json or .png, up to {mb} MB)",
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
    "chat_footer": "{reason} · {tokens} tokens · {tps} tokens/s · {model}",
    "chat_footer_short": "{reason} · {model}",
    "evo_meta_none": "The fitness's meta-evaluation: not measured.",
    "evo_meta_line": (
        "It prefers the better reply in **{accuracy}** of {pairs} meta-evaluation pairs (95% {lo}–{hi}; {categories})"
    ),
    "run_status_running": "running",
    "run_status_done": "done",
    "run_status_failed": "failed",
    "run_status_stopped": "stopped",
    "run_status_ok": "ok",
    "run_status_cancelled": "cancelled",
    "ft_series_train": "train",
    "ft_series_eval": "eval",
    "col_seed": "seed",
    "col_temperature": "temperature",
    "col_updated": "updated",
    "chat_dropped_turns": "the oldest {n} messages were left out to fit the model's context",
    "finish_eos": "ended",
    "finish_stop_string": "stop string",
    "finish_length_trimmed": "trimmed at the cap",
    "finish_length": "cut at the cap",
    "finish_stopped": "stopped by you",
    "finish_error": "failed",
    "chat_min_p": "Min-p (0 = off)",
    "chat_stop_strings": "Stop strings (one per line; the reply ends where one appears)",
    "chat_preset": "Sampler preset",
    "preset_balanced": "Balanced",
    "preset_greedy": "Greedy (the same reply every time)",
    "preset_creative": "Creative",
    "preset_min_p": "Min-p sampling",
    "preset_focused": "Focused",
    "preset_custom": "Custom (as set below)",
    "chat_greeting": "Opening message",
    "chat_greeting_first": "First message",
    "chat_greeting_alt": "Alternate greeting {n}",
    "chat_frame": "Prompt frame",
    "chat_frame_auto": "In the card's language",
    "chat_frame_ja": "Japanese",
    "chat_frame_en": "English",
    "chat_alternative": "Reply {index} of {count}",
    "chat_alternative_prev": "Previous reply",
    "chat_alternative_next": "Next reply",
    "chat_unload": "Unload from memory",
    "chat_unloaded": "Unloaded **{names}** from memory: the next reply loads it again.",
    "chat_not_loaded": "**{names}** was not in memory.",
    "chat_switched": "The conversation goes on with **{models}** from the next reply.",
    "chat_edited": "Message changed: the next reply sees the new text.",
    "chat_edit_before_send": "The opening can be edited once the conversation has begun.",
    "chat_lore": "Lorebook entries in this prompt: {names}",
    "chat_lore_none": "No lorebook entry is called up by the recent turns.",
    "chat_field_temperature": "Temperature",
    "chat_field_top_p": "Top-p",
    "chat_field_top_k": "Top-k",
    "chat_field_min_p": "Min-p",
    "chat_field_repetition_penalty": "Repetition penalty",
    "chat_field_max_new_tokens": "Max new tokens",
    "chat_field_seed": "Seed",
    "chat_nothing_stored": "Nothing was stored for this request: your message is back in the box.",
    # -- Fine-tune tab (rp_eval/ui/finetune_tab.py) --
    "finetune_tab": "Fine-tune",
    "ft_intro": (
        "Train a LoRA adapter (QLoRA on a CUDA GPU) of a registered model on role-play dialogues. Every reply is "
        "trained to end on the model's real end token, so the adapter stops by itself. Highlighted text is what "
        "the model learns; boxed tokens are special tokens."
    ),
    "ft_base": "Base model",
    "ft_data": "Training data (JSONL, saved dataset folder or hub id; empty: the shipped Japanese set)",
    "ft_data_placeholder": "prompts/finetune/roleplay_ja.jsonl",
    "ft_adapter_name": "Adapter name (optional)",
    "ft_lora": "LoRA",
    "ft_rank": "Rank r",
    "ft_alpha": "Alpha",
    "ft_dropout": "Dropout",
    "ft_targets": "Target modules (comma-separated; empty: the default for the architecture)",
    "ft_qlora": "QLoRA: 4-bit base (CUDA GPU only)",
    "ft_checkpointing": "Gradient checkpointing (GPU)",
    "ft_training": "Training",
    "ft_lr": "Learning rate",
    "ft_schedule": "Schedule",
    "ft_warmup": "Warm-up (fraction of steps, or steps)",
    "ft_epochs": "Epochs",
    "ft_max_steps": "Max steps (-1: by epochs)",
    "ft_batch": "Batch size",
    "ft_accum": "Gradient accumulation",
    "ft_seed": "Seed",
    "ft_eval_fraction": "Held-out fraction (eval loss and stop check)",
    "ft_max_length": "Cut-off length (tokens)",
    "ft_overflow": "Longer conversations",
    "ft_preview": "Preview data",
    "ft_start": "Start training",
    "ft_cancel": "Cancel",
    "ft_resume": "Resume run",
    "ft_run_id": "Run",
    "ft_progress_idle": "No run yet.",
    "ft_progress": "Run {run}: {status} · step {step}/{total} · epoch {epoch} · ETA {eta}",
    "ft_loss_plot": "Loss",
    "ft_log": "Log",
    "ft_runs": "Runs",
    "ft_refresh": "Refresh",
    "ft_choose_base": "Choose a base model first.",
    "ft_cancel_sent": "Cancelling run {run}: a checkpoint is being saved.",
    "ft_not_running": "Run {run} is not running in this app.",
    "ft_done": "Adapter **{adapter}** is registered: it is ready in Chat, merging and evaluation.",
    "ft_stop_table": (
        "| | base | adapter |\n|---|---|---|\n"
        "| natural-stop rate | {base_stop:.0%} | {tuned_stop:.0%} |\n"
        "| end marker written as text | {base_text:.0%} | {tuned_text:.0%} |\n"
        "| sentences per reply | {base_sent} | {tuned_sent} |"
    ),
    "ft_refused": "⚠️ Training would be refused: {why}",
    "ft_merge_full": "Also merge into a full model",
    "ft_merged": "Full model **{name}** (base + adapter merged) is registered.",
    # -- Evaluate tab (rp_eval/ui/evaluate_tab.py) --
    "evaluate_tab": "Evaluate",
    "ev_intro": (
        "Run models over the Japanese role-play task (`prompts/eval/`): every reply is generated with the chat's own "
        "stopping and trimming, scored by the automatic metrics, and stored, so a second run with the same settings "
        "reuses it. The **combined** score is on 0–1, higher is better; it is also the evolutionary merge's fitness. "
        "Human Bradley–Terry and Likert columns appear once there are ratings."
    ),
    "ev_models": "Models",
    "ev_split": "Split (dev: for optimising; test: for reporting)",
    "ev_limit": "Items (a seeded subset; 0 = the whole split)",
    "ev_seed": "Seed",
    "ev_run": "Evaluate",
    "ev_refresh": "Refresh model list",
    "ev_settings": "Generation and scoring settings",
    "ev_max_new_tokens": "Max new tokens",
    "ev_temperature": "Temperature (0 = greedy)",
    "ev_batch": "Batch size",
    "ev_weights": "Weights of the combined score (YAML path or a saved name; empty = defaults)",
    "ev_judge": "LLM judge (optional, off when empty)",
    "ev_reference": "Reference model for the reply likelihood (optional)",
    "ev_idle": "Not started",
    "ev_choose_models": "Choose at least one model",
    "ev_error": "Stopped",
    "ev_finished": "Finished",
    "ev_done": "Scored **{replies}** replies (task version `{version}`).",
    "ev_failed": "{model} failed: {why}",
    "ev_table": "One row per model (metric means; human columns from the ratings)",
    "ev_metric_plot": "Metrics per model, each turned so that 1 is the good end (no leaks = 1)",
    "ev_finish_plot": "How replies ended",
    "ev_length_plot": "Reply length (characters)",
    "ev_drill": "Replies and their scores",
    "ev_drill_model": "Only this model",
    "ev_detail": "**{model}** · `{item}` · {reason} · combined {combined:.3f}\n\n> {reply}\n\n{scores}",
    "ev_export": "Export CSV and report",
    "ev_csv": "CSV (every reply)",
    "ev_report": "Report (HTML)",
    "ev_nothing": "Run an evaluation first.",
    "ev_exported": "Written to {folder}.",
    "ev_calibration": "Calibrate against the human ratings",
    "ev_calibration_intro": (
        "Rank correlation (Spearman, Kendall, 95% bootstrap intervals) of each metric and of the combined score with "
        "the Likert scores people gave (per reply), and with the Bradley–Terry scores (per model, once three models "
        "are rated); then weights fitted to the ratings (non-negative ridge) are saved for the fitness."
    ),
    "ev_ridge": "Ridge strength",
    "ev_calibrate": "Calibrate and save weights",
    "ev_calibrated": (
        "**{n}** rated replies. Spearman of the combined score with people: **{before}** with the current weights, "
        "**{after}** with the fitted ones ({cv} cross-validated). Saved as `{path}` (use the name `calibrated`)."
    ),
    "ev_corr_reply": "Per reply: metric vs human score",
    "ev_corr_model": "Per model: metric vs Bradley–Terry score",
    # -- Rate tab and Leaderboard tab (ratings) --
    "rate_tab": "Rate",
    "rate_intro": (
        "Judge role-play replies. **Blind A/B**: two models answer the same persona and opening with the same "
        "settings; their names are shown only after your vote. **Scores**: rate one reply from 1 (bad) to 5 "
        "(good) on each axis. Every rating is signed with your name and saved before the page says so."
    ),
    "rate_rater": "Your name (signs your ratings; the logged-in user is used when the app has log-in)",
    "rate_rater_placeholder": "e.g. tanaka",
    "rate_pair_tab": "Blind A/B",
    "rate_single_tab": "Scores (1-5)",
    "rate_persona": "Persona",
    "rate_random_persona": "Random persona",
    "rate_opening": "Opening message (optional)",
    "rate_opening_placeholder": "Leave empty for a ready-made first line",
    "rate_settings": "Generation settings (the same for both sides)",
    "rate_settings_single": "Generation settings (for a live reply)",
    "rate_max_new_tokens": "Max new tokens",
    "rate_temperature": "Temperature (0 = greedy)",
    "rate_new_pair": "New blind pair",
    "rate_continue": "Continue the conversation (both models answer)",
    "rate_continue_placeholder": "Type your next line, then Send; vote whenever you are ready",
    "rate_send": "Send to both",
    "rate_vote_a": "A is better",
    "rate_vote_b": "B is better",
    "rate_vote_tie": "Tie",
    "rate_vote_bad": "Both bad",
    "rate_pair_ready": "Pair ready (persona: {persona}). Read both replies, continue if you like, then vote.",
    "rate_pair_continued": "Both answered ({turns} turns so far).",
    "rate_no_pair": "Start a new blind pair first.",
    "rate_vote_saved": (
        "Vote saved (#{id}). **A** was **{a}** (ended by: {fa}); **B** was **{b}** (ended by: {fb}). "
        "Start a new pair for the next vote."
    ),
    "rate_source": "Reply from",
    "rate_source_live": "a live model (chosen at random, hidden)",
    "rate_source_repeat": "a reply another rater scored (for agreement)",
    "rate_source_chat": "a stored reply from the Chat tab",
    "rate_single_chat": "This reply comes from a stored chat; the conversation before it is shown.",
    "rate_single_no_chat": "No stored chat reply is left for you to score, so here is a new one.",
    "rate_source_eval": "a reply from an evaluation run",
    "rate_single_eval": "This reply comes from an evaluation run; the task item it answered is shown.",
    "rate_single_no_eval": "No evaluation reply is left for you to score, so here is a new one.",
    "rate_new_single": "New reply to score",
    "rate_reply": "Reply to score",
    "rate_single_ready": "Reply ready (persona: {persona}). Score every axis, then save.",
    "rate_single_repeat": "This reply was scored by another rater; your scores measure agreement.",
    "rate_single_no_repeat": "No reply is waiting for a second rater, so here is a new one.",
    "rate_no_single": "Get a reply to score first.",
    "rate_axis_naturalness": "Natural Japanese: does it read as a native speaker would write it?",
    "rate_axis_consistency": "In character: voice, first person and manner of the persona kept?",
    "rate_axis_length_fit": "Turn length: right for one turn of conversation (not cut off, not rambling)?",
    "rate_axis_overall": "Overall: how good is this reply as role-play?",
    "rate_comment": "Comment (optional)",
    "rate_save_scores": "Save scores",
    "rate_scores_saved": "Scores saved (#{id}). The reply came from **{model}**.",
    "leaderboard_tab": "Leaderboard",
    "lb_intro": (
        "Human ratings as numbers. Pairwise votes give Bradley-Terry scores on the Elo scale (ties and "
        "both-bad count as half a win each) with 95% bootstrap intervals; models share a rank unless their "
        "intervals are apart. Likert means come with 95% t-intervals; agreement is Krippendorff's alpha on "
        "items judged by two raters or more."
    ),
    "lb_persona": "Persona (empty: all)",
    "lb_rater": "Only this rater (empty: all)",
    "lb_exclude": "Leave these raters out",
    "lb_since": "From (date, inclusive)",
    "lb_until": "Before (date)",
    "lb_rounds": "Bootstrap rounds",
    "lb_refresh": "Refresh",
    "lb_auto": "Refresh on new ratings (checks every 15 s)",
    "lb_not_yet": "Press Refresh to compute the leaderboard.",
    "lb_summary": "{votes} votes and {scores} scored replies · {rounds} bootstrap rounds · computed in {seconds} s",
    "lb_bad_date": "'{text}' is not a date: write it as 2026-05-01 or 2026-05-01T13:00",
    "lb_arena": "Blind A/B: Bradley-Terry scores",
    "lb_scores_plot": "Scores with 95% intervals",
    "lb_win_rates": "Win rate of each model (row) against each other (column)",
    "lb_likert": "Likert means per axis",
    "lb_agreement": "Agreement between raters (Krippendorff's alpha)",
    "lb_export": "Export",
    "lb_export_raw": "raw votes and scores",
    "lb_export_aggregates": "aggregates (tables above)",
    "lb_format": "Format",
    "lb_export_button": "Export",
    "lb_files": "Files",
    "lb_exported": "Wrote {n} files to {folder}.",
    # Merge tab
    "merge_tab": "Merge",
    "mg_intro": (
        "Merge registered models with mergekit. Check first which pairs can merge (from their configs only, no "
        "weights are read), build a recipe in the form or in the YAML box (each edits the other), then run it: "
        "the result is registered as a merged model, ready to chat with."
    ),
    "mg_compat_heading": "Which models can merge",
    "mg_models": "Models",
    "mg_check": "Check",
    "mg_pick_two": "Choose at least two models.",
    "mg_checked": "Checked {n} models from their configs and tokenizers.",
    "mg_builder_heading": "Recipe",
    "mg_recipe_file": "Recipe file (merges/)",
    "mg_load": "Load",
    "mg_save": "Save",
    "mg_duplicate": "Save as new",
    "mg_method": "Method",
    "mg_base": "Base model",
    "mg_inputs": "Models and their parameters",
    "mg_params": "Merge parameters",
    "mg_cells_help": (
        "A cell takes a number (`0.5`), a gradient over the layers (`[0, 0.5, 1]`) or filtered values "
        "(`[{filter: mlp, value: 0.5}, {value: 0}]`). `slice` and `layer_range` (`[0, 16]`) turn the recipe into "
        "slices; `other` holds further per-model parameters (`{gamma: 0.01}`). normalize, int8_mask, t, lambda go "
        "in the merge parameters."
    ),
    "mg_dtype": "dtype",
    "mg_tokenizer_source": "Tokenizer source",
    "mg_chat_template": "Chat template",
    "mg_yaml": "mergekit YAML",
    "mg_valid": "The recipe is valid and the models fit the method.",
    "mg_loaded": "Loaded **{name}**.",
    "mg_saved": "Saved to `{path}`.",
    "mg_run_heading": "Run",
    "mg_out_name": "Name of the merged model",
    "mg_run": "Merge",
    "mg_cancel": "Cancel",
    "mg_cancelled": "Cancelled: nothing was registered.",
    "mg_done": "Registered **{name}** (merged in {seconds} s, in `{folder}`): it is ready in the Chat tab.",
    # -- Evolve tab (evolve_tab) --
    "evolve_tab": "Evolve",
    "evo_intro": (
        "Search merge parameters with CMA-ES, scored by the role-play fitness on the task's dev split. "
        "Every candidate is stored as it finishes; a stopped or killed run resumes from its last generation."
    ),
    "evo_models": "Models to merge",
    "evo_base": "Base model",
    "evo_method": "Method",
    "evo_granularity": "Layers per group (0: one group)",
    "evo_split": "Separate attention / MLP parameters",
    "evo_run": "Run name",
    "evo_population": "Population",
    "evo_budget": "Budget (candidates)",
    "evo_sigma": "sigma0",
    "evo_seed": "Seed",
    "evo_dev_limit": "Dev items per candidate",
    "evo_tokens": "New tokens per reply",
    "evo_start": "Start",
    "evo_stop": "Stop",
    "evo_resume": "Resume",
    "evo_refresh": "Refresh",
    "evo_plot": "Best and mean fitness per generation",
    "evo_candidates": "Candidates",
    "evo_export_name": "Name of the exported model",
    "evo_export": "Export best",
    "evo_stopping": "Stopping after the current candidate…",
    "evo_exported": "Wrote `merges/{name}.yaml` and registered **{name}**: it is ready in the Chat and Rate tabs.",
    # -- Language switch (rp_eval/ui/locale.py) --
    "language": "Language",
    # -- Choices shown as words in other tabs --
    "ev_split_all": "all",
    "ft_checkpointing_auto": "auto (on when memory is short)",
    "ft_checkpointing_on": "on",
    "ft_checkpointing_off": "off",
    "ft_overflow_truncate": "cut to the cut-off length",
    "ft_overflow_drop": "leave out",
    # -- Column headers of tables and axis titles of plots: "col_" + the column's name (spaces as _), see
    # `headers()`; a column without a key keeps its name (metric names, model names are data) --
    "col_name": "name",
    "col_kind": "kind",
    "col_parents": "parents",
    "col_architecture": "architecture",
    "col_parameters": "parameters",
    "col_size": "size",
    "col_prompt_format": "prompt format",
    "col_where": "where",
    "col_model": "model",
    "col_rank": "rank",
    "col_score": "score",
    "col_lower": "lower",
    "col_upper": "upper",
    "col_votes": "votes",
    "col_wins": "wins",
    "col_losses": "losses",
    "col_ties": "ties",
    "col_win_rate": "win rate",
    "col_axis": "axis",
    "col_mean": "mean",
    "col_n": "n",
    "col_what": "what",
    "col_alpha": "alpha",
    "col_items": "items",
    "col_raters": "raters",
    "col_judgements": "judgements",
    "col_run": "run",
    "col_status": "status",
    "col_base": "base",
    "col_adapter": "adapter",
    "col_train_loss": "train loss",
    "col_stops_(base_→_adapter)": "stops (base → adapter)",
    "col_step": "step",
    "col_loss": "loss",
    "col_series": "series",
    "col_generation": "generation",
    "col_index": "index",
    "col_fitness": "fitness",
    "col_error": "error",
    "col_item": "item",
    "col_persona": "persona",
    "col_reply": "reply",
    "col_finish_reason": "finish reason",
    "col_combined": "combined",
    "col_chars": "characters",
    "col_value": "value",
    "col_share": "share",
    "col_bar": "metric · model",
    "col_replies": "replies",
    "col_metric": "metric",
    "col_weight": "weight",
    "col_layer_range": "layer range",
    "col_other": "other",
    "col_sentences": "sentences",
    "col_overlong": "overlong",
    "col_user_line": "user_line",
    # -- Evaluate tab: past runs, heat map, number checks (rp_eval/ui/evaluate_tab.py, rp_eval/ui/numbers.py) --
    "ev_past": "Past evaluations (kept in the workspace)",
    "ev_runs": "Stored runs, newest first (one per model and settings)",
    "ev_pick": "Runs to show (the newest finished run of each model is chosen when the page opens)",
    "ev_open": "Show these runs",
    "ev_pick_runs": "Choose one or more stored runs to show.",
    "ev_no_runs": "No evaluation is stored yet: choose models above and press **Evaluate**.",
    "ev_run_label": "#{run} · {model} · {status} · {replies} replies · {when} · temperature {temperature} · seed {seed}",
    "ev_reopened": "Showing **{runs}** stored runs: {replies} replies, scored with the current weights (task version `{version}`).",
    "ev_not_started": "Not started",
    "ev_group": "Metrics shown",
    "ev_group_all": "All",
    "ev_group_ending": "How replies end",
    "ev_group_length": "Length",
    "ev_group_leakage": "Leaks",
    "ev_group_japanese": "Japanese",
    "ev_group_character": "Character",
    "ev_heatmap_scale": "1 = the good end (no leaks = 1)",
    "ev_detail_turns": "**The conversation the reply answers**",
    "num_missing": "**{field}** is empty: type a number.",
    "num_not_number": "**{field}**: `{value}` is not a number.",
    "num_not_whole": "**{field}** must be a whole number (got {value}).",
    "num_too_small": "**{field}** must be at least {low} (got {value}).",
    "num_too_large": "**{field}** must be at most {high} (got {value}).",
    # -- Fine-tune tab: the run's plan and its stop check (rp_eval/ui/finetune_tab.py) --
    "ft_plan": (
        "**This run: {steps} optimizer steps** ({per_epoch} per epoch) on {train} of {conversations} conversations; "
        "{held} held out for the eval loss; warm-up {warmup} steps. Afterwards the adapter and its base answer "
        "{checks} prompts of the evaluation task, to compare how often each ends its reply by itself."
    ),
    "ft_eval_fraction_loss": "Held-out fraction (eval loss)",
    "ft_stop_caption": "Before and after, on {prompts} prompts of the evaluation task:",
    # -- Evolve tab: stop, plot, export folder (rp_eval/ui/evolve_tab.py) --
    "evo_no_run": "There is no evolve run named '{run}'.",
    "evo_not_running": "Run '{run}' is not running (status: {status}; best fitness {best}): there is nothing to stop.",
    "evo_running_elsewhere": "Run '{run}' is running in another process (the command line or another server): stop it there.",
    "evo_series_best": "best so far",
    "evo_series_mean": "mean of the generation",
    "evo_axis_generation": "generation",
    "evo_axis_fitness": "fitness",
    "evo_line_loading": "Loading the source models…",
    "evo_line_progress": "Generation {generation}: {evaluated} of {budget} candidates evaluated; best fitness {best}",
    "evo_line_stopped": "Stopped after {evaluated} of {budget} candidates (best fitness {best}); Resume continues it.",
    "evo_line_test": "Scoring the best candidates on the test split (best dev fitness {best})…",
    "evo_line_done": "Done: {evaluated} candidates evaluated; best fitness {best}.",
    "evo_export_folder": "Folder for the recipe (empty: the workspace's merges/; a relative folder is inside the workspace)",
    "evo_exported_to": "Wrote `{path}` and registered **{name}**: it is ready in the Chat and Rate tabs.",
    # -- Models, Merge, Rate and Leaderboard tabs: smaller fixes --
    "format_when_loaded": "auto (decided when first loaded)",
    "rate_missing_scores": "Give a score from 1 to 5 for: {axes}.",
    "demo_banner_built": (
        "**Offline demo models.** `demo-llama-a`, `demo-llama-b` and `demo-mistral` are tiny models (about a million "
        "parameters) trained on this machine at the app's first start, {steps} optimizer steps in {seconds} seconds, "
        "on a small Japanese role-play corpus, so the whole app can be tried with no network and no GPU. Their "
        "Japanese is rough because they are so small; register real models below (a Hugging Face id or a folder) for "
        "real work."
    ),
    "demo_banner_plain": (
        "**Offline demo models.** `demo-llama-a`, `demo-llama-b` and `demo-mistral` are tiny models (about a million "
        "parameters) trained briefly on a small Japanese role-play corpus, so the whole app can be tried with no "
        "network and no GPU. Their Japanese is rough because they are so small; register real models below (a Hugging "
        "Face id or a folder) for real work."
    ),
    "busy_per_login": (
        "You have {count} replies being written or waiting already (at most {limit} at once for one login); "
        "wait for one to finish, then try again."
    ),
    # issue 32: the Evolve tab on the researcher's own task
    "evo_task_file": "Task file (JSONL in the prompts/eval format; empty: the path below)",
    "evo_task_path": "or a task file or folder (relative: inside the workspace; empty: the project's task)",
    "evo_weights": "Fitness weights (empty: the defaults; a workspace name such as calibrated, or a YAML path)",
    "evo_judge": "Judge model (empty: none)",
    "evo_fitness_what": "**Fitness** (task `{task}`, weights `{weights}`, judge {judge}).",
    "evo_task_default": "prompts/eval/items",
    "evo_judge_none": "none",
    "col_test_fitness": "test fitness",
    "col_capped": "capped",
    "col_build_s": "build s",
    "col_eval_s": "eval s",
    "col_flag": "flag",
    "col_dev_fitness": "dev fitness",
    # issue 31: waits for a place in the engine
    "chat_waited": "waited {seconds} s for a place (the model was serving others)",
    # issue 32: the banner of a shipped demo build
    "demo_banner_shipped": (
        "**Offline demo models.** `demo-llama-a`, `demo-llama-b` and `demo-mistral` are tiny models (about a million "
        "parameters) that this project's own code trained on a small Japanese role-play corpus ({steps} optimizer "
        "steps, {seconds} seconds on {threads} CPU threads); the repository ships that build, so the first start only "
        "copies it. The whole app can be tried with no network and no GPU. Their Japanese is rough because they are "
        "so small; register real models below (a Hugging Face id or a folder) for real work."
    ),
    # issue 32: cards fit the context
    "chat_fit_note": "To fit {model}'s context ({room} tokens for the prompt: {context} less {new} for the reply), left out: {what}",
    "chat_fit_examples": "the example dialogues",
    "chat_fit_lore": "lorebook entries {names}",
    "chat_fit_turns": "the oldest {n} messages",
    "chat_fit_name": "'{name}'",
    "chat_fit_name_sep": ", ",
    "chat_lore_over_budget": "Called up by the recent turns but past the lorebook's token budget ({budget} tokens), so not in the prompt: {names}",
    "chat_lore_dropped": "Called up but left out to fit the model's context: {names}",
    "chat_examples_dropped": "The example dialogues are left out of this prompt to fit the model's context.",
    "chat_side_by_side_new": "Side by side changed: a new conversation starts here; the earlier one is kept under Saved conversations.",
    # issue 32e: the Models table's kinds
    "kind_base": "base",
    "kind_adapter": "adapter",
    "kind_merged": "merged",
    "kind_demo": "demo",
    "arch_lora_adapter": "LoRA adapter",
    "col_task_version": "task version",
    "col_max_new_tokens": "max new tokens",
    "col_human_bt": "human (Bradley-Terry)",
    "col_human_votes": "human votes",
    "col_likert_naturalness": "Likert: natural Japanese",
    "col_likert_consistency": "Likert: in character",
    "col_likert_length_fit": "Likert: turn length",
    "col_likert_overall": "Likert: overall",
    # issue 30b: chat choices as preferences, the combined ranking, prediction-powered columns
    "pref_heading": "My chat preferences",
    "pref_on": (
        "Your choices in this tab count as preferences: the reply you keep after ‹ › and go on with, your edits of a "
        "reply, Stop then Regenerate, and “A is better” / “B is better” side by side. See or delete yours under "
        "*My chat preferences*."
    ),
    "pref_off": "Chat choices are not stored as preferences here (the chat_preferences setting is off).",
    "pref_count": "{n} preferences of yours (newest first).",
    "pref_none": "No chat preferences of yours are stored.",
    "pref_pick_label": "Preferences to delete",
    "pref_pick": "pick the preferences to delete first",
    "pref_refresh": "Show my preferences",
    "pref_delete": "Delete",
    "pref_deleted": "Deleted {n} preferences.",
    "pref_not_deleted": "{n} of the picked preferences were not deleted: they are gone already or not yours",
    "pref_better_a": "A is better",
    "pref_better_b": "B is better",
    "pref_side_stored": "Stored: side {side}'s last reply is the better one.",
    "pref_kind_kept": "kept",
    "pref_kind_edit": "edited",
    "pref_kind_stopped": "stopped, regenerated",
    "pref_kind_side": "side picked",
    "col_id": "id",
    "col_when": "when",
    "col_conversation": "conversation",
    "col_chosen_model": "chosen model",
    "col_rejected_model": "other model",
    "col_chosen_text": "chosen reply",
    "col_rejected_text": "other reply",
    "lb_combined": "Combined ranking: blind votes, chat preferences and the judge",
    "lb_weights": "Weight of each source",
    "lb_weights_equal": "1 each",
    "lb_weights_fit": "fitted on held-out blind votes",
    "lb_sources": "Sources",
    "lb_sources_all": "all together",
    "lb_source_blind": "blind votes",
    "lb_source_chat": "chat preferences",
    "lb_source_judge": "judge",
    "lb_combined_plot": "Combined strengths with 95% intervals",
    "lb_combined_summary": "From {votes} votes · {rounds} bootstrap rounds over raters · {sources}",
    "lb_combined_source": "{source}: {votes} votes from {raters} raters (weight {weight}, scale {scale})",
    "lb_combined_length": "Preference for longer replies per source (length covariate, log-odds): {values}",
    "lb_combined_few": "Only {n} votes: the intervals are wide; more blind votes or chat choices will narrow them.",
    "lb_combined_none": (
        "No combined ranking yet: {error}. Blind votes (Rate tab), chat preferences between two models (side by side, "
        "“A is better” / “B is better”, or a reply kept after switching models) and judge grades of an evaluation "
        "fill it."
    ),
    "col_votes_blind": "blind votes",
    "col_votes_chat": "chat votes",
    "col_votes_judge": "judge votes",
    "col_ppi": "human score, prediction-powered (1-5)",
    "col_ppi_lower": "PPI lower",
    "col_ppi_upper": "PPI upper",
    "col_human_mean": "human mean (1-5)",
    "col_human_lower": "human lower",
    "col_human_upper": "human upper",
    "col_human_ratings": "human ratings",
    "evo_prefit": "Fit the weights to this lab's preferences",
    "evo_prefit_line": (
        "**{name}**: fitted on {blind} blind votes and {chat} chat preferences; agreement with held-out blind votes "
        "{agreement} (default weights {default})."
    ),
    "evo_prefit_saved": "Saved the weights **{name}** and chose them as the fitness weights.",
    # issue 28c: role-play samplers in the Chat tab
    "chat_typical_p": "Typical-p (1 = off)",
    "chat_field_typical_p": "Typical-p",
    "chat_dry_multiplier": "DRY multiplier (0 = off)",
    "chat_field_dry_multiplier": "DRY multiplier",
    "chat_dry_base": "DRY base",
    "chat_field_dry_base": "DRY base",
    "chat_dry_allowed_length": "DRY allowed length",
    "chat_field_dry_allowed_length": "DRY allowed length",
    "chat_xtc_threshold": "XTC threshold",
    "chat_field_xtc_threshold": "XTC threshold",
    "chat_xtc_probability": "XTC probability (0 = off)",
    "chat_field_xtc_probability": "XTC probability",
    "preset_dry_min_p": "DRY + min-p (less repetition)",
    "preset_dry_xtc": "DRY + XTC (more varied)",
    # issue 32d: demo models that show the seed's findings
    "demo_banner_findings": (
        "Two more show what the app exists to fix. `demo-llama-eos` was trained with its end marker written as text "
        "(the seed's japanese-stablelm-instruct-beta-7b): it prints `</s>` and keeps going; the chat cuts its reply "
        "there (tick *Show raw text* to see the marker). Fine-tune it (Fine-tune tab) and it learns to stop. "
        "`demo-mistral-long` runs past 64 tokens (as the seed's gamma models did): the chat trims a reply cut by the "
        "cap to its last whole sentence and says so."
    ),
    "ft_lr_suggested": (
        "{model} is a tiny demo model: the learning rate is set to {lr} for it (the default {default} is sized for "
        "7B models and barely moves a model this small in 40 steps)."
    ),
    # issue 29c: card owners, card and upload limits
    "chat_imported_own_id": "Its own id `{wanted}` is a shipped persona or another person's card, which an import does not replace, so it is kept under this id.",
}

STRINGS.update(MESSAGES)  # the library's error messages (rp_eval/errors.py), keyed "err_..."
for _name, _label in METRIC_LABELS_JA.items():  # metric and category names: identifiers in English, words in Japanese
    STRINGS.setdefault(f"col_{_name}", _name)
    JA.setdefault(f"col_{_name}", _label)

# Japanese, key for key, is `JA` in locale_ja.py (tests/test_locale.py checks both tables have the same keys and
# placeholders): a string added here needs its Japanese there.

LANGUAGES: dict[str, dict[str, str]] = {"en": STRINGS, "ja": JA}
COOKIE = "rp_lang"  # set by the language switch; the server reads it for messages, the page on load
_BUILT: dict[str, dict[str, str]] = {}  # keys made at build time for strings with values (see _marker)
_USED: set[str] = set()  # the keys of the page being built: only these go to its browser (see i18n)
_FORCED: ContextVar[str | None] = ContextVar("rp_eval_language", default=None)  # set by `in_language`


def text(key: str, language: str) -> str:
    """`key` in `language`, English where a translation is missing."""
    return LANGUAGES.get(language, STRINGS).get(key) or STRINGS[key]


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The switch's choice if there is one, else Japanese for a browser whose first language is Japanese."""
    if cookie in LANGUAGES:
        return cookie
    first = (accept_language or "").split(",")[0].strip().lower()
    return "ja" if first.startswith("ja") else "en"


def language() -> str | None:
    """The language of the event being handled; None while a page is being built (the browser translates then)."""
    if _FORCED.get() is not None:
        return _FORCED.get()
    request = LocalContext.request.get(None)
    if request is not None:
        cookies = getattr(request, "cookies", None) or {}
        return choose(cookies.get(COOKIE), request.headers.get("accept-language"))
    return None if Context.root_block is not None else "en"


def t(key: str, **values: object) -> str:
    """A string the UI shows: formatted in the request's language inside an event handler; while a page is being
    built, a Gradio I18n key that the browser shows in the page's language; elsewhere (tests, scripts) English.
    A value that is a keyed library error or a `Said` message is put in the same language."""
    lang = language()
    if lang is None:
        return _marker(key, values)
    values = {k: error_text(v) if isinstance(v, RpEvalError | Said) else v for k, v in values.items()}
    return text(key, lang).format(**values) if values else text(key, lang)


def error_text(err: BaseException | str) -> str:
    """An error or a library message as the person reads it: a keyed `RpEvalError` or a `Said` in the request's
    language, anything else as it is."""
    if isinstance(err, RpEvalError | Said) and err.key:
        table = LANGUAGES.get(language() or "en", STRINGS)
        return format_message(err.key, err.values, table, render=error_text)
    return str(err)


def warn(err: BaseException | str) -> str:
    """The status line for an error: ⚠️ and the message."""
    return f"⚠️ {err if isinstance(err, str) else error_text(err)}"


def header(name: str) -> str:
    """A column's name as a person reads it (the name itself when the table has no key for it)."""
    key = "col_" + str(name).replace(" ", "_")
    return t(key) if key in STRINGS else str(name)


def word(prefix: str, value: object) -> str:
    """A code the library stores (a finish reason, a run status) as a word of the page: `t(prefix + value)`, or the
    value itself when the table has no such key."""
    return t(f"{prefix}{value}") if f"{prefix}{value}" in STRINGS else str(value)


def words(frame, column: str, prefix: str):
    """A DataFrame with the codes of `column` as words of the page (see `word`)."""
    if column not in frame or frame.empty:
        return frame
    return frame.assign(**{column: frame[column].map(lambda v: word(prefix, v))})


def axes(x: str, y: str, color: str | None = None) -> dict[str, str]:
    """Axis and legend titles of a Gradio plot over columns x, y (and color), in the page's language."""
    titles = {"x_title": header(x), "y_title": header(y)}
    return {**titles, "color_title": header(color)} if color else titles


def headers(frame):
    """A pandas DataFrame with its column headers in the request's language (for `gr.Dataframe` values)."""
    return frame.rename(columns={c: header(c) for c in frame.columns})


def _now(key: str, values: dict[str, object]) -> str:
    return t(key, **values)


def _marker(key: str, values: dict[str, object]) -> str:
    # Gradio's I18nData as text ("__i18n__{...}"): the front end translates it wherever it sits in a label,
    # Markdown or HTML value. A string with values becomes a key of its own, formatted once per language.
    if values:
        return _per_language(key, _now, key, values)
    _USED.add(key)
    return str(I18nData(key))


def _per_language(name: str, fn, *args) -> str:
    formatted = {lang: in_language(lang, fn, *args) for lang in LANGUAGES}  # library words too
    key = f"{name}__" + hashlib.sha1(json.dumps(formatted, sort_keys=True).encode()).hexdigest()[:10]
    _BUILT[key] = formatted
    _USED.add(key)
    return str(I18nData(key))


def composed(name: str, fn, *args) -> str:
    """`fn(*args)`, a text made of several strings (`t` calls joined or nested), in the page's language: inside
    an event at once; while a page is built, one key of its own formatted once per language (a marker inside
    another string would show as its JSON)."""
    if language() is not None:
        return fn(*args)
    return _per_language(name, fn, *args)


def begin_page() -> None:
    """Called first when a page is built: its translation table will hold its own keys only."""
    _USED.clear()


def i18n(keys: set[str] | None = None) -> gr.I18n:
    """`keys` (default: every string) in both languages, for `Blocks.i18n_instance`. A page gets only the keys it
    shows: the whole table would put text of other pages into it (the blind rating page must name no model)."""
    keys = set(STRINGS) | set(_BUILT) if keys is None else keys
    return gr.I18n(**{lang: {k: _built_text(k, lang) for k in sorted(keys)} for lang in LANGUAGES})


def both(key: str) -> str:
    """Japanese then English, for text shown before a page has a language (the login page's message)."""
    return f"{JA[key]}<br>{STRINGS[key]}"


def language_switch(app: gr.Blocks) -> gr.Radio:
    """日本語 / English in the header: changes the page at once and is remembered (cookie, `?lang=` in the URL)."""
    switch = gr.Radio(
        [("日本語", "ja"), ("English", "en")],
        label=t("language"),
        show_label=False,
        container=False,
        elem_id="language-switch",
        scale=0,
        min_width=200,
    )
    app.load(None, None, switch, js=_JS_LOAD)
    switch.input(None, switch, None, js=_JS_SWITCH)
    return switch


def localize(app: gr.Blocks, switch: gr.Radio) -> None:
    """The last step of building a page (inside its `with gr.Blocks()`), for what the front end does not translate
    when the language changes after the page is drawn: tab names (relabelled from here) and plot titles (which
    become labels)."""
    for block in app.blocks.values():
        title = getattr(block, "title", None)
        if isinstance(title, str) and "__i18n__" in title and hasattr(block, "label") and not block.label:
            block.label, block.title, block.show_label = title, None, True
    tabs = [b for b in app.blocks.values() if isinstance(b, gr.Tab) and "__i18n__" in str(b.label)]
    tab_keys = [json.loads(str(tab.label).removeprefix("__i18n__"))["key"] for tab in tabs]
    # axis and legend titles of plots: the front end would show their keys in tooltips, so they are set as text,
    # in English first, then in the page's language whenever the switch gets its value (on load, and on a change)
    titled = {}
    for block in app.blocks.values():
        keys = {a: _key_of(getattr(block, a, None)) for a in _PLOT_TITLES}
        keys = {a: k for a, k in keys.items() if k}
        if keys:
            titled[block] = keys
            for attr, key in keys.items():
                setattr(block, attr, _built_text(key, "en"))
    if titled:
        switch.change(
            lambda lang: [gr.update(**{a: _built_text(k, lang) for a, k in keys.items()}) for keys in titled.values()],
            switch,
            list(titled),
            show_progress="hidden",
            queue=False,
            api_visibility="private",
        )
    for block in list(app.blocks.values()):  # tables filled when the page loads: filled again in the new language
        load = getattr(block, "load_event_to_attach", None)
        if isinstance(block, gr.Dataframe) and load is not None:
            switch.change(
                lambda lang, fill=load[0]: in_language(lang, fill),
                switch,
                block,
                show_progress="hidden",
                api_visibility="private",
            )
    if tabs:
        switch.change(
            lambda lang, tab_keys=tab_keys: [gr.update(label=_built_text(k, lang)) for k in tab_keys],
            switch,
            tabs,
            show_progress="hidden",
            queue=False,  # a label change must not wait behind a long generation
            api_visibility="private",
        )
    app.i18n_instance = i18n(set(_USED))  # what `launch(i18n=...)` or `mount_gradio_app(i18n=...)` would set


_PLOT_TITLES = ("x_title", "y_title", "color_title")


def _key_of(marker: object) -> str | None:
    if not isinstance(marker, str) or not marker.startswith("__i18n__"):
        return None
    return json.loads(marker.removeprefix("__i18n__"))["key"]


def in_language(lang: str, fn, *args):
    """`fn(*args)` with its strings in `lang` (the switch's new value, before the browser's cookie says so)."""
    token = _FORCED.set(lang if lang in LANGUAGES else "en")
    try:
        return fn(*args)
    finally:
        _FORCED.reset(token)


def _built_text(key: str, language: str) -> str:
    return _BUILT[key][language] if key in _BUILT else text(key, language)


# The page's language is svelte-i18n's locale inside Gradio's front end; its `changeLocale` (what Gradio's own
# Settings panel calls) is exported by the front end's core module, loaded from the same URL so it is the same
# instance. Gradio has no URL parameter or saved setting for the language, so the switch keeps it in a cookie.
_CORE = next(iter(sorted(Path(gr.__file__).parent.glob("templates/frontend/assets/core-*.js"))), None)
# Gradio's chatbot writes some screen-reader labels and tooltips in English in any language (GRADIO_LABELS_JA):
# on the Japanese page an observer puts the Japanese ones in their place as Gradio writes them (each English
# original kept beside it, so switching back to English restores it).
_JS_RELABEL = """
window.rpLang = lang;
if (!window.rpRelabel) {
  const table = TABLE;
  const attrs = ["aria-label", "title"];
  const fix = (el) => {
    for (const attr of attrs) {
      const value = el.getAttribute(attr), saved = el.getAttribute("data-rp-en-" + attr);
      if (value === null) continue;
      if (window.rpLang !== "ja") {
        if (saved !== null) { el.setAttribute(attr, saved); el.removeAttribute("data-rp-en-" + attr); }
        continue;
      }
      const key = Object.keys(table).find((k) => k.endsWith(": ") ? value.startsWith(k) : value === k);
      if (key === undefined) continue;
      el.setAttribute("data-rp-en-" + attr, value);
      el.setAttribute(attr, table[key] + (key.endsWith(": ") ? value.slice(key.length) : ""));
    }
  };
  window.rpRelabel = () => document.querySelectorAll("[aria-label], [title]").forEach(fix);
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes") fix(change.target);
      for (const node of change.addedNodes || []) {
        if (node.nodeType !== 1) continue;
        fix(node);
        node.querySelectorAll("[aria-label], [title]").forEach(fix);
      }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: attrs});
}
window.rpRelabel();""".replace("TABLE", json.dumps(GRADIO_LABELS_JA, ensure_ascii=False))
_JS_APPLY = f"""
const apply = (lang) => {{
  const index = document.querySelector('script[type=module][src*="assets/index-"]');
  if (index) import(new URL("./{_CORE.name if _CORE else "core.js"}", index.src).href).then((m) => m.changeLocale(lang));
  {_JS_RELABEL}
}};"""
_JS_LOAD = f"""() => {{{_JS_APPLY}
  const asked = new URL(location.href).searchParams.get("lang");
  const saved = (document.cookie.match(/(?:^|; ){COOKIE}=(ja|en)/) || [])[1];
  const lang = ["ja", "en"].includes(asked) ? asked : saved || (navigator.language.startsWith("ja") ? "ja" : "en");
  if (asked === lang) document.cookie = "{COOKIE}=" + lang + "; path=/; max-age=31536000; samesite=lax";
  apply(lang);
  return lang;
}}"""
_JS_SWITCH = f"""(lang) => {{{_JS_APPLY}
  document.cookie = "{COOKIE}=" + lang + "; path=/; max-age=31536000; samesite=lax";
  const url = new URL(location.href);
  url.searchParams.set("lang", lang);
  history.replaceState(null, "", url);
  apply(lang);
}}"""
