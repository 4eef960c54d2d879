"""The variant grammar of DESIGN.md section 4, parsed into frozen, hashable specs.

dense | gptq{3,4,8} | awq{3,4,8} | {magnitude,sparsegpt,wanda}-{2:4,1:2,4:8,<percent>}
followed by optional @seedN and +calN, in any order; a local path / hub id; or recipe:PATH, a
remedy recipe (a plain variant with some decoder blocks kept at higher precision, as
`trustgate.remedy` writes it).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from trustgate.util.errors import TrustgateError
from trustgate.util.storage import user_path

Method = Literal["dense", "gptq", "awq", "magnitude", "sparsegpt", "wanda", "checkpoint"]

QUANTIZERS = ("gptq", "awq")
PRUNERS = ("magnitude", "sparsegpt", "wanda")
BIT_WIDTHS = (3, 4, 8)
NM_PATTERNS = ((2, 4), (1, 2), (4, 8))
DEFAULT_CALIBRATION_SAMPLES = 128
DEFAULT_SEED = 0

VALID_CHOICES = (
    "dense, gptq3/gptq4/gptq8, awq3/awq4/awq8, "
    "magnitude|sparsegpt|wanda-{2:4,1:2,4:8,50}, each optionally with @seedN and +calN, "
    "a checkpoint folder / hub id, or recipe:PATH (a remedy recipe)"
)
RECIPE_PREFIX = "recipe:"
RECIPE_KEYS = {"variant", "kept_blocks", "found"}  # `found`: how the remedy found it (not read)

_QUANT = re.compile(r"^(?P<method>gptq|awq)(?P<bits>\d+)$")
_PRUNE = re.compile(r"^(?P<method>magnitude|sparsegpt|wanda)-(?:(?P<n>\d+):(?P<m>\d+)|(?P<percent>\d+))$")
_SUFFIX = re.compile(r"(@seed(?P<seed>\d+)|\+cal(?P<cal>\d+))")


@dataclass(frozen=True)
class VariantSpec:
    """One compressed variant: the method, its parameters, calibration seed and size."""

    name: str
    method: Method
    bits: int | None = None
    sparsity: float | None = None
    structure: tuple[int, int] | None = None  # (N, M): N weights kept in every M
    seed: int = DEFAULT_SEED
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES
    checkpoint: str | None = None
    # A remedy: these decoder blocks stay at 8 bits (quantized variants) or dense (pruned ones).
    kept_blocks: tuple[int, ...] = ()
    plain: str | None = None  # the plain variant's name, for a remedy recipe

    @property
    def is_dense(self) -> bool:
        return self.method == "dense"

    @property
    def needs_calibration(self) -> bool:
        return self.method in ("gptq", "awq", "sparsegpt", "wanda")

    @property
    def family(self) -> str:
        """The method with its setting but without seed or calibration size (and, for a remedy
        recipe, how many blocks it keeps)."""
        family = (self.plain or self.name).split("@")[0].split("+")[0]
        return f"{family}-keep{len(self.kept_blocks)}" if self.kept_blocks else family

    @property
    def kept_precision(self) -> str:
        """What a kept block stays at: 8-bit groups for a quantized variant, dense for a pruned one."""
        return "int8" if self.bits else "dense"

    def keeping(self, blocks: tuple[int, ...]) -> VariantSpec:
        """This plain variant with `blocks` kept at higher precision (a remedy probe)."""
        kept = tuple(sorted(set(blocks)))
        if not kept:
            return self
        listed = ",".join(str(b) for b in kept)
        return replace(self, name=f"{self.name}~keep[{listed}]", kept_blocks=kept, plain=self.name)

    @property
    def unseeded_name(self) -> str:
        """The name without its seed (what calibration seeds of one method share)."""
        calibration = (
            "" if self.calibration_samples == DEFAULT_CALIBRATION_SAMPLES else f"+cal{self.calibration_samples}"
        )
        return self.family + calibration


def _bad(name: str, why: str) -> TrustgateError:
    return TrustgateError(f"--model {name}", why, f"valid variants: {VALID_CHOICES}")


def _split_suffixes(name: str) -> tuple[str, int | None, int | None]:
    core = _SUFFIX.sub("", name)
    seeds = [int(m.group("seed")) for m in _SUFFIX.finditer(name) if m.group("seed")]
    cals = [int(m.group("cal")) for m in _SUFFIX.finditer(name) if m.group("cal")]
    if len(seeds) > 1 or len(cals) > 1:
        raise _bad(name, "a suffix @seedN or +calN is given twice")
    if ("@" in core or "+" in core) and not Path(name).exists():
        raise _bad(name, "unrecognised suffix (expected @seedN or +calN)")
    return core, (seeds[0] if seeds else None), (cals[0] if cals else None)


def parse_variant(name: str) -> VariantSpec:
    """Parse one --model value; raises TrustgateError naming the value and the valid choices."""
    text = name.strip()
    if not text:
        raise _bad(name, "empty variant name")
    if any(ord(character) < 32 for character in text):  # a NUL byte reaches no file system call
        raise _bad(name, "control characters (a NUL byte, a tab) in a variant name")
    if text == "dense":
        return VariantSpec(name="dense", method="dense")
    if text.startswith(RECIPE_PREFIX):
        return parse_recipe(text)
    local = user_path(text)
    if local.exists():
        return VariantSpec(name=text, method="checkpoint", checkpoint=str(local.resolve()))
    core, seed, cal = _split_suffixes(text)
    if quant := _QUANT.match(core):
        bits = int(quant.group("bits"))
        if bits not in BIT_WIDTHS:
            raise _bad(name, f"{bits}-bit is not offered (bit widths: 3, 4, 8)")
        spec = VariantSpec(name=text, method=quant.group("method"), bits=bits)  # type: ignore[arg-type]
    elif prune := _PRUNE.match(core):
        method = prune.group("method")
        if prune.group("percent") is not None:
            percent = int(prune.group("percent"))
            if not 0 < percent < 100:
                raise _bad(name, "unstructured sparsity must be a percentage between 1 and 99")
            spec = VariantSpec(name=text, method=method, sparsity=percent / 100)  # type: ignore[arg-type]
        else:
            n, m = int(prune.group("n")), int(prune.group("m"))
            if (n, m) not in NM_PATTERNS:
                raise _bad(name, f"the N:M pattern {n}:{m} is not offered (2:4, 1:2, 4:8)")
            spec = VariantSpec(name=text, method=method, sparsity=1 - n / m, structure=(n, m))  # type: ignore[arg-type]
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", text) and seed is None and cal is None:
        return VariantSpec(name=text, method="checkpoint", checkpoint=text)
    else:
        raise _bad(name, "unknown variant")
    if not spec.needs_calibration and (seed is not None or cal is not None):
        raise _bad(name, f"{spec.method} pruning uses no calibration data, so @seed and +cal do not apply")
    if cal is not None and cal < 1:
        raise _bad(name, "+calN needs at least one calibration sample")
    return VariantSpec(
        **{
            **asdict(spec),
            "seed": DEFAULT_SEED if seed is None else seed,
            "calibration_samples": DEFAULT_CALIBRATION_SAMPLES if cal is None else cal,
        }
    )


def parse_recipe(text: str) -> VariantSpec:
    """`recipe:PATH`: the plain variant the file names, with its kept blocks."""
    path = user_path(text[len(RECIPE_PREFIX) :])
    fix = "pass the remedy.toml that `pytest --trust-remedy` wrote (variant = ..., kept_blocks = [...])"
    try:
        recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrustgateError(f"--model {text}", f"cannot read the recipe ({exc.strerror or exc})", fix) from None
    except tomllib.TOMLDecodeError as exc:
        raise TrustgateError(f"--model {text}", f"not valid TOML ({exc})", fix) from None
    unknown = sorted(set(recipe) - RECIPE_KEYS)
    blocks = recipe.get("kept_blocks")
    if unknown or not isinstance(recipe.get("variant"), str) or not isinstance(blocks, list):
        why = f"unknown keys {unknown}" if unknown else "it needs `variant` (a string) and `kept_blocks` (a list)"
        raise TrustgateError(f"--model {text}", why, fix)
    if not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in blocks):
        raise TrustgateError(f"--model {text}", f"kept_blocks must be block numbers >= 0, not {blocks}", fix)
    plain = parse_variant(recipe["variant"])
    if plain.method in ("dense", "checkpoint") or plain.kept_blocks:
        raise TrustgateError(f"--model {text}", f"{recipe['variant']} is not a variant trustgate compresses", fix)
    return replace(plain, name=text, kept_blocks=tuple(sorted(set(blocks))), plain=plain.name)


def parse_variants(names: list[str]) -> list[VariantSpec]:
    """Parse and de-duplicate while keeping the order the user gave."""
    specs: dict[str, VariantSpec] = {}
    for name in names:
        spec = parse_variant(name)
        specs.setdefault(spec.name, spec)
    return list(specs.values())
