"""`dianjin eval --model-dir`: in-process batched generation (`dianjin.eval.local`) on the tiny model.

Against an endpoint run (the loopback fake server) the rows, the summary and the fingerprint have
the same shape; resuming generates nothing twice; the settings fingerprint refuses another model
directory in the same run directory; greedy (and, in the same batches, sampled) outputs repeat;
finish reasons and token counts are those of the model; the CLI's errors are clear. Also
`generate_chat`, the synchronous helper `dianjin mine` samples with.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from dianjin.cli import main as cli
from dianjin.data.synthetic import fincalc
from dianjin.eval import backends
from dianjin.eval.backends import HFModel, plan_batches
from dianjin.eval.local import LocalEngine, generate_chat
from dianjin.eval.run import EvalConfig, run_eval
from dianjin.eval.summarize import load_rows
from dianjin.llm.client import ChatRequest, EndpointConfig
from dianjin.model.tiny import build_tiny

ITEMS = 4
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("local") / "tiny")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    fincalc.write_jsonl(fincalc.generate(ITEMS, seed=3), root / "fincalc" / "test.jsonl")
    return root


def local_run(tiny: Path, data: Path, out: Path, **over) -> dict:
    cfg = {
        "output_dir": out,
        "tasks": ["fincalc"],
        "model_dir": tiny,
        "data_dir": data,
        "max_tokens": MAX_TOKENS,
        "progress": False,
        **over,
    }
    return run_eval(EvalConfig(**cfg))


def rows(out: Path) -> dict[str, dict]:
    return load_rows(out / "samples" / "fincalc.jsonl")


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """Prompts sent to HF's continuous batching, per stream (one stream per sampling parameters)."""
    calls: list[int] = []
    stream = HFModel.stream

    def counting(self, prompts, **kw):
        calls.append(len(prompts))
        return stream(self, prompts, **kw)

    monkeypatch.setattr(HFModel, "stream", counting)
    return calls


# --- the same run directory as through an endpoint ------------------------------------------------------
def test_rows_summary_and_fingerprint_match_an_endpoint_run(tiny, data, tmp_path):
    with FakeOpenAI(model=str(tiny)) as srv:
        endpoint = EndpointConfig(base_url=srv.base_url, model=str(tiny))
        http = run_eval(
            EvalConfig(
                output_dir=tmp_path / "http",
                tasks=["fincalc"],
                endpoint=endpoint,
                data_dir=data,
                max_tokens=MAX_TOKENS,
                progress=False,
            )
        )
        sent = [r["json"] for r in srv.requests]
    here = local_run(tiny, data, tmp_path / "local")
    h, lo = rows(tmp_path / "http"), rows(tmp_path / "local")
    assert set(h) == set(lo) and len(lo) == ITEMS
    for key in lo:  # same row schema, same prompts
        assert set(lo[key]) == set(h[key]) and set(lo[key]["tokens"]) == set(h[key]["tokens"])
        assert lo[key]["prompt"] == h[key]["prompt"]
        assert lo[key]["tokens"]["prompt"] > 0 and 1 <= lo[key]["tokens"]["completion"] <= MAX_TOKENS
        assert lo[key]["attempts"] == 1 and lo[key]["cached"] is False and lo[key]["error"] is None
    assert sorted(json.dumps(b["messages"], sort_keys=True) for b in sent) == sorted(
        json.dumps(r["prompt"], sort_keys=True) for r in lo.values()
    )
    assert set(here) == set(http) and set(here["tasks"]["fincalc"]) == set(http["tasks"]["fincalc"])
    assert set(here["settings"]) == set(http["settings"]) and here["settings"]["model"] == str(tiny)
    fingerprints = [s["settings"]["tasks"]["fincalc"]["fingerprint"] for s in (http, here)]
    assert fingerprints[0] == fingerprints[1]  # `dianjin serve DIR` names the model str(DIR) too
    assert {b["max_tokens"] for b in sent} == {MAX_TOKENS}


