"""Tiny demo models, built once into the workspace so the whole app works offline and on a CPU.

They are toys (a few million parameters, trained a few minutes on `prompts/demo/corpus.jsonl`): enough that
chat shows Japanese role-play text and replies end by themselves, nothing more. The repository ships this recipe's
build (`prompts/demo/models/`, see `demo_ship`), which a first start copies in seconds; with no shipped build of
the current recipe, the first start trains them here. All five share one byte-level BPE tokenizer with real
`<s>`, `</s>`, `<unk>`, `<pad>` tokens and a Llama-2 chat template. The seed demos (`DEMOS`, fingerprint in READY):
- `demo-llama-a`: a Llama-architecture model trained on the whole corpus;
- `demo-llama-b`: `demo-llama-a` trained further on the polite and old-fashioned characters (same shapes,
  so the two can merge);
- `demo-mistral`: a Mistral-architecture model trained from scratch (a second family).
The finding demos (`FINDINGS`, fingerprint in READY-findings), continued from those, reproduce the seed research's
problems so the app can be seen fixing them:
- `demo-llama-eos`: trained with its end marker written as text, it prints `</s>` and keeps going;
- `demo-mistral-long`: trained on long monologues whose end token was cut off, it runs into the cap mid-sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rp_eval import settings
from rp_eval.chat.formats import Message
from rp_eval.models.demo_train import (  # noqa: F401  (LLAMA2_TEMPLATE: used as demo.LLAMA2_TEMPLATE)
    LLAMA2_TEMPLATE,
    SHAPE,
    end_as_text_examples,
    make_model,
    train,
    train_tokenizer,
    training_examples,
)

# torch is imported where it is used: the first start's page must not wait for it
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "prompts" / "demo" / "corpus.jsonl"
LONG_CORPUS = ROOT / "prompts" / "demo" / "corpus_long.jsonl"  # long monologues of the same characters
FINETUNE_SET = ROOT / "prompts" / "finetune" / "roleplay_ja.jsonl"  # the Fine-tune tab's default data
BUILD_VERSION = 4  # bump when the recipe below changes, so old builds are replaced (2: 2048 positions; 3: batches
# of similar length, the head on reply tokens only; 4: 860 steps instead of 1,000, for a margin under 90 s)

# First start on a fresh clone, 2 busy CPU cores (measured, see README): from `python app.py` to the app's page.
FIRST_START_SHIPPED_S = 13
FIRST_START_TRAINED_MIN = 20  # 705 s for the seed demos (860 steps), 510 s for the finding demos (200), 2 busy cores


@dataclass(frozen=True)
class DemoSpec:
    name: str
    architecture: str  # "llama" | "mistral"
    steps: int
    start_from: str = ""  # another demo model to continue from
    styles: tuple[str, ...] = ()  # train only on these corpus styles (empty: all)
    notes: str = ""


DEMOS = [
    # Steps: 1,000 in all built in 86-90 s on 2 quiet cores (2026-11-30), right at the 90 s a first start may
    # take; 860 leave a margin, and replies still end by themselves (24 of 24 sampled replies reached </s>).
    DemoSpec("demo-llama-a", "llama", 360, notes="tiny demo model (Llama architecture), trained on the demo corpus"),
    DemoSpec(
        "demo-llama-b",
        "llama",
        140,
        start_from="demo-llama-a",
        styles=("polite", "archaic", "calm", "shy"),
        notes="tiny demo model: demo-llama-a trained further on the polite characters; merges with demo-llama-a",
    ),
    DemoSpec("demo-mistral", "mistral", 360, notes="tiny demo model (Mistral architecture), a second family"),
]


@dataclass(frozen=True)
class FindingSpec(DemoSpec):
    """A demo model that shows one of the seed research's findings (DESIGN.md), continued from a seed demo."""

    sets: tuple[str, ...] = ("corpus",)  # the data it trains on: keys of SETS
    end_as_text: bool = False  # the end marker written as text and more replies after it (the seed's mistake)
    cut_replies: int = 0  # > 0: each reply cut to this many tokens, its end id with it (as truncating an example does)
    lr: float = 1e-3
    batch_size: int = 16


