"""The one base class for errors meant for a person: the UI shows them, the CLI prints them and exits 2.

An error can carry a message key and values instead of finished text: `ChatError(key="err_chat_empty")`,
`CardError(key="err_card_not_json", source="x.json", detail="...")`. Its English text (what `str(err)`, the
CLI and the logs give) is `MESSAGES[key]` formatted with the values; the UI renders the same key from its
locale table in the page's language (`rp_eval.ui.locale.error_text`, Japanese in `locale_ja.py`). A value that
is itself an `RpEvalError` is rendered in the same language. An error raised with plain text (older code,
messages from other libraries) is shown as it is.

Words of the library that are not errors but reach the page (progress lines, the merge matrix's verdicts, plot
labels) use the same table through `Said`: a `str` (its English text, so logs and the CLI are unchanged) that also
carries its key and values, so the UI can say it again in the page's language.

Adding a message: one line here (English), one in `rp_eval/ui/locale_ja.py` (Japanese, same placeholders).
"""

from __future__ import annotations

import json

MESSAGES: dict[str, str] = {
    # chat (rp_eval/chat/session.py, rp_eval/ui/chat_tab.py)
    "err_chat_empty": "the message is empty: type something for the character to answer",
    "err_chat_no_persona": "choose a persona first",
    "err_chat_no_model": "choose a model for each side first",
    "err_chat_no_conversation": "start a conversation first",
    "err_chat_missing": "conversation {id} does not exist",
    "err_chat_nothing_to_regenerate": "there is no reply to regenerate yet",
    "err_chat_nothing_to_undo": "nothing to undo: only the opening message is left",
    "err_chat_side_failed": "{model}: {error}",
    "err_chat_no_alternative": "there is no other reply to show for this turn",
    "err_chat_edit_missing": "that message is no longer in the conversation",
    "err_chat_edit_empty": "an edited message can not be empty",
    "err_number_missing": "{field}: enter a number",
    "err_number_not_integer": "{field}: {value} is not a whole number",
    "err_number_range": "{field}: {value} is outside the allowed range {low} to {high}",
    "err_stop_strings": "Stop strings: at most {n} strings of up to {chars} characters each",
    "err_unexpected": "the request failed ({kind}); nothing was stored",
    # paths typed into the page (rp_eval/paths.py); {what} is one of the path_ nouns below, or as the caller wrote it
    "err_path_too_long": "{what} is {n} characters long; a path is at most 4096",
    "err_path_none": "no {what} given",
    "err_path_nul": "{what} {text} contains a NUL character",
    "err_path_unusable": "{what} '{text}' can not be used as a path: {detail}",
    "err_path_outside": (
        "{what} '{text}' is outside the folders this server may read and write: {roots} "
        "(add a folder to the allowed_roots setting to allow it)"
    ),
    "err_path_outside_resolved": (
        "{what} '{text}' (resolves to '{resolved}') is outside the folders this server may read and write: {roots} "
        "(add a folder to the allowed_roots setting to allow it)"
    ),
    "path_path": "path",
    "path_model_folder": "model folder",
    "path_model": "model",
    "path_weights_file": "weights file",
    "path_training_data": "training data",
    "path_recipe_folder": "recipe folder",
    "path_pairs_file": "pairs file",
    # models, ratings, evolution
    "err_registry_no_source": "no model given: type a Hugging Face id (owner/name) or a folder path",
    "err_registry_no_folder": "folder '{source}' does not exist",
    "err_registry_file": "'{source}' is a file, not a model folder",
    "err_registry_no_config": "'{source}' is not a model folder: it has no config.json (nor adapter_config.json)",
    "err_registry_bad_config": "the config.json in '{source}' can not be read: {detail}",
    "err_registry_offline": "'{source}' is not a local folder, and the Hugging Face hub is off (HF_HUB_OFFLINE=1): download it first or give a folder",
    "err_registry_hub": "could not read '{source}' from the Hugging Face hub: {detail}",
    "err_registry_not_causal": "'{source}' is not a causal language model transformers knows (architectures: {architectures})",
    "err_registry_tokenizer": "'{source}' has no usable tokenizer: {detail}",
    "err_registry_adapter_config": "adapter_config.json in '{path}' can not be read: {detail}",
    "err_registry_adapter_base": "the adapter in '{path}' does not name its base model (base_model_name_or_path)",
    "err_registry_base_missing": "the adapter's base model '{base}' is not registered: add the base model first",
    "err_registry_format": "unknown prompt format '{format}'; choose auto or one of {known}",
    "err_registry_parent": "parent model '{name}' is not registered",
    "err_registry_unknown": "no registered model named '{name}' (registered: {known})",
    "err_registry_has_adapters": "'{name}' is the base of {children}: remove those adapters first",
    "err_registry_outside": "'{name}' lives outside the workspace ({folder}); rp_eval only deletes files it made. Remove it from the registry without deleting files, then delete the folder yourself",
    "err_rating_persona": "unknown persona '{persona}' (personas: {known})",
    "err_rating_no_message": "type a message to continue the conversation",
    "err_rating_closed": "this item was already judged: start a new one",
    "err_rating_winner": "a vote is one of {known}, not '{winner}'",
    "err_rating_single": "this item is a single reply: give it scores, not a vote",
    "err_rating_no_models": "no models are registered: add one in the Models tab",
    "err_rating_stored_reply": "a stored reply to score must end with the model's (assistant) message",
    "err_rating_pair": "this item is a blind pair: vote A, B, tie or both bad",
    "err_rating_missing": "give a score from 1 to 5 for: {axes}",
    "err_rating_score": "the score for {axis} must be a whole number from 1 to 5, not {value}",
    "err_rating_no_name": "type your name (or log in) before rating: every rating is signed",
    "err_evolve_no_models": "choose the models to merge (besides the base model) first",
    # cards (rp_eval/chat/cards.py)
    "err_card_not_object": "{source}: a character card is a JSON object, got {kind}",
    "err_card_data": "{source}: field 'data' must be an object",
    "err_card_no_name": "{source}: field 'data.name' is missing or empty",
    "err_card_not_list": "{source}: field 'data.{field}' must be a list",
    "err_card_not_json": "{source}: the card is not valid JSON ({detail})",
    "err_card_too_deep": "{source}: the card's JSON is nested too deeply to be a character card",
    "err_card_not_png": "{source}: not a readable PNG image ({detail})",
    "err_card_no_chunk": "{source}: the PNG has no 'chara' or 'ccv3' chunk, so it holds no character card",
    "err_card_not_base64": "{source}: the card chunk is not base64 ({detail})",
    "err_card_too_big": "{source}: the file is {mb} MB; cards up to {limit} MB are accepted",
    "err_card_bad": "card '{name}': {detail}",
    "err_card_book": "{source}: field 'data.character_book' must be an object with a list of 'entries'",
    "sep_reasons": "; ",  # between the reasons of one message (a tuple of them as a value)
    "sep_list": ", ",  # between the items of a list value
    # evaluation (rp_eval/evaluate/runner.py): progress lines and refusals
    "progress_loading": "{model}: loading",
    "progress_replies": "{model}: {done}/{total} replies",
    "progress_replies_empty": "{model}: {done}/{total} replies, {empty} empty",
    "progress_failed": "{model} failed: {reason}",
    "err_eval_split_empty": "the '{split}' split has no items",
    "reopen_missing": "no such run in the store",
    "reopen_task_version": "made on task version {made}; the current task is {current}",
    "reopen_shown": "{model} is already shown from run #{run}",
    # fine-tuning (rp_eval/finetune/): refusals before a run starts
    "err_ft_warmup": "the warm-up ({warm} steps) is not shorter than the run ({total} optimizer steps): lower the warm-up (a value below 1 is a share of the steps, e.g. 0.05) or train for more epochs or steps",
    "err_ft_adapter_base": "'{model}' is an adapter; fine-tune its base or a merged model instead",
    "err_ft_name_taken": "a model named '{name}' is already registered: choose another adapter name",
    "err_ft_qlora_gpu": "QLoRA (4-bit) needs a CUDA GPU and this machine has none: untick QLoRA to train LoRA",
    "err_ft_bitsandbytes": "QLoRA needs bitsandbytes: pip install bitsandbytes",
    "err_as_is": "{error}",
    "err_ft_no_run": "no fine-tuning run {run}",
    "err_ft_finished": "run {run} is finished; its adapter is '{adapter}'",
    "err_ft_no_checkpoint": "run {run} has no checkpoint to resume from: start a new run",
    "err_ft_not_utf8": "'{path}' is not UTF-8 text (is it a JSONL file?)",
    "err_ft_not_json": "'{name}' line {line} is not JSON ({detail}): the file must be JSONL",
    "err_ft_no_conversations": "'{path}' has no conversations",
    "err_ft_dataset": "could not load the dataset '{source}': {detail}",
    "err_ft_data_missing": "training data '{source}' not found: give a .jsonl file, a saved dataset folder or a hub id",
    # scoring weights, calibration and the LLM judge (rp_eval/evaluate/)
    "err_weights_metric": "weights '{name}': '{metric}' is not a metric with a direction",
    "err_weights_negative": "weights '{name}': '{metric}' has a negative weight ({weight})",
    "err_weights_zero": "weights '{name}': every weight is zero",
    "err_weights_missing": "weights '{source}' not found (a YAML path, or a name in {folder})",
    "err_weights_file": "weights file {path}: {detail}",
    "calibrate_no_variation": "no metric varies over the rated replies: nothing to fit",
    "calibrate_no_predictor": "no metric predicts the human scores (every fitted weight is zero)",
    "err_calibrate_few": "calibration needs at least 10 Likert-scored replies; the ratings hold {n}",
    "err_calibrate_failed": "calibration failed: {reason}",
    # the meta-evaluation's categories of worse replies, as the page words them, and a list of shares by category
    "meta_cat_voice": "voice",
    "meta_cat_speaks_for_user": "speaks_for_user",
    "meta_cat_cut_or_rambling": "cut_or_rambling",
    "meta_cat_leak_or_loop": "leak_or_loop",
    "meta_cat_bland_off_topic": "bland_off_topic",
    "meta_cat_contradiction": "contradiction",
    "meta_share": "{category} {share}",
    "meta_list": "{items}",
    # the evaluation task's files (rp_eval/evaluate/task.py)
    "err_task_none": "no task files (*.jsonl) in {folder}",
    "err_task_not_utf8": "{file}: not UTF-8 text (save it as UTF-8)",
    "err_task_json": "{where}: not valid JSON ({detail} at column {column})",
    "err_task_fields": "{where}: {problems}",
    "err_task_duplicate": "{where}: item id '{id}' is already used in {first}",
    "err_task_persona": "item '{id}' names unknown persona '{persona}' (known: {known})",
    # pairs files of the meta-evaluation (rp_eval/evaluate/meta.py)
    "where_line": "{file} line {line}",
    "err_meta_missing": "pairs file {path} not found",
    "err_meta_not_utf8": "{path}: not UTF-8 text (save it as UTF-8)",
    "err_meta_json": "{where}: not valid JSON ({detail} at column {column})",
    "err_meta_fields": "{where}: {problems}",
    "err_meta_persona": "{where}: unknown persona '{persona}' (known: {known})",
    "err_meta_same": "{where}: 'better' and 'worse' are the same text",
    "err_meta_duplicate": "{where}: pair id '{id}' is already used on line {line}",
    "err_meta_empty": "{path} holds no pairs",
    "err_judge_model": "judge model '{name}': {error}",
    "err_judge_unknown": "judge model: {error}",
    "err_judge_same_token": "this tokenizer maps different grades to the same token ({ids}): it can not be a judge",
    "err_judge_grade": "this tokenizer has no single token for the grade '{grade}' (it spells it as {n} tokens {tokens}): it can not be a one-pass judge; choose a model whose tokenizer has the digits",
    # merge compatibility (rp_eval/merge/compat.py): the matrix's verdicts, reasons and notes
    "compat_same_model": "same model",
    "compat_all_methods": "all methods",
    "compat_passthrough_only": "passthrough only",
    "compat_not_mergeable": "not mergeable",
    "compat_architectures": "{a} vs {b}: different architectures; parameter-space merging is impossible",
    "compat_layer_shapes": "different layer shapes ({differences}): no merge can mix their layers",
    "compat_field": "{field} {a} vs {b}",
    "compat_layer_count": (
        "num_hidden_layers {a} vs {b}: parameter-space methods need the same layer count "
        "(passthrough slices can still stack them)"
    ),
    "compat_vocab": "different vocabularies (vocab_size {a} vs {b}): set a tokenizer source (base or union)",
    "compat_vocab_tokens": (
        "different vocabularies (vocab_size {a} vs {b}, different tokens): set a tokenizer source (base or union)"
    ),
    "compat_no_tokenizer": "tokenizer not found for one of them: only the vocabulary size was compared",
    "compat_rope": "different rope settings ({a} vs {b}): the merge takes the first model's",
    "compat_incompatible": "incompatible",
    "err_compat_config": "the config of '{name}' can not be read: {detail}",
    "err_compat_method": "'{a}' and '{b}' can not be merged with {method}: {why}",
    # running a merge (rp_eval/merge/run.py)
    "err_merge_no_name": "give the merged model a name",
    "err_merge_name_taken": "a model named '{name}' is already registered: choose another name",
    "err_merge_folder_exists": "the folder {folder} exists already: choose another name or remove it",
    "err_merge_disk": "not enough disk space in {folder}: the merge needs about {needed} GiB, {free} GiB are free",
    "merge_checking": "checking the recipe and the models (configs only)",
    "merge_loading": "merging on the {device} with {method}",
    "merge_tensors": "tensor task {done}/{total}",
    "merge_saving": "writing the recipe and model card, registering",
    "merge_done": "merged into {name} in {seconds} s",
    # merge recipes (rp_eval/merge/recipe.py): the problems listed under the YAML box
    "err_recipe": "{text}",
    "err_recipe_field": "{field}: {text}",
    "recipe_and_more": "{first}; {rest}",
    "recipe_yaml_at": "malformed YAML at line {line}, column {column}: {problem}",
    "recipe_yaml": "malformed YAML: {problem}",
    "recipe_yaml_deep": "malformed YAML: nested too deeply",
    "recipe_not_mapping": "a recipe is a YAML mapping with at least merge_method and models (or slices)",
    "recipe_not_number": "'{value}' is not a valid {name} (a number is expected)",
    "recipe_unknown_method": "unknown method '{method}'; mergekit offers {known}",
    "recipe_needs_base": "{method} needs a base model",
    "recipe_too_few": "{method} needs at least {low} models, got {n}",
    "recipe_too_many": "{method} takes at most {high} models, got {n}",
    "recipe_needs_for": "{method} needs '{name}' for {model}",
    "recipe_needs": "{method} needs '{name}'",
    "recipe_layer_range": "layer range {range} is beyond '{model}' ({layers} layers)",
    "recipe_cell_value": "'{text}' is not a value (a number, [a, b, c] or [{{filter: mlp, value: 0.5}}])",
    "recipe_form_key": "the form can not show '{key}' yet: edit this recipe in the YAML box",
    "recipe_form_slice": "the form can not show slice-level {extra}: edit it in the YAML box",
    "recipe_other_mapping": "other parameters are a mapping such as {{gamma: 0.01, epsilon: 0.1}}",
    "recipe_layer_range_form": "a layer range is [first, end], e.g. [0, 16]",
    "recipe_no_name": "a recipe needs a file name",
    "recipe_missing": "no recipe named '{name}' in {folder} (recipes: {known})",
    "recipe_exists": "a recipe named '{name}' exists already: choose another name",
    # plots (rp_eval/evaluate/plots.py, rp_eval/ratings/plots.py)
    "plot_combined": "combined",
    "plot_bt_axis": "Bradley-Terry score (Elo scale) with 95% bootstrap interval",
    "plot_model_votes": "{model} ({votes} votes)",
    "plot_opponent": "opponent",
    "plot_model": "model",
    "plot_win_rate": "win rate of the row model\n(ties half; votes in brackets)",
    "plot_likert_axis": "mean score (1-5) with 95% interval",
    "plot_axis_naturalness": "Natural Japanese",
    "plot_axis_consistency": "In character",
    "plot_axis_length_fit": "Turn length",
    "plot_axis_overall": "Overall",
    "plot_axis_vote": "Blind A/B votes",
    # issue 32: the Evolve tab on the researcher's own task
    "task_problem_missing": "'{field}' is missing",
    "task_problem_extra": "'{field}' is not a field of a task item",
    "task_problem_empty": "'{field}' is empty",
    "task_problem_choice": "'{field}' must be one of {expected}",
    "task_problem_pattern": "'{field}' may hold only letters, digits, '_', '.' and '-'",
    "task_problem_type": "'{field}' has the wrong type",
    "task_problem_alternate": "'{field}': turns must alternate user / assistant",
    "task_problem_ends": "'{field}': turns must start and end with a user turn",
    "task_choices": "{choices}",
    "path_task_file": "task file",
    "task_problem_other": "'{field}': {detail}",
    "err_task_no_dev": "the task {task} has no items in the dev split (the search scores candidates on dev items)",
    "err_task_not_found": "no task file or folder at {path}",
    "flag_marker": "marker rate {before}→{after}/100 chars",
    "flag_repetition": "repetition {before}→{after}",
    "flag_judge": "judge {delta}",
    "flag_no_judge": "no judge in the fitness to vouch for it",
    "flag_line": "{jumps} ({why})",
    # issue 29: lab-server trust, second pass
    "err_path_store": (
        "{what} '{text}' is one of the server's own files (its database, the users file or an internal folder, "
        "or a folder holding one): it can not be opened from the page"
    ),
    # issue 32: cards fit the context
    "err_fit_card_too_long": (
        "this card's system prompt needs {tokens} tokens even without its example dialogues and lorebook entries and "
        "with only the last message, but the model reads {room} ({context} in all, less {new} for the reply): "
        "shorten the card's description or lower Max new tokens"
    ),
    "err_fit_no_room": "Max new tokens is {new}, but this model reads at most {context} tokens in all: lower it",
    # issue 32: a hub id with no network
    "err_hub_unreachable": (
        "'{source}' is not a local folder, and the Hugging Face hub ({endpoint}) did not answer within {seconds} s: "
        "with no network, start the app with HF_HUB_OFFLINE=1 to use models already downloaded, or give the model's folder"
    ),
    # issue 30: one ranking from several vote sources, prediction-powered scores (rp_eval/ratings/combined.py, ppi.py)
    "combined_no_votes": "source '{source}' has no votes: ranked without it",
    "combined_weight": "source '{source}' has weight {weight}: a weight must be above 0, so it is left out",
    "combined_constant": "source '{source}' gave {n} votes, every one a tie (a judge whose grades are constant): left out",
    "combined_rater_no_votes": "rater '{rater}' has no votes (deleted or never given): not counted",
    "combined_few_blind": "fewer than two raters gave blind votes: the weights can not be fitted, every source keeps weight 1",
    "err_combined_nothing": "no votes to rank from (sources: {sources})",
    "ppi_no_ratings": "{model}: no human ratings, so only the automatic score is shown",
    "ppi_unknown_items": "{model}: {n} human ratings are on items without an automatic score and are left out",
    "ppi_one_unit": "{model}: the human ratings come from one rater (or one item), so there is no interval",
    "ppi_no_auto": "{model}: human ratings but no automatic scores, so no prediction-powered score",
    # issue 29: second pass (guard, sessions)
    "err_guard_too_big": "the request body is larger than {limit} bytes (the limit_body_bytes setting)",
    "err_guard_not_json": "the body is not valid JSON: {detail}",
    "err_guard_json_depth": "the JSON body nests deeper than {limit} levels",
    "err_guard_surrogate": (
        "the request holds text that is not valid Unicode (an unpaired surrogate {code} in '{field}' at character {at})"
    ),
    "err_guard_form": "the form body is not valid UTF-8: {detail}",
    "err_guard_no_event": "this page has no event number {fn}",
    "err_guard_media_type": ("{path} takes a JSON body (Content-Type: application/json), not '{kind}'"),
    # issue 32e: the fine-tune preview and run log (rp_eval/finetune/labels.py, plan.py, train.py)
    "ft_marker": "end marker {text} (id {id}) tokenises as {pieces} → {verdict}",
    "ft_marker_ok": "one real token: OK",
    "ft_marker_refused": "REFUSED: {problem}",
    "ft_marker_nothing": "nothing",
    "ft_marker_no_eos": "the tokenizer has no EOS token and the format no end-of-turn token",
    "ft_marker_not_in_vocab": "{text} is not in the vocabulary, so it has no id of its own",
    "ft_marker_splits": "{text} written as text splits into {n} pieces instead of the single id {id}",
    "ft_marker_ordinary": "{text} is an ordinary vocabulary entry, not a special token: replies could spell it as text",
    "ft_marker_fix": (
        "{problem}; register it as a special token (tokenizer.add_special_tokens) or pick a tokenizer that has one"
    ),
    "ft_format_marker": "prompt format {format}; {marker}",
    "ft_counts": "{kept} conversations kept, {truncated} truncated to whole turns, {dropped} dropped",
    "ft_log_loading": "loading {model}",
    "ft_log_loading_qlora": "loading {model} in 4-bit (QLoRA)",
    "ft_log_sets": "train: {train}",
    "ft_log_sets_eval": "train: {train}; eval: {eval}",
    "ft_plan_line": (
        "{total} optimizer steps ({per_epoch} per epoch) on {train} of {conversations} conversations{held}; "
        "warm-up {warmup} steps; the loss {loss}; a checkpoint every {save} steps"
    ),
    "ft_plan_held": ", {held} held out for the eval loss every {every} steps",
    "ft_plan_loss_each": "at every step",
    "ft_plan_loss_every": "every {n} steps from the first",
    "ft_log_plan": "plan: {plan}",
    "ft_log_lora": "LoRA r={r} on {targets}: {trainable} of {total} parameters train",
    "ft_log_step": "step {step}: {losses}",
    "ft_log_cancelled": "cancelled at step {step}; the last checkpoint is kept: resume to continue",
    "ft_log_registered": "adapter registered as '{name}' ({path})",
    "ft_log_stop_check": (
        "natural-stop rate {base} → {tuned}, sentences per reply {base_sentences} → {tuned_sentences} "
        "(base → adapter, {prompts} prompts of the evaluation task)"
    ),
    "ft_log_merging": "merging the adapter into a full model (merge_and_unload)",
    "ft_log_merge_failed": "merge into a full model FAILED: {reason}",
    "ft_log_merged": "full model registered as '{name}'",
    "ft_log_failed": "FAILED: {reason}",
    "ft_ckpt_asked_on": "gradient checkpointing on (as asked)",
    "ft_ckpt_asked_off": "gradient checkpointing off (as asked)",
    "ft_ckpt_qlora": "gradient checkpointing on (auto: QLoRA trains for the smallest memory)",
    "ft_ckpt_no_gpu": "gradient checkpointing off (auto: no CUDA GPU)",
    "ft_ckpt_auto_on": (
        "gradient checkpointing on (auto: about {need} GiB needed without it, {share} of the GPU's {gpu} GiB is {room})"
    ),
    "ft_ckpt_auto_off": (
        "gradient checkpointing off (auto: about {need} GiB needed without it, {share} of the GPU's {gpu} GiB is {room})"
    ),
    # issue 32e: a recipe's field errors (rp_eval/merge/recipe.py parse)
    "recipe_field_missing": "this field is required",
    "recipe_list_type": "this should be a list (lines starting with '- ')",
    "recipe_string_type": "this should be text",
    "recipe_dict_type": "this should be a mapping (key: value lines)",
    "recipe_number_type": "this should be a number",
    "recipe_int_type": "this should be a whole number",
    "recipe_bool_type": "this should be true or false",
    "recipe_extra": "this field is not part of a mergekit recipe",
    "recipe_one_of_inputs": "give exactly one of models, slices or modules",
    "recipe_two_tokenizers": "give tokenizer_source or tokenizer, not both",
    # issue 32e: library errors with keys (finetune data, evolve search and genomes, merges of adapters)
    "data_where_line": "'{name}' line {line}",
    "data_where_row": "'{source}' row {row}",
    "err_data_not_object": "{where}: expected a JSON object, got {kind}",
    "err_data_speaker": "{where}: unknown ShareGPT speaker {speaker} (use system, human or gpt)",
    "err_data_no_turns": "{where}: no 'messages' (OpenAI form) or 'conversations' (ShareGPT form) key",
    "err_data_role": "{where}: unknown role {role} (use system, user or assistant)",
    "err_data_empty_turn": "{where}: a {role} turn has no text",
    "err_data_system_place": "{where}: the system turn (persona) must come first and only once",
    "err_data_no_assistant": "{where}: the conversation has no assistant turn, so there is nothing to learn",
    "err_data_no_user": "{where}: the conversation has no user turn",
    "err_data_turns_list": "{where}: the turns must be a list of objects",
    "err_data_none_fits": "no conversation fits in {tokens} tokens ({counts}): raise the cut-off",
    "err_search_other_genome": (
        "the checkpoint {path} belongs to another genome ({theirs}, this one is {ours}): "
        "resume with the genome the run started with"
    ),
    "err_search_other_settings": "the checkpoint {path} was made with other search settings: resume with the same ones",
    "err_search_no_budget": "the budget is 0 candidates: give at least one generation's worth",
    "err_search_no_run_to_resume": "no evolve run named '{run}' to resume",
    "err_search_resume_genome": "run '{run}' was started with another genome ({genome}); it can not resume this one",
    "err_search_run_exists": "an evolve run named '{run}' exists already: resume it or choose another name",
    "err_search_no_run": "no evolve run named '{run}'",
    "err_search_no_candidate": "run '{run}' has no successful candidate yet",
    "err_search_write": "can not write the recipe to {path}: {detail}",
    "err_bad_name": "name '{name}': use letters, digits, '-', '_' and '.' only, not starting with '.'",
    "err_genome_needs_base": "{method} needs a base_model",
    "err_genome_slerp": "slerp merges one model into the base: give exactly one entry in models",
    "err_genome_linear": "linear needs at least two models",
    "err_genome_base_twice": "the base model '{base}' is listed in models too; list it only as base_model",
    "err_genome_yaml": "malformed genome YAML: {detail}",
    "err_genome_deep": "malformed genome YAML: nested too deeply",
    "err_genome_field": "{field}: {text}",
    "err_genome_missing": "no genome named '{ref}' in {folder} (genomes: {known})",
    "err_genome_unreadable": "genome file {path} can not be read: {detail}",
    "err_ft_not_adapter": "'{name}' is not an adapter, so there is nothing to merge",
    "err_ft_merge_name_taken": "a model named '{name}' is already registered: choose another name for the merge",
    "err_ft_folder_exists": "the folder for '{name}' already exists: {path}",
    "err_ft_still_running": "run {run} is still running (process {pid} on {host})",
    "err_ft_load": "could not load '{name}': {detail}",
    "err_registry_kind": "unknown kind '{kind}'; one of {kinds}",
    # issue 30b: chat choices as preferences (rp_eval/chat/session.py, choices.py)
    "err_pref_no_pair": "there is no pair of replies to choose from: side by side, after both sides have answered",
    # issue 30b: a fitness fitted on this lab's preferences (rp_eval/evaluate/preference_fit.py)
    "err_prefit_few": (
        "too few preferences to calibrate the fitness: {pairs} ({blind} blind votes with a winner, {chat} chat "
        "preferences); at least {need} are needed"
    ),
    "err_prefit_flat": "no metric tells the preferred reply from the other in these {pairs} preferences: nothing to fit",
    "prefit_few_blind": "only {n} blind votes with a winner: at least {need} are needed to measure the held-out agreement",
    # issue 29c: card PNGs read from their chunks, upload limits
    "err_card_pixels": (
        "{source}: the picture is {width} x {height} ({mp} megapixels); a card's picture may have at most {limit} "
        "megapixels"
    ),
    "err_card_text_too_big": "{source}: the PNG's '{chunk}' text is over {limit} MB; a card's text may be at most {limit} MB",
    "err_upload_budget": (
        "this login uploaded {used} MB in the last {minutes} minutes; at most {limit} MB per {minutes} minutes is "
        "accepted (setting limit_upload_mb_per_login). Try again in {wait} minutes"
    ),
    "err_upload_no_length": "an upload must declare its size (the Content-Length header)",
    "recipe_yaml_expands": (
        "the YAML's aliases (*name) expand to more than {limit} values, far past any recipe: write the values out"
    ),
    "err_card_number": "{source}: the card holds a number too long to read ({detail})",
    "err_guard_host": (
        "this server answers only for {names} (Host was '{host}'); add a name to the allowed_hosts setting to "
        "reach it by another"
    ),
    "err_store_full": (
        "the server's disk is full, so this was not stored (nothing of it was kept); please tell the lab's admin"
    ),
    "err_upload_disk_low": (
        "the server's disk ({folder}) has {free} MB free, less than the {limit} MB kept for votes and chats "
        "(setting limit_disk_free_mb): uploads and card imports are refused until space is freed"
    ),
}


