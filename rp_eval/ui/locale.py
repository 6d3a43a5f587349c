"""Every string the UI shows, in English (`STRINGS`) and Japanese (`JA`), and how a page gets its language.

Labels made while a page is built become Gradio I18n keys, which the browser shows in its own language (Japanese
for a `ja` browser, English otherwise) or the one picked with the switch in the header. Messages made in event
handlers are formatted here, on the server, in the language of the request: the switch's cookie, else the
browser's Accept-Language. Tab modules only call `t(key, **values)`.
"""

import hashlib
import json
from pathlib import Path

import gradio as gr
from gradio.context import Context, LocalContext
from gradio.i18n import I18nData

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
}

# Japanese, key for key (tests/test_locale.py checks both tables have the same keys and placeholders).
JA: dict[str, str] = {
    "title": "rp_eval: ロールプレイ対話モデル",
    "demo_banner": (
        "**オフラインのデモモデルです。** `demo-llama-a`・`demo-llama-b`・`demo-mistral` は、小さな日本語ロールプレイ"
        "コーパスで 1 分だけ学習した約 100 万パラメータの極小モデルで、ネットワークも GPU もなしにアプリ全体を試せます。"
        "小さすぎて日本語はぎこちないので、実際の研究には下で本物のモデル（Hugging Face の ID かフォルダ）を登録してください。"
    ),
    "models_tab": "モデル",
    "models_intro": "このアプリでチャット・評価・ファインチューニング・マージに使えるモデルの一覧です。",
    "add_heading": "モデルを追加",
    "source": "Hugging Face の ID またはローカルフォルダ",
    "source_placeholder": "elyza/ELYZA-japanese-Llama-2-7b-instruct  または  /data/models/my-merge",
    "name": "登録名（省略可）",
    "prompt_format": "プロンプト形式",
    "trust_remote_code": "リモートコードを信頼する（モデル同梱の Python コードを実行します）",
    "add": "確認して追加",
    "remove_heading": "モデルを削除",
    "remove_choice": "モデル",
    "delete_files": "ファイルも削除する（rp_eval がワークスペース内に作ったモデルのみ）",
    "remove": "削除",
    "refresh": "更新",
    "added": "**{name}**（{architecture}）を登録しました。",
    "removed": "**{name}** を登録から外しました。",
    "removed_files": "**{name}** を登録から外し、ファイルも削除しました。",
    "choose_model": "削除するモデルを先に選んでください。",
    "startup_problems": "設定にあるモデルのうち、登録できなかったものがあります:",
    "login": "rp_eval: ログインするとチャットと評価ができます。",
    "login_admin": "rp_eval 管理画面: 管理者アカウントでログインしてください。",
    "demo_mode_off": (
        "**このデモでは使えません。** ファインチューニング・マージ・進化的マージには GPU マシンが必要で、大きなファイルも"
        "書き出します。このデモ（CPU の Space）ではチャットと評価だけを残しています。このタブを使うには、"
        "お手元の GPU サーバーで rp_eval を動かしてください。"
    ),
    # -- Chat tab --
    "chat_tab": "チャット",
    "chat_intro": (
        "登録済みのどのモデルともキャラクターになりきって会話できます。各応答の下に、終わり方（自分で**終了**、"
        "**停止文字列**に到達、上限で最後の文まで**切り詰め**、上限で**打ち切り**）、トークン数、トークン/秒を表示します。"
        "すべてのターンは評価用に保存されます。"
    ),
    "chat_model_a": "モデル",
    "chat_model_b": "2 つ目のモデル（並べて比較）",
    "chat_side_by_side": "並べて比較: 2 つのモデルが同じ入力に同じ設定で応答します",
    "chat_persona": "ペルソナ",
    "chat_user_name": "チャットでのあなたの名前（{{user}}）",
    "chat_persona_heading": "ペルソナ・システムプロンプト・キャラクターカード",
    "chat_system_prompt": "システムプロンプト（会話の前にモデルに渡す内容。編集できます）",
    "chat_import_card": "キャラクターカードを読み込む（SillyTavern V2 の .json / .png、{mb} MB まで）",
    "chat_export_json": "カードを書き出す（JSON）",
    "chat_export_png": "カードを書き出す（PNG）",
    "chat_card_file": "カードファイル",
    "chat_imported": "**{name}** をペルソナ `{id}` として読み込みました。",
    "chat_sampling": "サンプリング",
    "chat_temperature": "温度（0 = 貪欲法）",
    "chat_top_p": "Top-p",
    "chat_top_k": "Top-k（0 = 無効）",
    "chat_repetition_penalty": "繰り返しペナルティ",
    "chat_max_new_tokens": "最大生成トークン数",
    "chat_seed": "シード（-1 = ランダム）",
    "chat_message": "メッセージ",
    "chat_message_placeholder": "セリフを入力して Enter",
    "chat_send": "送信",
    "chat_stop": "停止",
    "chat_regenerate": "再生成",
    "chat_undo": "取り消し",
    "chat_clear": "新しい会話",
    "chat_show_raw": "生テキストを表示（切り詰め前の出力。特殊トークンも含む）",
    "chat_raw_prompt_heading": "生のプロンプト",
    "chat_raw_prompt": "生のプロンプトを表示",
    "chat_raw_prompt_box": "実際のプロンプト全文（特殊トークンも表示）",
    "chat_raw_prompt_none": "（まだ応答がありません。メッセージを送ると、渡されるプロンプトが表示されます）",
    "chat_history_heading": "保存した会話",
    "chat_conversation": "会話",
    "chat_reopen": "再開",
    "chat_export_jsonl": "JSONL で書き出す",
    "chat_refresh": "一覧を更新",
    "chat_jsonl_file": "会話ファイル",
    "chat_pick_conversation": "保存した会話を先に選んでください。",
    "chat_no_conversation": "まだ会話がありません。まずメッセージを送ってください。",
    "chat_generating": "生成中…",
    "chat_reply_failed": "⚠️ {error}",
    "chat_side_label": "{side}: {model}",
    # -- Fine-tune tab --
    "finetune_tab": "ファインチューニング",
    "ft_intro": (
        "登録済みモデルの LoRA アダプタ（CUDA GPU では QLoRA）をロールプレイ対話で学習します。どの応答もモデル本来の"
        "終了トークンで終わるように学習するので、アダプタは自分で発話を止められます。ハイライト部分が学習対象、"
        "枠付きのトークンは特殊トークンです。"
    ),
    "ft_base": "ベースモデル",
    "ft_data": "学習データ（JSONL、保存済みデータセットのフォルダ、または Hub の ID。空欄なら同梱の日本語データ）",
    "ft_data_placeholder": "prompts/finetune/roleplay_ja.jsonl",
    "ft_adapter_name": "アダプタ名（省略可）",
    "ft_lora": "LoRA",
    "ft_rank": "ランク r",
    "ft_alpha": "Alpha",
    "ft_dropout": "ドロップアウト",
    "ft_targets": "対象モジュール（カンマ区切り。空欄ならアーキテクチャの既定値）",
    "ft_qlora": "QLoRA: ベースを 4 ビット化（CUDA GPU のみ）",
    "ft_checkpointing": "勾配チェックポイント（GPU）",
    "ft_training": "学習",
    "ft_lr": "学習率",
    "ft_schedule": "スケジュール",
    "ft_warmup": "ウォームアップ（ステップの割合、またはステップ数）",
    "ft_epochs": "エポック数",
    "ft_max_steps": "最大ステップ数（-1: エポック数で決める）",
    "ft_batch": "バッチサイズ",
    "ft_accum": "勾配累積",
    "ft_seed": "シード",
    "ft_eval_fraction": "検証用に取り分ける割合（評価損失と停止チェック）",
    "ft_max_length": "打ち切り長（トークン）",
    "ft_overflow": "長すぎる会話",
    "ft_preview": "データをプレビュー",
    "ft_start": "学習を開始",
    "ft_cancel": "中止",
    "ft_resume": "再開",
    "ft_run_id": "実行",
    "ft_progress_idle": "まだ実行していません。",
    "ft_progress": "実行 {run}: {status} · ステップ {step}/{total} · エポック {epoch} · 残り {eta}",
    "ft_loss_plot": "損失",
    "ft_log": "ログ",
    "ft_runs": "実行履歴",
    "ft_refresh": "更新",
    "ft_choose_base": "ベースモデルを先に選んでください。",
    "ft_cancel_sent": "実行 {run} を中止しています。チェックポイントを保存中です。",
    "ft_not_running": "実行 {run} はこのアプリでは動いていません。",
    "ft_done": "アダプタ **{adapter}** を登録しました。チャット・マージ・評価ですぐに使えます。",
    "ft_stop_table": (
        "| | ベース | アダプタ |\n|---|---|---|\n"
        "| 自然に止まった割合 | {base_stop:.0%} | {tuned_stop:.0%} |\n"
        "| 終了記号を文字として出力 | {base_text:.0%} | {tuned_text:.0%} |\n"
        "| 1 応答あたりの文数 | {base_sent} | {tuned_sent} |"
    ),
    "ft_refused": "⚠️ この設定では学習を受け付けません: {why}",
    "ft_merge_full": "フルモデルにもマージする",
    "ft_merged": "フルモデル **{name}**（ベース + アダプタをマージ）を登録しました。",
    # -- Evaluate tab --
    "evaluate_tab": "評価",
    "ev_intro": (
        "日本語ロールプレイのタスク（`prompts/eval/`）でモデルを評価します。応答はチャットと同じ停止・切り詰めで生成し、"
        "自動指標で採点して保存するので、同じ設定の 2 回目は保存済みの結果を再利用します。**総合**スコアは 0〜1 で"
        "高いほど良く、進化的マージの適合度にも使われます。人手評価があれば Bradley–Terry と Likert の列も表示されます。"
    ),
    "ev_models": "モデル",
    "ev_split": "分割（dev: 最適化用、test: 報告用）",
    "ev_limit": "項目数（シード付きで抽出。0 = 分割全体）",
    "ev_seed": "シード",
    "ev_run": "評価を実行",
    "ev_refresh": "モデル一覧を更新",
    "ev_settings": "生成と採点の設定",
    "ev_max_new_tokens": "最大生成トークン数",
    "ev_temperature": "温度（0 = 貪欲法）",
    "ev_batch": "バッチサイズ",
    "ev_weights": "総合スコアの重み（YAML のパスか保存名。空欄なら既定値）",
    "ev_judge": "LLM ジャッジ（省略可。空欄なら使わない）",
    "ev_reference": "応答尤度を測る参照モデル（省略可）",
    "ev_idle": "未実行",
    "ev_choose_models": "モデルを 1 つ以上選んでください",
    "ev_error": "停止しました",
    "ev_finished": "完了",
    "ev_done": "**{replies}** 件の応答を採点しました（タスク版 `{version}`）。",
    "ev_failed": "{model} で失敗: {why}",
    "ev_table": "モデルごとに 1 行（指標の平均。人手評価の列は評価データから）",
    "ev_metric_plot": "モデル別の指標（どれも 1 が良い側になるよう変換。漏れなし = 1）",
    "ev_finish_plot": "応答の終わり方",
    "ev_length_plot": "応答の長さ（文字数）",
    "ev_drill": "応答とそのスコア",
    "ev_drill_model": "このモデルのみ",
    "ev_detail": "**{model}** · `{item}` · {reason} · 総合 {combined:.3f}\n\n> {reply}\n\n{scores}",
    "ev_export": "CSV とレポートを書き出す",
    "ev_csv": "CSV（全応答）",
    "ev_report": "レポート（HTML）",
    "ev_nothing": "先に評価を実行してください。",
    "ev_exported": "{folder} に書き出しました。",
    "ev_calibration": "人手評価で較正する",
    "ev_calibration_intro": (
        "各指標と総合スコアについて、人が付けた Likert スコア（応答ごと）および Bradley–Terry スコア（モデルごと。"
        "3 モデル以上が評価されてから）との順位相関（Spearman・Kendall、95% ブートストラップ区間）を求め、"
        "評価に合わせて当てはめた重み（非負リッジ回帰）を適合度用に保存します。"
    ),
    "ev_ridge": "リッジの強さ",
    "ev_calibrate": "較正して重みを保存",
    "ev_calibrated": (
        "評価済みの応答 **{n}** 件。総合スコアと人手評価の Spearman 相関は、現在の重みで **{before}**、当てはめた重みで "
        "**{after}**（交差検証で {cv}）。`{path}` に保存しました（名前 `calibrated` で使えます）。"
    ),
    "ev_corr_reply": "応答ごと: 指標と人手スコア",
    "ev_corr_model": "モデルごと: 指標と Bradley–Terry スコア",
    # -- Rate tab and Leaderboard tab --
    "rate_tab": "人手評価",
    "rate_intro": (
        "ロールプレイの応答を評価します。**ブラインド A/B**: 2 つのモデルが同じペルソナと書き出しに同じ設定で応答し、"
        "モデル名は投票後にだけ表示されます。**スコア**: 1 つの応答を各観点で 1（悪い）〜5（良い）で採点します。"
        "評価にはすべてあなたの名前が付き、保存が済んでから画面に知らせます。"
    ),
    "rate_rater": "あなたの名前（評価に記録されます。ログインのあるアプリではログインユーザー名を使います）",
    "rate_rater_placeholder": "例: tanaka",
    "rate_pair_tab": "ブラインド A/B",
    "rate_single_tab": "スコア（1〜5）",
    "rate_persona": "ペルソナ",
    "rate_random_persona": "ランダムなペルソナ",
    "rate_opening": "最初のメッセージ（省略可）",
    "rate_opening_placeholder": "空欄なら用意された 1 行目を使います",
    "rate_settings": "生成設定（両側共通）",
    "rate_settings_single": "生成設定（その場で生成する応答用）",
    "rate_max_new_tokens": "最大生成トークン数",
    "rate_temperature": "温度（0 = 貪欲法）",
    "rate_new_pair": "新しいブラインドペア",
    "rate_continue": "会話を続ける（両方のモデルが応答）",
    "rate_continue_placeholder": "次のセリフを入力して送信。投票はいつでもどうぞ",
    "rate_send": "両方に送信",
    "rate_vote_a": "A が良い",
    "rate_vote_b": "B が良い",
    "rate_vote_tie": "引き分け",
    "rate_vote_bad": "どちらも悪い",
    "rate_pair_ready": "ペアの準備ができました（ペルソナ: {persona}）。両方の応答を読み、必要なら会話を続けてから投票してください。",
    "rate_pair_continued": "両方が応答しました（ここまで {turns} ターン）。",
    "rate_no_pair": "先に新しいブラインドペアを始めてください。",
    "rate_vote_saved": (
        "投票を保存しました（#{id}）。**A** は **{a}**（終わり方: {fa}）、**B** は **{b}**（終わり方: {fb}）でした。"
        "次の投票は新しいペアでどうぞ。"
    ),
    "rate_source": "応答の出どころ",
    "rate_source_live": "その場で生成（モデルはランダムで非表示）",
    "rate_source_repeat": "他の評価者が採点した応答（一致度の測定用）",
    "rate_source_chat": "チャットタブで保存された応答",
    "rate_single_chat": "この応答は保存されたチャットからのものです。それまでの会話も表示しています。",
    "rate_single_no_chat": "採点できるチャットの応答が残っていないため、新しく生成しました。",
    "rate_source_eval": "評価の実行で得た応答",
    "rate_single_eval": "この応答は評価の実行からのものです。対応するタスク項目も表示しています。",
    "rate_single_no_eval": "採点できる評価の応答が残っていないため、新しく生成しました。",
    "rate_new_single": "採点する応答を取得",
    "rate_reply": "採点する応答",
    "rate_single_ready": "応答の準備ができました（ペルソナ: {persona}）。すべての観点を採点してから保存してください。",
    "rate_single_repeat": "この応答は他の評価者が採点済みです。あなたのスコアで評価者間の一致度を測ります。",
    "rate_single_no_repeat": "2 人目の評価を待つ応答がないため、新しく生成しました。",
    "rate_no_single": "先に採点する応答を取得してください。",
    "rate_axis_naturalness": "日本語の自然さ: ネイティブが書いたように読めるか",
    "rate_axis_consistency": "キャラクターの一貫性: 口調・一人称・振る舞いが保たれているか",
    "rate_axis_length_fit": "ターンの長さ: 会話の 1 ターンとして適切か（途中で切れず、冗長でもない）",
    "rate_axis_overall": "総合: ロールプレイの応答としてどれくらい良いか",
    "rate_comment": "コメント（省略可）",
    "rate_save_scores": "スコアを保存",
    "rate_scores_saved": "スコアを保存しました（#{id}）。応答したのは **{model}** でした。",
    "leaderboard_tab": "リーダーボード",
    "lb_intro": (
        "人手評価を数値にまとめます。ペア比較の投票から Elo スケールの Bradley-Terry スコア（引き分けと「どちらも悪い」は"
        "それぞれ 0.5 勝）と 95% ブートストラップ区間を求め、区間が離れていないモデルは同順位とします。Likert の平均には"
        " 95% の t 区間を付け、一致度は 2 人以上が評価した項目での Krippendorff の α です。"
    ),
    "lb_persona": "ペルソナ（空欄: すべて）",
    "lb_rater": "この評価者のみ（空欄: すべて）",
    "lb_exclude": "除外する評価者",
    "lb_since": "開始日（その日を含む）",
    "lb_until": "終了日（その日より前）",
    "lb_rounds": "ブートストラップ回数",
    "lb_refresh": "更新",
    "lb_auto": "新しい評価があれば更新（15 秒ごとに確認）",
    "lb_not_yet": "「更新」を押すとリーダーボードを計算します。",
    "lb_summary": "投票 {votes} 件・採点済み応答 {scores} 件 · ブートストラップ {rounds} 回 · 計算時間 {seconds} 秒",
    "lb_bad_date": "'{text}' は日付として読めません。2026-05-01 や 2026-05-01T13:00 の形で入力してください",
    "lb_arena": "ブラインド A/B: Bradley-Terry スコア",
    "lb_scores_plot": "スコアと 95% 区間",
    "lb_win_rates": "各モデル（行）の相手（列）に対する勝率",
    "lb_likert": "観点ごとの Likert 平均",
    "lb_agreement": "評価者間の一致度（Krippendorff の α）",
    "lb_export": "書き出し",
    "lb_export_raw": "投票とスコアの生データ",
    "lb_export_aggregates": "集計結果（上の表）",
    "lb_format": "形式",
    "lb_export_button": "書き出す",
    "lb_files": "ファイル",
    "lb_exported": "{folder} に {n} 個のファイルを書き出しました。",
    # -- Merge tab --
    "merge_tab": "マージ",
    "mg_intro": (
        "登録済みモデルを mergekit でマージします。まずどの組み合わせがマージできるかを確認し（設定ファイルだけを見るので"
        "重みは読みません）、フォームか YAML 欄でレシピを作って（どちらを編集しても両方に反映）、実行します。結果は"
        "マージモデルとして登録され、すぐにチャットで使えます。"
    ),
    "mg_compat_heading": "マージできる組み合わせ",
    "mg_models": "モデル",
    "mg_check": "確認",
    "mg_pick_two": "モデルを 2 つ以上選んでください。",
    "mg_checked": "{n} 個のモデルを設定とトークナイザから確認しました。",
    "mg_builder_heading": "レシピ",
    "mg_recipe_file": "レシピファイル（merges/）",
    "mg_load": "読み込む",
    "mg_save": "保存",
    "mg_duplicate": "別名で保存",
    "mg_method": "手法",
    "mg_base": "ベースモデル",
    "mg_inputs": "モデルとパラメータ",
    "mg_params": "マージのパラメータ",
    "mg_cells_help": (
        "セルには数値（`0.5`）、層ごとの勾配（`[0, 0.5, 1]`）、フィルタ付きの値（`[{filter: mlp, value: 0.5}, {value: 0}]`）を"
        "書けます。`slice` と `layer_range`（`[0, 16]`）を使うとレシピがスライス形式になり、`other` にはモデルごとの追加"
        "パラメータ（`{gamma: 0.01}`）を書きます。normalize・int8_mask・t・lambda はマージのパラメータ側に書きます。"
    ),
    "mg_dtype": "dtype",
    "mg_tokenizer_source": "トークナイザの出どころ",
    "mg_chat_template": "チャットテンプレート",
    "mg_yaml": "mergekit の YAML",
    "mg_valid": "レシピは有効で、モデルも手法に合っています。",
    "mg_loaded": "**{name}** を読み込みました。",
    "mg_saved": "`{path}` に保存しました。",
    "mg_run_heading": "実行",
    "mg_out_name": "マージ後のモデル名",
    "mg_run": "マージ",
    "mg_cancel": "中止",
    "mg_cancelled": "中止しました。何も登録していません。",
    "mg_done": "**{name}** を登録しました（マージ {seconds} 秒、保存先 `{folder}`）。チャットタブですぐに使えます。",
    # -- Evolve tab --
    "evolve_tab": "進化的マージ",
    "evo_intro": (
        "タスクの dev 分割でのロールプレイ適合度を目的に、CMA-ES でマージのパラメータを探索します。候補は評価が済むたびに"
        "保存され、止めた実行や強制終了した実行も最後の世代から再開できます。"
    ),
    "evo_models": "マージするモデル",
    "evo_base": "ベースモデル",
    "evo_method": "手法",
    "evo_granularity": "1 グループあたりの層数（0: 全体で 1 グループ）",
    "evo_split": "アテンションと MLP のパラメータを分ける",
    "evo_run": "実行名",
    "evo_population": "集団サイズ",
    "evo_budget": "予算（候補数）",
    "evo_sigma": "sigma0",
    "evo_seed": "シード",
    "evo_dev_limit": "候補ごとの dev 項目数",
    "evo_tokens": "応答ごとの生成トークン数",
    "evo_start": "開始",
    "evo_stop": "停止",
    "evo_resume": "再開",
    "evo_refresh": "更新",
    "evo_plot": "世代ごとの最良・平均適合度",
    "evo_candidates": "候補",
    "evo_export_name": "書き出すモデルの名前",
    "evo_export": "最良の候補を書き出す",
    "evo_stopping": "今の候補が終わったら停止します…",
    "evo_exported": "`merges/{name}.yaml` を書き出し、**{name}** を登録しました。チャットと人手評価のタブですぐに使えます。",
    # -- Language switch (rp_eval/ui/locale.py) --
    "language": "表示言語",
}