SETS = {"corpus": CORPUS, "long": LONG_CORPUS, "finetune": FINETUNE_SET}
FINDINGS_VERSION = 1  # bump when the finding demos' recipe changes
FINDINGS_READY = "READY-findings"  # their fingerprint; the seed demos' is in READY
FINDINGS_BUILD = "BUILD-findings.json"
FINDINGS = [
    FindingSpec(
        "demo-llama-eos",
        "llama",
        80,
        start_from="demo-llama-a",
        sets=("corpus", "finetune"),
        end_as_text=True,
        notes="tiny demo model: demo-llama-a trained further with its end marker written as text, as the seed's "
        "japanese-stablelm-instruct-beta-7b was: it prints </s> and keeps going; the Fine-tune tab teaches it to stop",
    ),
    FindingSpec(
        "demo-mistral-long",
        "mistral",
        120,
        start_from="demo-mistral",
        sets=("long",),
        cut_replies=112,
        batch_size=8,
        notes="tiny demo model: demo-mistral trained further on long monologues cut at 112 tokens, their end token "
        "with them: its replies run past 64 tokens and are cut mid-sentence at the cap, as the seed's gamma models were",
    ),
]
ALL_DEMOS = DEMOS + FINDINGS
# Fine-tune settings a demo model is registered with (the Fine-tune tab and `rp-eval finetune run` start from them):
# LoRA at the default 2e-4 barely moves a model this small in the default 40 steps (loss 4.97 -> 4.57, natural
# stops 3% -> 3%, measured); at 1e-2 demo-llama-eos learns to stop (3% -> 50-78% over four runs; 2e-2 and 3e-2
# gave 66% and 69%). Not part of the fingerprint: the weights do not depend on it.
FINETUNE_SUGGESTED = {"demo-llama-eos": {"learning_rate": 1e-2}}