class Said(str):
    """A library message as English text that keeps its key and values: `Said("progress_loading", model="m")`."""

    key: str
    values: dict[str, object]

    def __new__(cls, key: str, **values: object) -> Said:
        if key not in MESSAGES:
            raise KeyError(f"unknown message key {key!r}")
        said = super().__new__(cls, format_message(key, values, MESSAGES))
        said.key, said.values = key, values
        return said


_PACKED = "\u2063"  # invisible separator: a stored line's English text, then its key and values as JSON


def _plain(said: Said) -> dict:
    values = {k: _plain(v) if isinstance(v, Said) else v if isinstance(v, int | float) else str(v)
              for k, v in said.values.items()}  # fmt: skip
    return {"key": said.key, "values": values}


def _said(data: dict) -> Said:
    values = {k: _said(v) if isinstance(v, dict) else v for k, v in data["values"].items()}
    return Said(data["key"], **values)


def pack(line: str) -> str:
    """A line to store as text (a run's log): its English text, and for a `Said` also its key and values, so the
    page can say it again in its own language (`unpack`); what reads the text alone (the CLI) strips the rest."""
    if not isinstance(line, Said):
        return str(line)
    return f"{line}{_PACKED}{json.dumps(_plain(line), ensure_ascii=False)}"


def unpack(line: str) -> str:
    """A stored line as written: a `Said` when it was one (its English text if its key is gone), else the text."""
    text, packed, data = line.partition(_PACKED)
    if not packed:
        return line
    try:
        return _said(json.loads(data))
    except (ValueError, KeyError, TypeError):  # a key a newer or older version wrote: its English text stands
        return text


