"""Fixtures: tiny tokenizers and models built on the spot, a fresh workspace per test, no hub access."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import contextlib  # noqa: E402
import inspect  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from rp_eval import store  # noqa: E402
from rp_eval.models import demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Markers for a fast inner loop (`pytest -m "not browser and not server"`), given by what a test uses: its own
# source and that of every fixture it pulls in (pytest has no public API for the latter, hence _fixtureinfo).
BROWSER_SIGNS = ("sync_playwright", "browser_page(")
SERVER_SIGNS = ("running_app(", '"app.py"')


def _sources(item: pytest.Item) -> str:
    functions = [getattr(item, "function", None)]
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        functions += [d.func for d in definitions]
    texts = []
    for function in functions:
        with contextlib.suppress(TypeError, OSError):
            texts.append(inspect.getsource(function))
    return "\n".join(texts)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        text = _sources(item)
        browser = any(sign in text for sign in BROWSER_SIGNS)
        if browser:
            item.add_marker(pytest.mark.browser)
        if browser or any(sign in text for sign in SERVER_SIGNS):
            item.add_marker(pytest.mark.server)


def use_workspace(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RP_EVAL_HOME", str(path))
    store._open.cache_clear()
    return path


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace (database and model folders) for one test."""
    yield use_workspace(tmp_path / "workspace", monkeypatch)
    store._open.cache_clear()


@pytest.fixture(scope="session")
def tokenizer():
    """A byte-level BPE tokenizer trained on the demo corpus, with <s> </s> <unk> <pad> and a chat template."""
    texts = [m["content"] for conv in demo.conversations_as_messages(demo.load_corpus()) for m in conv]
    return demo.train_tokenizer(texts, vocab_size=600)


def save_tiny(folder: Path, tokenizer, architecture: str = "llama", seed: int = 0, **shape) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    dims = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,  # as the demo models: persona prompts are 400-700 tokens
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    dims.update(shape)
    model = (
        LlamaForCausalLM(LlamaConfig(**dims))
        if architecture == "llama"
        else MistralForCausalLM(MistralConfig(sliding_window=128, **dims))
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, tokenizer) -> Path:
    """A folder with a tiny random-weight Llama model and the test tokenizer."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama", tokenizer)


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory, tokenizer) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-mistral", tokenizer, architecture="mistral")


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory) -> Path:
    """A workspace with the real demo models, installed once for the whole test session from the build the
    repository ships (prompts/demo/models: seconds; trained only if that build is not of the current recipe)."""
    path = tmp_path_factory.mktemp("demo") / "workspace"
    mp = pytest.MonkeyPatch()
    use_workspace(path, mp)
    # Developers changing the recipe may point RP_EVAL_DEMO_CACHE at a workspace whose demo build is current, to
    # skip training it again; its fingerprint is checked.
    cached = Path(os.environ.get("RP_EVAL_DEMO_CACHE", "/nonexistent")) / "models" / "demo"
    if (cached / "READY").exists():
        shutil.copytree(cached, demo.demo_dir(), dirs_exist_ok=True)
    demo.build_demo_models()
    store.get_store().engine.dispose()  # everything on disk before tests copy the folder
    mp.undo()
    store._open.cache_clear()
    return path


def demo_copy_with(demo_build: Path, root: Path, tokenizer, name: str, **shape) -> Path:
    """A copy of the demo workspace under `root` with one more registered model: a random-weight tiny Llama
    (`shape` as save_tiny's); its folder lies in the workspace. Returns the workspace."""
    workspace = root / "workspace"
    shutil.copytree(demo_build, workspace)
    mp = pytest.MonkeyPatch()
    use_workspace(workspace, mp)
    from rp_eval.models import registry

    registry.add_model(str(save_tiny(workspace / "models" / name, tokenizer, seed=5, **shape)), name=name)
    store.get_store().engine.dispose()
    mp.undo()
    store._open.cache_clear()
    return workspace


@pytest.fixture
def demo_workspace(demo_build, tmp_path) -> Path:
    """A workspace of this test's own with the demo models registered (a copy of the session's build, so what
    one test registers or rates is not seen by the next)."""
    path = tmp_path / "demo-workspace"
    shutil.copytree(demo_build, path)
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(workspace: Path, log_path: Path, *args: str, env: dict | None = None):
    """`python app.py ARGS` on a free port over `workspace`, until the block ends; yields its URL."""
    port = free_port()
    full_env = {**os.environ, "RP_EVAL_HOME": str(workspace), "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("RP_EVAL_MODELS", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError:  # up, but asks for a login
                break
            except OSError:
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.5)
        else:
            pytest.fail("the app did not start in 120 s:\n" + log_path.read_text())
        try:
            yield url
        finally:
            proc.terminate()  # uvicorn waits for open browser connections; don't wait for long
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def app_url(demo_workspace, tmp_path):
    """The app (`python app.py`) on a free port over the demo workspace; its URL."""
    with running_app(demo_workspace, tmp_path / "app.log") as url:
        yield url


@pytest.fixture
def page():
    """A page of headless Debian Chromium (1280x900)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


POSTGRES_URL = os.environ.get("RP_EVAL_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """An empty database of each supported kind. PostgreSQL comes from RP_EVAL_TEST_POSTGRES_URL
    (`.ci/run` starts a server and sets it); without it the PostgreSQL case is skipped, except in CI."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must test PostgreSQL: RP_EVAL_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set RP_EVAL_TEST_POSTGRES_URL to test the store on one)")
    from sqlalchemy import create_engine

    engine = create_engine(POSTGRES_URL)
    with engine.begin() as c:  # a clean schema for every test
        c.exec_driver_sql("DROP SCHEMA public CASCADE")
        c.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    store._open.cache_clear()
    return POSTGRES_URL