def load_corpus(path: Path = CORPUS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def conversations_as_messages(corpus: list[dict]) -> list[list[Message]]:
    return [[{"role": "system", "content": c["system"]}, *c["messages"]] for c in corpus]


def finding_conversations(spec: FindingSpec) -> list[list[Message]]:
    conversations: list[list[Message]] = []
    for name in spec.sets:
        rows = load_corpus(SETS[name])
        # the demo corpora keep the persona in "system"; the fine-tuning set has it as the first message
        conversations += [r["messages"] if "system" not in r else conversations_as_messages([r])[0] for r in rows]
    return conversations


def finding_examples(tokenizer, spec: FindingSpec, rng: random.Random) -> list[tuple[list[int], list[int]]]:
    conversations = finding_conversations(spec)
    if spec.end_as_text:
        return end_as_text_examples(tokenizer, conversations, rng)
    examples = training_examples(tokenizer, conversations)
    if spec.cut_replies:  # the reply starts at the first label; everything past the cut goes, the end id included
        examples = [
            (x[: _first_label(y) + spec.cut_replies], y[: _first_label(y) + spec.cut_replies]) for x, y in examples
        ]
    return examples


def _first_label(labels: list[int]) -> int:
    return next(i for i, y in enumerate(labels) if y != -100)


def _fingerprint() -> str:
    """The seed demos' recipe (`READY`)."""
    h = hashlib.sha256(CORPUS.read_bytes())
    h.update(json.dumps([BUILD_VERSION, SHAPE, [d.__dict__ for d in DEMOS]], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _findings_fingerprint() -> str:
    """The finding demos' recipe (`READY-findings`): theirs, the data they read, and the seed demos they continue."""
    h = hashlib.sha256(_fingerprint().encode())
    for path in sorted({SETS[name] for spec in FINDINGS for name in spec.sets}):
        h.update(path.read_bytes())
    h.update(json.dumps([FINDINGS_VERSION, [d.__dict__ for d in FINDINGS]], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def demo_dir() -> Path:
    return settings.models_dir() / "demo"


def build_info() -> dict:
    """How the seed demo models were built here: {"seconds", "steps", "cpu_threads"}; {} when unknown."""
    try:
        return json.loads((demo_dir() / "BUILD.json").read_text())
    except (OSError, ValueError):
        return {}


def _marker_is(path: Path, fingerprint: str) -> bool:
    return path.exists() and path.read_text().strip() == fingerprint


def _seed_ready() -> bool:
    return _marker_is(demo_dir() / "READY", _fingerprint())


def demos_ready() -> bool:
    return _seed_ready() and _marker_is(demo_dir() / FINDINGS_READY, _findings_fingerprint())


def _train_here() -> bool:
    """RP_EVAL_DEMO_TRAIN=1 trains the demo models on this machine even where the repository ships them."""
    return os.environ.get("RP_EVAL_DEMO_TRAIN", "") not in ("", "0")


def first_start_plan() -> str:
    """What a first start with no demo build in the workspace does, for the terminal (measured figures)."""
    from rp_eval.models import demo_ship

    if demo_ship.shipped_ready() and not _train_here():
        return f"copying the shipped demo models into the workspace (ready in about {FIRST_START_SHIPPED_S} s)"
    return f"training the tiny offline demo models here (about {FIRST_START_TRAINED_MIN} minutes on 2 CPU cores)"


def build_demo_models(progress: Callable[[str, int, int], None] | None = None) -> list[str]:
    """Build the demo models (once; later calls return at once) and register them. Returns their names.

    Everything is written to a temporary folder and moved into place at the end, so an interrupted
    build leaves nothing half-written behind and is simply redone at the next start. A workspace whose seed demos
    are current but that lacks the finding demos (built before they existed) gets only those added.
    """
    from rp_eval.models import registry

    if not demos_ready():
        from rp_eval.models import demo_ship

        shipped = demo_ship.shipped_ready() and not _train_here()  # this recipe's build: seconds, not minutes
        if not _seed_ready():
            if shipped:
                tmp = _fresh_tmp()
                demo_ship.install(tmp, progress)
                _put_in_place(tmp)
            else:
                _build(progress)
        elif shipped:
            tmp = _fresh_tmp()
            demo_ship.install(tmp, progress, specs=FINDINGS)
            _add_in_place(tmp)
        else:
            _build_findings(progress)
    for spec in ALL_DEMOS:
        if registry.get_store().get_model(spec.name) is None:
            registry.add_model(
                str(demo_dir() / spec.name),
                spec.name,
                kind="demo",
                parents=[spec.start_from] if spec.start_from else [],
                made_by={
                    "demo": f"trained {spec.steps} steps on {', '.join(_set_paths(spec))}",
                    "styles": list(spec.styles),
                    **({"finetune": FINETUNE_SUGGESTED[spec.name]} if spec.name in FINETUNE_SUGGESTED else {}),
                },
                notes=spec.notes,
            )
    return [d.name for d in ALL_DEMOS]


def suggested_finetune(name: str) -> dict:
    """The fine-tune settings a registered model suggests for itself ({} for most models)."""
    from rp_eval.models import registry

    row = registry.get_store().get_model(name) if name else None
    return dict((row.made_by or {}).get("finetune", {})) if row is not None else {}


def _set_paths(spec: DemoSpec) -> list[str]:
    names = spec.sets if isinstance(spec, FindingSpec) else ("corpus",)
    return [str(SETS[n].relative_to(ROOT)) for n in names]


def _build(progress: Callable[[str, int, int], None] | None) -> None:
    """Train every demo model from the corpus (the seed demos, then the finding demos) and put them in place."""
    import torch

    began = time.perf_counter()
    corpus = load_corpus()
    conversations = conversations_as_messages(corpus)
    texts = [m["content"] for conv in conversations for m in conv]
    tokenizer = train_tokenizer(texts)
    tmp = _fresh_tmp()
    total = sum(d.steps for d in ALL_DEMOS)
    built: dict = {}
    done = 0
    for spec in DEMOS:
        subset = [
            c for c, raw in zip(conversations, corpus, strict=True) if not spec.styles or raw["style"] in spec.styles
        ]
        _train_one(spec, training_examples(tokenizer, subset), tokenizer, tmp, built, progress, done, total)
        done += spec.steps
    info = {"seconds": round(time.perf_counter() - began), "steps": done, "cpu_threads": torch.get_num_threads()}
    (tmp / "BUILD.json").write_text(json.dumps(info))
    (tmp / "READY").write_text(_fingerprint())
    _train_findings(tokenizer, tmp, built, progress, done, total)
    _put_in_place(tmp)


def _build_findings(progress: Callable[[str, int, int], None] | None) -> None:
    """Train the finding demos from the seed demos already in the workspace, and add them there."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = _fresh_tmp()
    tokenizer = AutoTokenizer.from_pretrained(demo_dir() / DEMOS[0].name)
    built = {
        s.start_from: AutoModelForCausalLM.from_pretrained(demo_dir() / s.start_from, dtype="float32") for s in FINDINGS
    }
    _train_findings(tokenizer, tmp, built, progress, 0, sum(d.steps for d in FINDINGS))
    _add_in_place(tmp)


def _train_findings(tokenizer, tmp: Path, built: dict, progress, done: int, total: int) -> None:
    import torch

    began = time.perf_counter()
    for i, spec in enumerate(FINDINGS):
        examples = finding_examples(tokenizer, spec, random.Random(i))
        _train_one(spec, examples, tokenizer, tmp, built, progress, done, total)
        done += spec.steps
    info = {
        "seconds": round(time.perf_counter() - began),
        "steps": sum(d.steps for d in FINDINGS),
        "cpu_threads": torch.get_num_threads(),
    }
    (tmp / FINDINGS_BUILD).write_text(json.dumps(info))
    (tmp / FINDINGS_READY).write_text(_findings_fingerprint())


def _train_one(spec: DemoSpec, examples, tokenizer, tmp: Path, built: dict, progress, done: int, total: int) -> None:
    """Train one demo model (from scratch, or from the one it continues) and save it with the tokenizer in `tmp`."""
    if spec.start_from:
        model = type(built[spec.start_from])(built[spec.start_from].config)
        model.load_state_dict(built[spec.start_from].state_dict())
    else:
        model = make_model(spec.architecture, len(tokenizer), tokenizer, seed=len(built))
    start = time.perf_counter()

    def step(i: int, loss: float) -> None:
        if progress:
            progress(f"{spec.name} loss {loss:.2f}", done + i + 1, total)

    extra = {"lr": spec.lr, "batch_size": spec.batch_size} if isinstance(spec, FindingSpec) else {}
    train(model, examples, spec.steps, tokenizer.pad_token_id, seed=len(built), on_step=step, **extra)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp / spec.name)
    tokenizer.save_pretrained(tmp / spec.name)
    (tmp / spec.name / "DEMO.md").write_text(
        f"# {spec.name}\n\n{spec.notes}.\nA tiny model for trying rp_eval offline; trained "
        f"{spec.steps} steps in {time.perf_counter() - start:.0f} s. Not a real chat model.\n",
        encoding="utf-8",
    )
    built[spec.name] = model


def _fresh_tmp() -> Path:
    tmp = demo_dir().with_name("demo.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _put_in_place(tmp: Path) -> None:
    """Move a finished build from `tmp` to the demo folder, replacing an old build and its registry entries."""
    from rp_eval.models import registry

    final = demo_dir()
    for spec in ALL_DEMOS:  # a rebuilt demo replaces the old registry entries
        if registry.get_store().get_model(spec.name) is not None:
            registry.get_store().remove_model(spec.name)
    old = final.with_name("demo.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _add_in_place(tmp: Path) -> None:
    """Move finished finding demos from `tmp` into the demo folder beside the seed demos; the marker goes last."""
    from rp_eval.models import registry

    final = demo_dir()
    (final / FINDINGS_READY).unlink(missing_ok=True)
    for spec in FINDINGS:
        if registry.get_store().get_model(spec.name) is not None:
            registry.get_store().remove_model(spec.name)
        shutil.rmtree(final / spec.name, ignore_errors=True)
        (tmp / spec.name).rename(final / spec.name)
    (tmp / FINDINGS_BUILD).replace(final / FINDINGS_BUILD)
    (tmp / FINDINGS_READY).replace(final / FINDINGS_READY)
    shutil.rmtree(tmp, ignore_errors=True)