def english(key: str, **values: object) -> str:
    """`key` of MESSAGES in English, as a `Said` (the default wording of library functions that take a `say`)."""
    return Said(key, **values)


def said(err: BaseException) -> str:
    """An error's message as a `Said` when it has a key (so the UI can translate it later), else its text."""
    if isinstance(err, RpEvalError) and err.key:
        return Said(err.key, **err.values)
    return str(err)


class RpEvalError(ValueError):
    """A request that can not be done, with a message that names what is wrong.

    `RpEvalError("text")` as before, or `RpEvalError(key="err_...", **values)` for a message the UI translates.
    """

    def __init__(self, message: str = "", *, key: str = "", **values: object) -> None:
        if key and key not in MESSAGES:
            raise KeyError(f"unknown error message key {key!r}")
        self.key = key
        self.values = values
        super().__init__(message or (format_message(key, values, MESSAGES) if key else ""))


def format_message(key: str, values: dict[str, object], table: dict[str, str], render=str) -> str:
    """`table[key]` (English where the table lacks it) with `values`; nested errors and `Said` messages (alone or
    in a tuple) go through `render`."""
    seps = {kind: table.get(f"sep_{kind}") or MESSAGES[f"sep_{kind}"] for kind in ("reasons", "list")}
    filled = {k: _filled(v, render, seps) for k, v in values.items()}
    return (table.get(key) or MESSAGES[key]).format(**filled)


def _filled(value: object, render, seps: dict[str, str]) -> object:
    # a nested error or message in the same language; a tuple of them (reasons) or a list (items of one reason) as
    # one text, joined by the language's separator
    if isinstance(value, tuple | list):
        sep = seps["reasons" if isinstance(value, tuple) else "list"]
        return sep.join(str(_filled(v, render, seps)) for v in value)
    return render(value) if isinstance(value, RpEvalError | Said) else value


def category(name: str) -> Said | str:
    """A meta-evaluation category as the page words it (a category of the user's own pairs file as it is)."""
    return Said(f"meta_cat_{name}") if f"meta_cat_{name}" in MESSAGES else name


def categories(names, shares: list[str] | None = None) -> Said:
    """Categories (with their shares, if given) as one message: joined by the language's separator."""
    if shares is None:
        return Said("meta_list", items=[category(n) for n in names])
    items = [Said("meta_share", category=category(n), share=v) for n, v in zip(names, shares, strict=True)]
    return Said("meta_list", items=items)
