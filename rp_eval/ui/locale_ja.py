"""The Japanese column of the UI strings (`rp_eval/ui/locale.py` has the English one and the machinery)."""

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
    # -- Evaluate tab: past runs, heat map, number checks (rp_eval/ui/evaluate_tab.py, rp_eval/ui/numbers.py) --
    "ev_past": "過去の評価（ワークスペースに保存済み）",
    "ev_runs": "保存された実行（新しい順、モデルと設定の組ごとに 1 行）",
    "ev_pick": "表示する実行（ページを開くと、各モデルの最新の完了済み実行が選ばれます）",
    "ev_open": "選んだ実行を表示",
    "ev_pick_runs": "表示する実行を 1 つ以上選んでください。",
    "ev_no_runs": "保存された評価はまだありません。上でモデルを選び、**評価を実行** を押してください。",
    "ev_run_label": "#{run} · {model} · {status} · 応答 {replies} 件 · {when} · 温度 {temperature} · シード {seed}",
    "ev_reopened": "保存済みの実行 **{runs}** 件を表示中：応答 {replies} 件を現在の重みで採点しました（タスク版 `{version}`）。",
    "ev_not_started": "未開始",
    "ev_group": "表示する指標",
    "ev_group_all": "すべて",
    "ev_group_ending": "応答の終わり方",
    "ev_group_length": "長さ",
    "ev_group_leakage": "漏れ",
    "ev_group_japanese": "日本語",
    "ev_group_character": "キャラクター",
    "ev_heatmap_scale": "1 が良い側（漏れなし = 1）",
    "ev_detail_turns": "**この応答が答えている会話**",
    "num_missing": "**{field}** が空です。数値を入力してください。",
    "num_not_number": "**{field}**：`{value}` は数値ではありません。",
    "num_not_whole": "**{field}** は整数で入力してください（入力値 {value}）。",
    "num_too_small": "**{field}** は {low} 以上にしてください（入力値 {value}）。",
    "num_too_large": "**{field}** は {high} 以下にしてください（入力値 {value}）。",
    # -- Fine-tune tab: the run's plan and its stop check (rp_eval/ui/finetune_tab.py) --
    "ft_plan": (
        "**この設定での学習：最適化ステップ {steps} 回**（1 エポックあたり {per_epoch} 回）。会話 {conversations} 件のうち "
        "{train} 件で学習し、{held} 件を評価損失用に取り分けます。ウォームアップは {warmup} ステップ。学習後、アダプタと"
        "ベースモデルが評価タスクのプロンプト {checks} 件に応答し、自分で応答を終えられる割合を比べます。"
    ),
    "ft_eval_fraction_loss": "取り分ける割合（評価損失用）",
    "ft_stop_caption": "学習前と学習後（評価タスクのプロンプト {prompts} 件）：",
    # -- Evolve tab: stop, plot, export folder (rp_eval/ui/evolve_tab.py) --
    "evo_no_run": "'{run}' という名前の進化的マージの実行はありません。",
    "evo_not_running": "実行 '{run}' は動いていません（状態：{status}、最良の適合度 {best}）。止めるものはありません。",
    "evo_running_elsewhere": "実行 '{run}' は別のプロセス（コマンドラインや別のサーバー）で動いています。そちらで止めてください。",
    "evo_series_best": "これまでの最良",
    "evo_series_mean": "世代の平均",
    "evo_axis_generation": "世代",
    "evo_axis_fitness": "適合度",
    "evo_export_folder": "レシピの保存先フォルダ（空欄：ワークスペースの merges/、相対パスはワークスペース内）",
    "evo_exported_to": "`{path}` を書き出し、**{name}** を登録しました。チャットと人手評価のタブですぐに使えます。",
    # -- Models, Merge, Rate and Leaderboard tabs: smaller fixes --
    "format_when_loaded": "auto（初回の読み込み時に決定）",
    "rate_missing_scores": "次の項目に 1〜5 の点をつけてください：{axes}。",
    "demo_banner_built": (
        "**オフラインのデモモデルです。** `demo-llama-a`・`demo-llama-b`・`demo-mistral` は約 100 万パラメータの極小モデルで、"
        "アプリの初回起動時にこのマシンで、小さな日本語ロールプレイコーパスを使って学習しました（最適化ステップ {steps} 回、"
        "{seconds} 秒）。ネットワークも GPU もなしにアプリ全体を試せます。小さすぎて日本語はぎこちないので、実際の研究には"
        "下で本物のモデル（Hugging Face の ID かフォルダ）を登録してください。"
    ),
    "demo_banner_plain": (
        "**オフラインのデモモデルです。** `demo-llama-a`・`demo-llama-b`・`demo-mistral` は、小さな日本語ロールプレイ"
        "コーパスで短時間だけ学習した約 100 万パラメータの極小モデルで、ネットワークも GPU もなしにアプリ全体を試せます。"
        "小さすぎて日本語はぎこちないので、実際の研究には下で本物のモデル（Hugging Face の ID かフォルダ）を登録してください。"
    ),
}