LANGUAGES: dict[str, dict[str, str]] = {"en": STRINGS, "ja": JA}
COOKIE = "rp_lang"  # set by the language switch; the server reads it for messages, the page on load
_BUILT: dict[str, dict[str, str]] = {}  # keys made at build time for strings with values (see _marker)
_USED: set[str] = set()  # the keys of the page being built: only these go to its browser (see i18n)


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
    request = LocalContext.request.get(None)
    if request is not None:
        cookies = getattr(request, "cookies", None) or {}
        return choose(cookies.get(COOKIE), request.headers.get("accept-language"))
    return None if Context.root_block is not None else "en"


def t(key: str, **values: object) -> str:
    """A string the UI shows: formatted in the request's language inside an event handler; while a page is being
    built, a Gradio I18n key that the browser shows in the page's language; elsewhere (tests, scripts) English."""
    lang = language()
    if lang is None:
        return _marker(key, values)
    return text(key, lang).format(**values) if values else text(key, lang)


def _marker(key: str, values: dict[str, object]) -> str:
    # Gradio's I18nData as text ("__i18n__{...}"): the front end translates it wherever it sits in a label,
    # Markdown or HTML value. A string with values becomes a key of its own, formatted once per language.
    if values:
        formatted = {lang: text(key, lang).format(**values) for lang in LANGUAGES}
        key = f"{key}__" + hashlib.sha1(json.dumps(formatted, sort_keys=True).encode()).hexdigest()[:10]
        _BUILT[key] = formatted
    _USED.add(key)
    return str(I18nData(key))


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
    keys = [json.loads(str(tab.label).removeprefix("__i18n__"))["key"] for tab in tabs]
    if tabs:
        switch.change(
            lambda lang: [gr.update(label=_built_text(k, lang)) for k in keys],
            switch,
            tabs,
            show_progress="hidden",
            queue=False,  # a label change must not wait behind a long generation
            api_visibility="private",
        )
    app.i18n_instance = i18n(set(_USED))  # what `launch(i18n=...)` or `mount_gradio_app(i18n=...)` would set


def _built_text(key: str, language: str) -> str:
    return _BUILT[key][language] if key in _BUILT else text(key, language)


# The page's language is svelte-i18n's locale inside Gradio's front end; its `changeLocale` (what Gradio's own
# Settings panel calls) is exported by the front end's core module, loaded from the same URL so it is the same
# instance. Gradio has no URL parameter or saved setting for the language, so the switch keeps it in a cookie.
_CORE = next(iter(sorted(Path(gr.__file__).parent.glob("templates/frontend/assets/core-*.js"))), None)
_JS_APPLY = f"""
const apply = (lang) => {{
  const index = document.querySelector('script[type=module][src*="assets/index-"]');
  if (index) import(new URL("./{_CORE.name if _CORE else "core.js"}", index.src).href).then((m) => m.changeLocale(lang));
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
