"""Continuous batching on HF `generate`: the rows that stop leave the batch, queued prompts take
their places, between calls of `segment` new tokens.

    for i, rows, latency in generate_stream(model, prompts, k=1, caps=[384] * n, max_rows=48, segment=32,
                                            pad=pad_id, eos=eos_ids, sampling={"do_sample": False}):
        ...   # prompt i's k rows of new token ids, as soon as all k have stopped

A server with continuous batching (vLLM, `transformers serve --continuous-batching`) keeps its batch
full: a request joins the moment another leaves. Batches that only shrink spend their last steps
on a few long answers, at almost the cost of a full step. Here, after every `model.generate` call
of `segment` tokens:

1. the rows that stopped (an eos id among their new tokens, or their cap reached) leave;
2. queued prompts join while the batch has room for their `k` rows (`max_rows` in all), longest
   first, so a joining prompt always fits in front of the rows still going;
3. `dianjin.eval.kvcache.regroup` copies the rows still going and prefills the joining prompts,
   one at a time, right-aligned into one cache: the slots before every live row's first token are
   dropped, so the cache spans the longest live row, not the run so far.

`ids`, `mask` `[rows, slots + 1]` are the left-padded token ids and attention mask `generate` continues
from (positions count from each row's first token, as in a padded batch); its last column is the
token each row feeds next: the last prompt token of a joining row, the last new token of the others.

Cost: a row that joins late shares the cache span of the longest live row, and attention reads
that span for every row. SmolLM2 on 2 CPU cores, 96 questions in batches of 48: refilling made
0.93x the tokens/s of batches that only shrink (`refill=False`) at max_tokens 384, and 1.14x at
1,024, where a few long answers keep a shrinking batch going on a few rows (`docs/benchmarks.md`).

Models whose cache cannot be regrouped (sliding windows: `kvcache.growing_cache` gives None) run in
batches that only shrink: prompts join when the batch is empty, and `generate` prefills them padded.

Determinism: the global torch RNG draws for the rows in the batch at each step, so a row's samples
depend on which rows it shares its steps with: the same prompts, `max_rows` and `segment` give the
same rows; greedy rows depend on nothing but bfloat16 rounding in the batch's sums.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dianjin.eval import kvcache


@dataclass
class Row:
    """One sample of one prompt in the batch."""

    prompt: int  # index into the prompts
    cap: int  # new tokens at most
    joined: float  # perf_counter when it joined
    tokens: list[int] = field(default_factory=list)  # new tokens so far (pads after an eos included)
    stopped: bool = False


def generate_stream(
    model: Any,
    prompts: Sequence[list[int]],
    *,
    k: int,
    caps: Sequence[int],
    max_rows: int,
    segment: int,
    pad: int,
    eos: Sequence[int],
    sampling: dict[str, Any],
    refill: bool = True,
) -> Iterator[tuple[int, list[list[int]], float]]:
    """Yield (prompt index, its `k` rows' new tokens, seconds from joining to the last row's stop)
    as each prompt's rows have all stopped. A row stops at an eos id or after `caps[i]` new tokens
    (its tokens may run past both: the caller cuts them). `max_rows` below `k` still runs one prompt
    at a time. `refill` False: prompts join only an empty batch (batches that only shrink). The model
    runs under `torch.inference_mode()`, the caller's code between yields does not."""
    import torch

    device, stops = model.device, set(eos)
    regroupable = kvcache.growing_cache(model) is not None
    queue = deque(sorted(range(len(prompts)), key=lambda i: -len(prompts[i])))  # stable: ties in input order
    live: list[Row] = []
    members: dict[int, list[Row]] = {}  # prompt -> its rows, while any is going
    ids = mask = torch.empty(0, 1, dtype=torch.long, device=device)  # [rows, slots + 1]
    cache: Any = None
    stopped: list[int] = []  # positions in `live` of the rows that stopped in the last call
    while queue or live:
        finished: list[tuple[int, list[list[int]], float]] = []
        with torch.inference_mode():  # not across the yields: the caller's code between them runs as it would
            joining: list[int] = []
            if (regroupable and refill) or not live:
                going = len(live) - len(stopped)
                while queue and (going + k * (len(joining) + 1) <= max_rows or not (going or joining)):
                    joining.append(queue.popleft())
                joining.sort()  # rows of the prompts joining together in input order
            keep = sorted(set(range(len(live))) - set(stopped))
            if regroupable and (stopped or joining):
                first = [int(mask[j].argmax()) for j in keep]  # each kept row's first token column
                length = max([ids.shape[1] - 1 - f for f in first] + [len(prompts[i]) - 1 for i in joining])
                cache = kvcache.regroup(model, cache, keep, length, [prompts[i] for i in joining], k)
                ids, mask = _regroup_ids(ids, mask, keep, length + 1, [prompts[i] for i in joining], k, pad)
            elif stopped:  # no regrouping: the stopped rows leave generate's own cache
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                ids, mask = ids[index], mask[index]
            elif joining:  # an empty batch starts: generate prefills the padded prompts
                cache = None
                width = max(len(prompts[i]) for i in joining)
                ids, mask = _regroup_ids(ids, mask, [], width, [prompts[i] for i in joining], k, pad)
            now = time.perf_counter()
            for i in joining:
                members[i] = [Row(i, caps[i], now) for _ in range(k)]
            live = [live[j] for j in keep] + [row for i in joining for row in members[i]]
            step = min(segment, max(r.cap - len(r.tokens) for r in live))
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                cache=cache,
                max_new_tokens=step,
                pad_token_id=pad,
                eos_token_id=list(eos),
                return_dict_in_generate=True,
                **sampling,
            )
            seqs, cache = out.sequences, out.cache  # [rows, ids.shape[1] + <= step]
            grown = seqs.shape[1] - ids.shape[1]
            mask = torch.cat([mask, torch.ones(len(live), grown, dtype=mask.dtype, device=device)], 1)
            ids, stopped, done = seqs, [], time.perf_counter()
            for j, (row, got) in enumerate(zip(live, seqs[:, -grown:].tolist() if grown else [[]] * len(live))):
                row.tokens += got
                if stops.intersection(got) or len(row.tokens) >= row.cap or not grown:
                    stopped.append(j)
                    row.stopped = True
                    rows = members[row.prompt]
                    if all(r.stopped for r in rows):
                        del members[row.prompt]
                        finished.append((row.prompt, [r.tokens for r in rows], done - row.joined))
            if len(stopped) == len(live):
                live, stopped = [], []
        yield from finished