# --- resume, fingerprint --------------------------------------------------------------------------------
def test_resume_generates_only_the_missing_rows(tiny, data, tmp_path, counted):
    out = tmp_path / "run"
    local_run(tiny, data, out, batch_size=3)
    assert counted == [ITEMS]  # one stream: 3 rows at a time, a queued prompt joins as one leaves
    first = rows(out)
    local_run(tiny, data, out, batch_size=3)
    assert counted == [ITEMS] and rows(out) == first  # a re-run generates nothing
    lines = (out / "samples" / "fincalc.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (out / "samples" / "fincalc.jsonl").write_text("".join(lines[:2]) + lines[2][:30], encoding="utf-8")  # killed
    summary = local_run(tiny, data, out, batch_size=3)
    assert counted == [ITEMS, 2]  # only the two lost rows
    assert set(rows(out)) == set(first) and summary["tasks"]["fincalc"]["n"] == ITEMS


def test_another_model_dir_in_the_same_run_dir_is_refused(tiny, data, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(tiny, other)
    out = tmp_path / "run"
    local_run(tiny, data, out, limit=1)
    argv = [
        "eval",
        "run",
        "--model-dir",
        str(other),
        "--tasks",
        "fincalc",
        "--data-dir",
        str(data),
        "--output-dir",
        str(out),
        "--limit",
        "1",
        "--max-tokens",
        str(MAX_TOKENS),
        "--quiet",
    ]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "other settings (model differ)" in err and "new --output-dir" in err


# --- reproducibility, finish reasons ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "temperature",
    [
        0.0,  # greedy: never depends on the RNG
        0.6,  # sampled: the same requests in the same batches draw the same numbers
    ],
)
def test_outputs_repeat_across_runs(tiny, data, tmp_path, temperature):
    a = local_run(tiny, data, tmp_path / "a", temperature=temperature, batch_size=2)
    b = local_run(tiny, data, tmp_path / "b", temperature=temperature, batch_size=2)
    ra, rb = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert {k: r["response"] for k, r in ra.items()} == {k: r["response"] for k, r in rb.items()}
    assert (
        a["settings"]["tasks"]["fincalc"]["temperature"]
        == temperature
        == b["settings"]["tasks"]["fincalc"]["temperature"]
    )


def test_sampling_differs_from_greedy_and_between_seeds(tiny):
    msgs = [[{"role": "user", "content": f"营业收入 {i} 亿元"}] for i in range(3)]
    greedy = generate_chat(tiny, msgs, max_new_tokens=12, engine="transformers")
    s0, s0_again, s1 = (
        generate_chat(tiny, msgs, k=2, temperature=1.0, top_p=1.0, max_new_tokens=12, seed=s) for s in (0, 0, 1)
    )
    assert [len(g) for g in s0] == [2, 2, 2] and [len(g) for g in greedy] == [1, 1, 1]
    assert s0 == s0_again and s0 != s1  # pinned by the seed
    assert [g[0] for g in s0] != [g[0] for g in greedy]


def test_generate_chat_draws_what_train_common_generate_drew(tiny):
    """Mining switched to generate_chat: one batch with the same seed gives the same k answers."""
    import torch

    from dianjin.train.common import load_model, load_tokenizer
    from dianjin.train.generate import generate

    msgs = [[{"role": "user", "content": "债券 " * (i + 1)}] for i in range(3)]
    tok, model = load_tokenizer(str(tiny)), load_model(str(tiny))
    torch.manual_seed(7)
    old = generate(model, tok, msgs, max_new_tokens=10, temperature=1.0, top_p=0.95, k=3, batch_size=3)
    new = generate_chat(
        HFModel(model, tok), msgs, k=3, temperature=1.0, top_p=0.95, max_new_tokens=10, batch_size=3, seed=7
    )
    assert [[(g.text, g.tokens, g.truncated) for g in grp] for grp in old] == [[tuple(g) for g in grp] for grp in new]


def _segmented(hf: HFModel, monkeypatch, segment: int, **kw) -> tuple[list, list[int]]:
    """(completions, rows per `model.generate` call) of one batch generated `segment` tokens at a time."""
    calls: list[int] = []
    generate = hf.model.generate

    def counting(**gen_kw):
        calls.append(gen_kw["input_ids"].shape[0])
        return generate(**gen_kw)

    monkeypatch.setattr(hf.model, "generate", counting)
    hf.segment = segment
    try:
        return hf.generate(**kw), calls
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize(
    "stop, want_calls",
    [
        ("cap", [3, 3, 2, 1, 1]),  # max_model_len leaves 9, 6, 3 new tokens: rows leave after 4, 6 and 9 tokens
        ("eos", None),  # the longest prompt's first greedy token is an eos id: its row leaves after the first call
    ],
)
def test_segments_continue_the_cache_and_stopped_rows_leave(chatty, monkeypatch, stop, want_calls):
    import torch

    hf = HFModel(chatty().model, chatty().tok)
    prompts = [hf.encode([{"role": "user", "content": "债券 " * (i + 1)}]) for i in range(3)]  # 18, 21, 24 tokens
    if stop == "cap":
        hf.max_model_len = len(prompts[-1]) + 3
    else:
        with torch.inference_mode():
            hf.eos = sorted({*hf.eos, int(hf.model(torch.tensor([prompts[-1]])).logits[0, -1].argmax())})
    kw = {"prompts": prompts, "k": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 9, "seeds": [0]}
    whole, calls = _segmented(hf, monkeypatch, 100, **kw)
    assert calls == [3]  # one call: the whole answer at once
    parts, calls = _segmented(hf, monkeypatch, 2, **kw)
    assert parts == whole  # greedy: the same text, token counts and finish reasons
    assert calls == want_calls if want_calls else calls[0] == 3 and calls[1] <= 2
    assert whole[-1][0].completion_tokens == (3 if stop == "cap" else 1)
    assert len({c[0].text for c in whole}) == 3  # the rows' answers differ: each kept its own cache


def test_segments_with_k_samples_per_prompt(chatty, monkeypatch):
    hf = HFModel(chatty().model, chatty().tok)
    prompts = [hf.encode([{"role": "user", "content": "利率 " * (i + 1)}]) for i in range(2)]
    kw = {"prompts": prompts, "k": 3, "temperature": 1.0, "top_p": 1.0, "max_tokens": 7, "seeds": [5]}
    first, calls = _segmented(hf, monkeypatch, 3, **kw)
    again, _ = _segmented(hf, monkeypatch, 3, **kw)
    assert calls[0] == 6 and len(calls) == 3  # 2 prompts x 3 samples, expanded before the first call; 3+3+1 tokens
    assert first == again and [len(g) for g in first] == [3, 3]  # pinned by the seed
    assert all(
        c.completion_tokens <= 7 and (c.finish_reason == "length") == (c.completion_tokens == 7)
        for g in first
        for c in g
    )


def _chat(tiny: Path, max_tokens: int) -> tuple:
    async def go():
        async with LocalEngine(tiny, engine="transformers", progress=False) as llm:
            return await llm.map(
                [ChatRequest([{"role": "user", "content": "净利润是多少？"}], temperature=0.0, max_tokens=max_tokens)]
            )

    return asyncio.run(go())[0]


@pytest.mark.parametrize(
    "fault, want_errors",
    [
        ("too_long", {0: "leaves no room in max_model_len 40"}),  # the longest prompt alone fails, first
        ("second_call", {1: "RuntimeError: out of memory", 2: "RuntimeError"}),  # the rows not done yet fail
    ],
)
def test_failures_reach_only_the_requests_not_done(tiny, monkeypatch, fault, want_errors):
    msgs = [[{"role": "user", "content": "债券 " * n}] for n in (12, 2, 1)]  # the first the longest
    calls = []

    async def go():
        async with LocalEngine(tiny, engine="transformers", batch_size=1, progress=False) as llm:
            backend = await llm._load()
            if fault == "too_long":
                backend.max_model_len = 40  # the 12-word prompt takes more than 40 tokens, the others fewer
            else:
                generate = backend.model.generate

                def failing(**kw):
                    calls.append(kw["input_ids"].shape[0])
                    if len(calls) == 2:
                        raise RuntimeError("out of memory")
                    return generate(**kw)

                monkeypatch.setattr(backend.model, "generate", failing)
            return [
                (i, r)
                async for i, r in llm.iter_completed([ChatRequest(m, temperature=0.0, max_tokens=2) for m in msgs])
            ]

    got = asyncio.run(go())
    assert sorted(i for i, _ in got) == [0, 1, 2]  # every request gets a result
    errors = {i: r.error for i, r in got if r.error}
    assert set(errors) == set(want_errors) and all(w in errors[i] for i, w in want_errors.items())
    assert all(r.content and r.finish_reason == "length" for i, r in got if i not in errors)


@pytest.mark.parametrize(
    "eos_first, reason, tokens",
    [
        (False, "length", 3),  # max_tokens ran out: counted as a truncated answer
        (True, "stop", 1),  # the first greedy token is an eos id of generation_config: stop, eos counted
    ],
)
def test_finish_reason_and_token_counts(tiny, tmp_path, eos_first, reason, tokens):
    from transformers import AutoTokenizer

    model_dir = tiny
    if eos_first:  # make the greedy first token an end-of-sequence id of the model's generation_config
        import torch

        m = HFModel.load(tiny)
        with torch.inference_mode():
            logits = m.model(torch.tensor([m.encode([{"role": "user", "content": "净利润是多少？"}])])).logits
        first_id = int(logits[0, -1].argmax())
        model_dir = tmp_path / "eos"
        shutil.copytree(tiny, model_dir)
        gc = json.loads((model_dir / "generation_config.json").read_text())
        gc["eos_token_id"] = [gc["eos_token_id"], first_id]
        (model_dir / "generation_config.json").write_text(json.dumps(gc))
    res = _chat(model_dir, 3)
    tok = AutoTokenizer.from_pretrained(tiny)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "净利润是多少？"}], add_generation_prompt=True, tokenize=False
    )
    assert res.finish_reason == reason and res.truncated == (reason == "length") and res.completion_tokens == tokens
    assert res.prompt_tokens == len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert res.error is None and res.attempts == 1 and res.model == str(model_dir) and len(res.key) == 64
    if eos_first:
        assert res.content == ""  # the eos is not part of the text


