"""lm-evaluation-harness itself (`lm_eval`, requirements-dev.txt) run against `python app.py` on the demo models,
eight requests at a time (`num_concurrent=8`: two run per client, six wait in its queue, none is refused), on two
tiny tasks defined here from local JSON files (no data set download: HF_HUB_OFFLINE=1, `dataset_path: json` with
`data_files`):
- a multiple-choice task through `local-completions`: loglikelihood requests (token ids, echo, logprobs) scored
  with the demo model's own tokenizer; each choice's log-likelihood must equal a direct forward pass of the same
  model loaded here, and the accuracy what those numbers give;
- a generate_until task through `local-chat-completions` (`--apply_chat_template`): each generation must be the
  greedy reply the API gives to the same chat, and the task must report its exact-match score.
lm-eval aborts a run when a request fails after its retries, so results at all mean every request was answered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import lm_eval  # noqa: F401  (requirements-dev.txt: a missing install fails here, it is not skipped)
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import running_app

MODEL = "demo-llama-a"
CHOICE_DOCS = [
    {"question": "小夜: 雨の日は", "choices": ["本を読みます。", "海で泳ぎます。", "空を飛びます。"], "answer": 0},
    {"question": "ユーザー: おすすめの本は？\n小夜:", "choices": ["詩集です。", "わかりません。"], "answer": 0},
    {"question": "小夜: いらっしゃいませ。", "choices": ["傘はそこへ。", "さようなら。", "こんにちは。"], "answer": 2},
    {"question": "ユーザー: 紅茶は好き？\n小夜:", "choices": ["はい、とても。", "いいえ。"], "answer": 0},
]
GEN_DOCS = [
    {"prompt": "小夜として一言で挨拶してください。", "answer": "いらっしゃいませ。"},
    {"prompt": "雨の日に読む本をひとつ挙げてください。", "answer": "詩集"},
    {"prompt": "好きな飲み物は？", "answer": "紅茶"},
    {"prompt": "お店の名前を教えてください。", "answer": "古本屋"},
    {"prompt": "今日の天気はどうですか？", "answer": "雨"},
    {"prompt": "港には何が見えますか？", "answer": "漁船"},
    {"prompt": "閉店は何時ですか？", "answer": "六時"},
    {"prompt": "最近読んだ本の感想を聞かせてください。", "answer": "面白かった"},
]  # eight: lm-eval's num_concurrent=8 sends them all at once


def _task(folder, name: str, docs: list[dict], spec: str) -> None:
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    head = f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
    (folder / f"{name}.yaml").write_text(head + spec, encoding="utf-8")


@pytest.fixture(scope="module")
def setup(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_eval")
    shutil.copytree(demo_build, root / "workspace")
    tasks = root / "tasks"
    tasks.mkdir()
    _task(
        tasks,
        "rp_choice_tiny",
        CHOICE_DOCS,
        "output_type: multiple_choice\ndoc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: '{{answer}}'\ntarget_delimiter: ' '\nmetric_list:\n  - metric: acc\n",
    )
    _task(
        tasks,
        "rp_reply_tiny",
        GEN_DOCS,
        "output_type: generate_until\ndoc_to_text: '{{prompt}}'\ndoc_to_target: '{{answer}}'\n"
        "generation_kwargs:\n  until: ['\\n\\n']\n  max_gen_toks: 12\n  do_sample: false\n  temperature: 0\n"
        "metric_list:\n  - metric: exact_match\n",
    )
    with running_app(root / "workspace", root / "app.log", env={"RP_EVAL_API_KEY": ""}) as url:
        yield url, root


def _lm_eval(root, model: str, model_args: dict, task: str, *extra: str) -> tuple[dict, list[dict]]:
    """`python -m lm_eval` as a user runs it; its results and logged samples."""
    out = root / f"out-{task}"
    args = ",".join(f"{k}={v}" for k, v in model_args.items())
    command = [sys.executable, "-m", "lm_eval", "--model", model, "--model_args", args, "--tasks", task]
    command += ["--include_path", str(root / "tasks"), "--output_path", str(out), "--log_samples", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(root / "hf")}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    (results,) = out.rglob("results_*.json")
    (samples,) = out.rglob(f"samples_{task}_*.jsonl")
    lines = samples.read_text(encoding="utf-8").splitlines()
    return json.loads(results.read_text(encoding="utf-8")), [json.loads(line) for line in lines]


def test_lm_eval_multiple_choice_through_local_completions(setup):
    url, root = setup
    folder = root / "workspace" / "models" / "demo" / MODEL
    args = {
        "model": MODEL,
        "base_url": f"{url}/v1/completions",
        "num_concurrent": 8,
        "max_retries": 1,
        "tokenizer_backend": "huggingface",
        "tokenizer": folder,
        "tokenized_requests": True,
    }
    results, samples = _lm_eval(root, "local-completions", args, "rp_choice_tiny")
    acc = results["results"]["rp_choice_tiny"]["acc,none"]
    assert len(samples) == len(CHOICE_DOCS)
    # the same numbers from a forward pass here: lm-eval tokenises context and continuation with the model's
    # tokenizer and sends the ids; each choice's score is the sum of the continuation's token log-probabilities
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    right = 0
    for sample in sorted(samples, key=lambda s: s["doc_id"]):
        doc = CHOICE_DOCS[sample["doc_id"]]
        direct = []
        for choice in doc["choices"]:
            whole = tok(doc["question"] + " " + choice)["input_ids"]
            context = tok(doc["question"])["input_ids"]
            context_ids, continuation = whole[: len(context)], whole[len(context) :]
            if context_ids != context:  # lm-eval splits at the context's own tokens the same way
                context_ids, continuation = context, tok(" " + choice, add_special_tokens=False)["input_ids"]
            ids = context_ids + continuation
            with torch.inference_mode():
                logp = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
            direct.append(sum(float(logp[i - 1, ids[i]]) for i in range(len(context_ids), len(ids))))
        served = [float(r[0][0]) for r in sample["resps"]]
        assert served == pytest.approx(direct, abs=2e-3), (doc, served, direct)
        right += max(range(len(direct)), key=direct.__getitem__) == doc["answer"]
    assert acc == pytest.approx(right / len(CHOICE_DOCS))


def test_lm_eval_generate_until_through_local_chat_completions(setup):
    import httpx

    url, root = setup
    args = {"model": MODEL, "base_url": f"{url}/v1/chat/completions", "num_concurrent": 8, "max_retries": 1}
    results, samples = _lm_eval(root, "local-chat-completions", args, "rp_reply_tiny", "--apply_chat_template")
    assert "exact_match,none" in results["results"]["rp_reply_tiny"]
    assert len(samples) == len(GEN_DOCS)
    assert any(sample["resps"][0][0].strip() for sample in samples), samples  # replies, not empty strings
    for sample in samples:
        doc = GEN_DOCS[sample["doc_id"]]
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": doc["prompt"]}],
            "max_tokens": 12,
            "temperature": 0,
            "stop": ["\n\n"],
        }
        direct = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).json()
        assert sample["resps"][0][0] == direct["choices"][0]["message"]["content"], (sample["resps"], direct)