def _regroup_ids(
    ids: Any, mask: Any, keep: Sequence[int], width: int, joining: Sequence[list[int]], k: int, pad: int
) -> tuple[Any, Any]:
    """`ids`, `mask` of the kept rows cut (or left-padded) to their last `width` columns, then `k` rows
    per joining prompt, left-padded to `width`."""
    import torch

    device = ids.device
    rows = [p for p in joining for _ in range(k)]
    new_ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in rows], dtype=torch.long, device=device)
    new_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], dtype=mask.dtype, device=device)
    if not keep:
        return new_ids.view(len(rows), width), new_mask.view(len(rows), width)
    index = torch.tensor(list(keep), device=device)
    old_ids, old_mask = ids[index], mask[index]
    cut = old_ids.shape[1] - width
    if cut >= 0:
        old_ids, old_mask = old_ids[:, cut:], old_mask[:, cut:]
    else:  # longer than the kept rows: padding in front of them
        old_ids = torch.cat([old_ids.new_full((len(keep), -cut), pad), old_ids], 1)
        old_mask = torch.cat([old_mask.new_zeros(len(keep), -cut), old_mask], 1)
    new_ids, new_mask = new_ids.view(len(rows), width), new_mask.view(len(rows), width)
    return torch.cat([old_ids, new_ids], 0), torch.cat([old_mask, new_mask], 0)
