"""Where the pieces of each full tensor of a training checkpoint live: verl's FSDP rank files
(`model_world_size_{W}_rank_{r}.pt`: DTensors with Shard/Replicate placements, or plain tensors) and
torch.distributed.checkpoint (DCP) directories. `open_checkpoint(path)` detects the layout and reads
metadata only; `Source.pieces(key)` yields each piece of one tensor, memory-mapped, for
`dianjin.model.merge` to copy into place. Loading is safe: `torch.load(weights_only=True)`, and DCP's
`.metadata` goes through an allow-list unpickler.
"""

from __future__ import annotations

import ctypes
import io
import json
import logging
import math
import mmap
import pickle
import re
import sys
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


RANK_FILE = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")
# Wrapper prefixes that may survive in state-dict keys (FSDP1, activation checkpointing, torch.compile, DDP).
KEY_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.", "module.")


class MergeError(RuntimeError):
    """A checkpoint that cannot be merged; the message names the file and what is wrong."""


# ------------------------------------------------------------------------------------------------
# Sources: where the pieces of each full tensor live


@dataclass(frozen=True)
class Spec:
    """One full tensor of the checkpoint: its (normalised) name, global shape and stored dtype."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    where: str  # the file(s) it comes from, for error messages

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


# (index into the full tensor, tensor holding that block); the tensor may be file-backed (mmap)
Piece = tuple[tuple[slice, ...], "torch.Tensor"]


class Source(Protocol):
    path: Path
    kind: str

    def specs(self) -> list[Spec]: ...

    def pieces(self, key: str) -> Generator[Piece, None, None]: ...


def open_checkpoint(path: str | Path) -> Source:
    """Detect the checkpoint layout under `path` and open it (metadata only; no tensor data is read)."""
    path = Path(path)
    if not path.is_dir():
        raise MergeError(f"{path}: not a directory")
    if not (path / ".metadata").exists() and not _rank_files(path) and (path / "actor").is_dir():
        path = path / "actor"  # verl's global_step_N/
    if (path / ".metadata").exists():
        return DcpSource(path)
    if _rank_files(path) or (path / "fsdp_config.json").exists():
        return RankFileSource(path)
    raise MergeError(f"{path}: no checkpoint found (expected model_world_size_W_rank_R.pt files or a DCP .metadata)")


def _rank_files(d: Path) -> dict[tuple[int, int], Path]:
    found = {}
    for p in d.iterdir():
        m = RANK_FILE.match(p.name)
        if m:
            found[int(m[1]), int(m[2])] = p
    return found


class RankFileSource:
    """verl's `model_world_size_{W}_rank_{r}.pt` files, memory-mapped."""

    kind = "verl"

    def __init__(self, path: Path):
        import torch
        import torch.distributed.tensor  # noqa: F401  (registers DTensor for weights_only loading)

        self.path = path
        self.world_size = self._world_size()
        self.files = [path / f"model_world_size_{self.world_size}_rank_{r}.pt" for r in range(self.world_size)]
        for f in self.files:
            if not f.exists():
                raise MergeError(f"{f}: missing rank file (world size {self.world_size})")
        self.sds: list[dict[str, Any]] = []
        quiet = logging.getLogger("torch.distributed.device_mesh")  # "unpickling before PGs were created"
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            for f in self.files:
                self.sds.append(self._load(f, torch))
        finally:
            quiet.setLevel(level)
        self._specs = self._check()

    def _world_size(self) -> int:
        found = _rank_files(self.path)
        sizes = sorted({w for w, _ in found})
        cfg_file = self.path / "fsdp_config.json"
        if cfg_file.exists():
            try:
                w = int(json.loads(cfg_file.read_text())["world_size"])
            except (ValueError, KeyError, TypeError) as e:
                raise MergeError(f"{cfg_file}: cannot read world_size ({e!r})") from None
            if sizes and sizes != [w]:
                names = ", ".join(f"model_world_size_{s}_rank_*.pt" for s in sizes)
                raise MergeError(f"{cfg_file}: world_size is {w}, but {self.path} holds {names}")
            return w
        if len(sizes) != 1:
            raise MergeError(f"{self.path}: rank files of several world sizes {sizes} and no fsdp_config.json")
        return sizes[0]

    def _load(self, f: Path, torch: Any) -> dict[str, Any]:
        try:
            sd = torch.load(f, map_location="cpu", mmap=True, weights_only=True)
        except Exception as e:  # noqa: BLE001  (torch raises RuntimeError, UnpicklingError, ...)
            size = f.stat().st_size
            raise MergeError(
                f"{f}: cannot read rank file ({size} bytes; truncated or corrupt, or not a torch.save of "
                f"tensors/DTensors, e.g. FSDP1's ShardedTensor without a device mesh): {str(e).splitlines()[0]}"
            ) from None
        if not isinstance(sd, dict):
            raise MergeError(f"{f}: expected a state dict, found {type(sd).__name__}")
        return {_norm_key(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}

    def _check(self) -> list[Spec]:
        from torch.distributed.tensor import DTensor

        keys0 = list(self.sds[0])
        for f, sd in zip(self.files[1:], self.sds[1:]):
            if set(sd) != set(keys0):
                diff = sorted(set(sd) ^ set(keys0))[:5]
                raise MergeError(f"{f}: keys differ from {self.files[0].name} (e.g. {diff})")
        specs: list[Spec] = []
        self._layout: dict[str, list[tuple[int, tuple[int, ...]]] | None] = {}
        for k in keys0:
            vals = [sd[k] for sd in self.sds]
            kinds = {isinstance(v, DTensor) for v in vals}
            if kinds == {True}:
                self._layout[k] = self._dtensor_layout(k, vals)
                shape, dtype = tuple(vals[0].shape), vals[0].dtype
            elif kinds == {False}:
                self._layout[k] = None
                shape, dtype = tuple(vals[0].shape), vals[0].dtype
                for f, v in zip(self.files[1:], vals[1:]):
                    if tuple(v.shape) != shape or v.dtype != dtype:
                        raise MergeError(f"{f}: {k} is {tuple(v.shape)} {v.dtype}, rank 0 has {shape} {dtype}")
            else:
                raise MergeError(f"{self.path}: {k} is a DTensor in some rank files and a plain tensor in others")
            specs.append(Spec(k, shape, dtype, str(self.files[0])))
        return specs

    def _dtensor_layout(self, key: str, vals: list[Any]) -> list[tuple[int, tuple[int, ...]]]:
        """[(rank, offset of its local block in the full tensor)] for the ranks needed to rebuild `key`:
        Shard(d) mesh dims are concatenated along d in coordinate order, Replicate mesh dims use
        coordinate 0. Checks mesh size, placements and that the blocks tile the global shape."""
        dt = vals[0]
        mesh = dt.device_mesh.mesh  # (m0, m1, ...) global ranks
        if mesh.numel() != self.world_size:
            raise MergeError(
                f"{self.files[0]}: {key} was saved on a mesh of {mesh.numel()} ranks {tuple(mesh.shape)}, "
                f"but world_size is {self.world_size}"
            )
        for f, v in zip(self.files[1:], vals[1:]):
            if tuple(v.placements) != tuple(dt.placements) or tuple(v.shape) != tuple(dt.shape):
                raise MergeError(f"{f}: {key} has placements/shape {v.placements} {tuple(v.shape)}, rank 0 has "
                                 f"{dt.placements} {tuple(dt.shape)}")  # fmt: skip
        for p in dt.placements:
            if not (p.is_replicate() or (p.is_shard() and type(p).__name__ == "Shard")):
                raise MergeError(
                    f"{self.files[0]}: {key} has placement {p}; only Shard(dim) and Replicate() are supported"
                )

        def block(coords: tuple[int, ...]) -> tuple[list[int], list[tuple[int, tuple[int, ...]]]]:
            i = len(coords)
            if i == mesh.ndim:
                rank = int(mesh[coords])
                return list(vals[rank]._local_tensor.shape), [(rank, (0,) * len(dt.shape))]
            p = dt.placements[i]
            if p.is_replicate():
                return block(coords + (0,))
            d, out = p.dim, []
            shape: list[int] | None = None
            for c in range(mesh.shape[i]):
                s, parts = block(coords + (c,))
                if shape is None:
                    shape = list(s)
                else:
                    if [x for j, x in enumerate(s) if j != d] != [x for j, x in enumerate(shape) if j != d]:
                        raise MergeError(self._piece_error(key, vals, mesh))
                    shape[d] += s[d]
                shift = shape[d] - s[d]
                out += [(r, tuple(o + (shift if j == d else 0) for j, o in enumerate(off))) for r, off in parts]
            assert shape is not None  # a mesh dimension has at least one coordinate
            return shape, out

        shape, layout = block(())
        if tuple(shape) != tuple(dt.shape):
            raise MergeError(self._piece_error(key, vals, mesh))
        return layout

    def _piece_error(self, key: str, vals: list[Any], mesh: Any) -> str:
        pieces = ", ".join(f"{f.name}: {tuple(v._local_tensor.shape)}" for f, v in zip(self.files, vals))
        return (f"{self.path}: the local pieces of {key} ({pieces}) do not tile its global shape "
                f"{tuple(vals[0].shape)} with placements {vals[0].placements} on mesh {tuple(mesh.shape)}")  # fmt: skip

    def specs(self) -> list[Spec]:
        return self._specs

    def pieces(self, key: str) -> Generator[Piece, None, None]:
        import torch

        layout = self._layout[key]
        if layout is None:  # plain tensor: rank 0's, after checking the others agree
            t0 = self.sds[0][key]
            for f, sd in zip(self.files[1:], self.sds[1:]):
                same = torch.equal(t0, sd[key])
                _release(sd[key])
                if not same:
                    raise MergeError(f"{f}: {key} is a plain tensor that differs from rank 0's")
            blocks = [(t0, (0,) * t0.ndim)]
        else:
            blocks = [(self.sds[rank][key]._local_tensor, off) for rank, off in layout]
        for local, off in blocks:
            try:
                yield tuple(slice(o, o + n) for o, n in zip(off, local.shape)), local
            finally:  # also when the consumer stops early (the generator is closed)
                _release(local)


# Classes a DCP .metadata pickle may reference; anything else is refused.
_DCP_ALLOWED = {
    "torch.distributed.checkpoint.metadata": {
        "Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata",
        "TensorProperties", "MetadataIndex", "StorageMeta", "_MEM_FORMAT_ENCODING",
    },
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
    "torch.serialization": {"_get_layout"},
    "torch": {"Size"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"},
    "collections": {"OrderedDict"},
}  # fmt: skip


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        import torch

        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if name in _DCP_ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


class DcpSource:
    """A torch.distributed.checkpoint directory, read without a process group: one chunk at a time,
    each chunk's blob loaded with `torch.load(weights_only=True)` from its byte range."""

    kind = "dcp"

    def __init__(self, path: Path):
        import torch.distributed.checkpoint.filesystem  # noqa: F401  (classes for the allow-list)
        from torch.distributed.checkpoint.metadata import TensorStorageMetadata

        self.path = path
        meta_file = path / ".metadata"
        try:
            with open(meta_file, "rb") as f:
                self.meta = _MetadataUnpickler(f).load()
        except Exception as e:  # noqa: BLE001
            raise MergeError(f"{meta_file}: cannot read DCP metadata (truncated or corrupt?): {e}") from None
        tensors = {k: v for k, v in self.meta.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}
        planner = self.meta.planner_data or {}
        paths = {k: tuple(planner.get(k, (k,))) for k in tensors}
        # {"model": {...}, "optim": {...}} -> the model part; a flat state dict -> everything
        nested = any(len(p) > 1 and p[0] == "model" for p in paths.values())
        self._fqn: dict[str, str] = {}
        self._specs = []
        for fqn, md in tensors.items():
            p = paths[fqn]
            if nested and (p[0] != "model" or len(p) != 2):
                continue
            key = _norm_key(p[-1] if nested else ".".join(map(str, p)))
            self._fqn[key] = fqn
            self._specs.append(Spec(key, tuple(md.size), md.properties.dtype, str(meta_file)))
        if not self._specs:
            raise MergeError(f"{meta_file}: no model tensors in this DCP checkpoint")
        self._sizes: dict[str, int] = {}

    def specs(self) -> list[Spec]:
        return self._specs

    def _file_size(self, rel: str) -> int:
        if rel not in self._sizes:
            f = self.path / rel
            if not f.exists():
                raise MergeError(f"{f}: missing DCP data file (listed in {self.path / '.metadata'})")
            self._sizes[rel] = f.stat().st_size
        return self._sizes[rel]

    def pieces(self, key: str) -> Generator[Piece, None, None]:
        import torch
        from torch.distributed.checkpoint.metadata import MetadataIndex

        fqn = self._fqn[key]
        md = self.meta.state_dict_metadata[fqn]
        covered = 0
        for i, chunk in enumerate(md.chunks):
            info = self.meta.storage_data[MetadataIndex(fqn, chunk.offsets, i)]
            f = self.path / info.relative_path
            if info.transform_descriptors:
                raise MergeError(f"{f}: {key} is stored with transforms {info.transform_descriptors} (unsupported)")
            if info.offset + info.length > self._file_size(info.relative_path):
                raise MergeError(f"{f}: truncated: {key} needs bytes {info.offset}..{info.offset + info.length}, "
                                 f"file has {self._file_size(info.relative_path)}")  # fmt: skip
            with open(f, "rb") as fh:
                fh.seek(info.offset)
                blob = fh.read(info.length)
            try:
                t = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001
                raise MergeError(f"{f}: cannot read {key} at byte {info.offset}: {str(e).splitlines()[0]}") from None
            del blob
            if tuple(t.shape) != tuple(chunk.sizes):
                raise MergeError(f"{f}: {key} chunk has shape {tuple(t.shape)}, metadata says {tuple(chunk.sizes)}")
            covered += t.numel()
            yield tuple(slice(o, o + n) for o, n in zip(chunk.offsets, chunk.sizes)), t
        if covered != math.prod(md.size):
            raise MergeError(f"{self.path}: the chunks of {key} cover {covered} of {math.prod(md.size)} elements")


def _norm_key(k: str) -> str:
    for p in KEY_PREFIXES[:-1]:
        k = k.replace(p, "")
    return k.removeprefix(KEY_PREFIXES[-1])


_PAGE = mmap.PAGESIZE
_MADV_DONTNEED = 4
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
if _libc is not None:
    _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _release(t: torch.Tensor) -> None:
    """Drop the pages of a memory-mapped, read-only tensor from this process (Linux; no-op elsewhere).

    The rank files are mapped MAP_PRIVATE and never written, so the kernel re-reads the file if a page
    is touched again; without this, every page we read would stay in our RSS until the file closes."""
    if _libc is None or t.numel() == 0:
        return
    start = t.data_ptr() // _PAGE * _PAGE
    end = -(-(t.data_ptr() + t.numel() * t.element_size()) // _PAGE) * _PAGE
    _libc.madvise(start, end - start, _MADV_DONTNEED)
