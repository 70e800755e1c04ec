"""Memory allocators for training on the CPU: what `cpu_malloc` in a demo recipe names.

PyTorch on the CPU frees and re-allocates the same big buffers (logits, activations, gradients) at
every step. Under glibc's defaults each such buffer is a fresh `mmap` whose pages fault in again, so
a step spends as much time in the kernel as in the model. The training children of `dianjin demo` get
the environment of one allocator from `ALLOCATORS` (the figures: docs/benchmarks.md, "SFT's memory
allocator"; the bench: bench/bench_sft_malloc.py):

- `glibc`: nothing changed;
- `glibc-mmap`: glibc told to serve blocks under 4 GiB from the heap instead of a fresh `mmap` each;
- `glibc-keep`: the same, and keep what is freed (`KEEP_ENV`). It doubles the tiny model's speed,
  but a 49k-token vocabulary's logits then grow the heap past 12 GB;
- `tcmalloc`, `jemalloc`: preloaded (`LD_PRELOAD`) from the system's library directories, the way
  `torch.backends.xeon.run_cpu --enable_tcmalloc` does. Debian and Ubuntu ship them as
  `libtcmalloc-minimal4` and `libjemalloc2`. Where the library is missing the children run on the
  allocator's `fallback`, and `allocator_env` says so and what to install.

Nothing here imports torch; the allocator must be chosen before the child starts.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

# glibc: serve big allocations from the heap and keep freed memory.
KEEP_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "1073741824",
}

# where Debian, Ubuntu, Fedora, conda and source builds put shared libraries
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")


@dataclass(frozen=True)
class Allocator:
    env: dict[str, str] = field(default_factory=dict)  # set in the child's environment
    libraries: tuple[str, ...] = ()  # file-name globs, first found is preloaded; () = nothing to preload
    package: str = ""  # what provides the library (for the message when it is missing)
    fallback: str = "glibc"  # used instead where the library is missing


ALLOCATORS: dict[str, Allocator] = {
    "glibc": Allocator(),
    "glibc-mmap": Allocator(env={"MALLOC_MMAP_THRESHOLD_": KEEP_ENV["MALLOC_MMAP_THRESHOLD_"]}),
    "glibc-keep": Allocator(env=KEEP_ENV),
    "tcmalloc": Allocator(
        libraries=("libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so*", "libtcmalloc.so*"),
        package="libtcmalloc-minimal4 (apt-get install libtcmalloc-minimal4; Fedora: gperftools-libs)",
    ),
    "jemalloc": Allocator(
        libraries=("libjemalloc.so.2", "libjemalloc.so*"),
        package="libjemalloc2 (apt-get install libjemalloc2; Fedora: jemalloc)",
    ),
}


def find_library(patterns: tuple[str, ...], dirs: tuple[str, ...] | None = None) -> str | None:
    """The first file matching one of `patterns` in `dirs` (default: `LIB_DIRS` and $CONDA_PREFIX/lib)."""
    if dirs is None:
        conda = os.environ.get("CONDA_PREFIX")
        dirs = LIB_DIRS + ((os.path.join(conda, "lib"),) if conda else ())
    for pattern in patterns:
        for d in dirs:
            hits = sorted(glob.glob(os.path.join(d, pattern)))
            if hits:
                return hits[0]
    return None


def allocator_env(name: str, env: dict[str, str], dirs: tuple[str, ...] | None = None) -> str | None:
    """Add allocator `name`'s settings to the child environment `env` (values already there win, and a
    preload goes in front of an existing LD_PRELOAD); returns a note when its library is missing."""
    if name not in ALLOCATORS:
        raise ValueError(f"unknown allocator {name!r}; known: {', '.join(ALLOCATORS)}")
    a = ALLOCATORS[name]
    for k, v in a.env.items():
        env.setdefault(k, v)
    if not a.libraries:
        return None
    lib = find_library(a.libraries, dirs)
    if lib is None:
        allocator_env(a.fallback, env, dirs)
        return f"{name} is not installed (no {a.libraries[0]}); training runs on {a.fallback}. Install {a.package}"
    preload = env.get("LD_PRELOAD", "")
    if lib not in preload.split(":"):
        env["LD_PRELOAD"] = f"{lib}:{preload}" if preload else lib
    return None