# --- batching --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lengths, groups, size, want",
    [
        ([5, 1, 3, 2], [0, 0, 0, 0], 2, [[1, 3], [0, 2]]),  # shortest first; each batch in input order
        ([1, 1, 1], [0, 0, 0], 16, [[0, 1, 2]]),  # one batch
        ([4, 1, 3, 2], ["a", "b", "a", "b"], 8, [[0, 2], [1, 3]]),  # one sampling group per batch
        ([], [], 4, []),  # nothing to do
    ],
)
def test_plan_batches(lengths, groups, size, want):
    assert plan_batches(lengths, groups, size) == want


# --- command line -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--base-url", "http://127.0.0.1:9/v1"], "not allowed with argument"),  # two sources of answers
        (["--model", "x"], "named by its directory"),  # --model names a served model
        (["--tasks", "ccc_agents"], "give --agents-base-url"),  # the agents need an endpoint
        (["--engine", "vllm"], "needs vLLM installed and a CUDA GPU"),  # no vLLM here
        (["segment=0"], "segment must be an integer >= 1"),  # a generate call makes at least one token
    ],
)
def test_cli_errors(tiny, data, tmp_path, capsys, extra, message):
    argv = [
        "eval",
        "run",
        "--model-dir",
        str(tiny),
        "--tasks",
        "fincalc",
        "--data-dir",
        str(data),
        "--output-dir",
        str(tmp_path / "r"),
        "--quiet",
        *extra,
    ]
    try:
        rc = cli(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_cli_missing_model_dir(data, tmp_path, capsys):
    argv = [
        "eval",
        "run",
        "--model-dir",
        str(tmp_path / "nope"),
        "--tasks",
        "fincalc",
        "--data-dir",
        str(data),
        "--output-dir",
        str(tmp_path / "r"),
        "--quiet",
    ]
    assert cli(argv) == 2
    assert "not a model directory (no config.json)" in capsys.readouterr().err


def test_engine_auto_is_transformers_without_a_gpu(monkeypatch):
    monkeypatch.setattr(backends, "vllm_available", lambda: False)
    assert backends.resolve_engine("auto") == "transformers"
    monkeypatch.setattr(backends, "vllm_available", lambda: True)
    assert backends.resolve_engine("auto") == "vllm"
    with pytest.raises(ValueError, match="unknown engine"):
        backends.resolve_engine("llama.cpp")


@pytest.mark.parametrize(
    "dtype,want",
    [
        ("float32", "float32"),  # as asked: compare with a float32 run token for token
        ("bfloat16", "bfloat16"),  # as asked, native or not
        ("auto", None),  # the hardware's pick (dianjin.model.precision), recorded resolved
    ],
)
def test_dtype_is_loaded_and_recorded(tiny, data, tmp_path, dtype, want):
    from dianjin.model.precision import resolve_dtype

    want = want or resolve_dtype("auto", tiny)
    local_run(tiny, data, tmp_path / "r", dtype=dtype, limit=1)
    stored = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert stored["endpoint"]["dtype"] == want
    model = HFModel.load(tiny, dtype=dtype).model
    assert str(next(model.parameters()).dtype) == f"torch.{want}"


@pytest.mark.parametrize(
    "over, want",
    [
        ({}, (32, True)),  # the defaults: 32 new tokens per generate call, queued requests join
        ({"segment": 5, "refill": False}, (5, False)),  # as asked: batches that only shrink
    ],
)
def test_batching_options_reach_the_engine_and_are_recorded(tiny, data, tmp_path, monkeypatch, over, want):
    seen: list[tuple[int, bool]] = []
    stream = HFModel.stream

    def recording(self, prompts, **kw):
        seen.append((self.segment, self.refill))
        return stream(self, prompts, **kw)

    monkeypatch.setattr(HFModel, "stream", recording)
    local_run(tiny, data, tmp_path / "r", limit=2, **over)
    assert seen and set(seen) == {want}
    stored = json.loads((tmp_path / "r" / "eval.json").read_text())["endpoint"]
    assert (stored["segment"], stored["refill"]) == want
