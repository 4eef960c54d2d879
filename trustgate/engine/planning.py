"""Which prompts run together: neighbours in token order that share a prefix, and within a
batch the groups whose longer common head is computed once."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    if not sequences:
        return 0
    shortest = min(len(s) for s in sequences)
    first = sequences[0]
    for position in range(shortest):
        token = first[position]
        if any(s[position] != token for s in sequences):
            return position
    return shortest


def plan_batches(
    token_ids: Sequence[Sequence[int]],
    samples: int,
    batch_size: int,
    max_batch_tokens: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """Prompt indices per batch: neighbours in token order, so a batch shares a long prefix.

    A batch ends when its rows (prompts x samples) reach `batch_size`, when its KV cache would
    pass `max_batch_tokens` (rows x (widest prompt + new tokens): every row holds its own copy
    of the prefix, as on the copied-cache path), or when the next prompt would halve the shared
    prefix of a batch that is already a quarter full (a new system prompt).
    """

    def full(rows: int, width: int) -> bool:
        return rows > batch_size or rows * (width + max_new_tokens) > max_batch_tokens

    return _plan(token_ids, samples, batch_size, full)


def plan_streams(token_ids: Sequence[Sequence[int]], samples: int, batch_size: int) -> list[list[int]]:
    """Prompt indices per stream: like `plan_batches`, but a stream ends only at a new prefix.
    The shared-prefix path decodes a stream `batch_size` rows at a time within the KV budget,
    new rows joining as others finish (batch_decode)."""
    return _plan(token_ids, samples, batch_size, lambda rows, width: False)


def _plan(
    token_ids: Sequence[Sequence[int]], samples: int, batch_size: int, full: Callable[[int, int], bool]
) -> list[list[int]]:
    order = sorted(range(len(token_ids)), key=lambda i: list(token_ids[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    shared = width = 0
    for index in order:
        ids = token_ids[index]
        if current:
            # In token order, the prefix shared by a run is the one its first and last share.
            common = common_prefix_length([token_ids[current[0]], ids])
            rows = (len(current) + 1) * samples
            new_prefix = common * 2 < shared and len(current) * samples * 4 >= batch_size
            if full(rows, max(width, len(ids))) or new_prefix:
                batches.append(current)
                current = []
        if not current:
            shared, width = len(ids), 0
        else:
            shared = common_prefix_length([token_ids[current[0]], ids])
        current.append(index)
        width = max(width, len(ids))
    if current:
        batches.append(current)
    return batches


def distinct_heads(tails: list[list[int]], min_length: int) -> tuple[list[list[int]], list[int]]:
    """Rows' token lists grouped by a common head that is computed once per group.

    Returns the heads and each row's group. A group's head is what all its rows share, at
    least `min_length` tokens (a lone row's head is all but its last token); every row keeps at
    least one token after its head. A row joins the group before it (in token order) unless
    that would halve the group's head, so one short common start does not merge groups.
    """
    order = sorted(range(len(tails)), key=lambda row: tails[row])
    members: list[list[int]] = []
    head_lengths: list[int] = []
    for row in order:
        tail = tails[row]
        if members:
            common = min(common_prefix_length([tails[members[-1][0]], tail]), len(tail) - 1)
            current = head_lengths[-1]
            joined = min(current, common)
            if joined >= min_length and (len(members[-1]) == 1 or 2 * joined >= current):
                members[-1].append(row)
                head_lengths[-1] = joined
                continue
        members.append([row])
        head_lengths.append(max(len(tail) - 1, 0))
    group_of = [0] * len(tails)
    for group, rows in enumerate(members):
        for row in rows:
            group_of[row] = group
    heads = [tails[rows[0]][:length] for rows, length in zip(members, head_lengths, strict=True)]
    return heads, group_of
