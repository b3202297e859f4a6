"""Which file backs each `tinytorch.<name>`: the learner's kata, the reference, or a mix.

The choice comes from the environment so that it reaches every process the same
way (pytest and its xdist workers, the grader's sandboxes, milestone scripts):

    TINYTORCH_IMPL   "katas" (default) or "reference", optionally followed by
                     per-module overrides: "katas,05=reference,06=reference".
    TINYTORCH_KATAS  the directory holding the learner's NN_slug folders
                     (default: <project>/katas). The grader points it at a
                     submission; nothing is ever copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from grading import curriculum as _curriculum

IMPLS = ("katas", "reference")
IMPL_ENV = "TINYTORCH_IMPL"
KATAS_ENV = "TINYTORCH_KATAS"


class ImplSpecError(ValueError):
    """TINYTORCH_IMPL (or --impl) does not name a valid choice."""


@dataclass(frozen=True)
class ImplSpec:
    default: str = "katas"
    overrides: dict[int, str] = field(default_factory=dict)

    def for_module(self, number: int) -> str:
        return self.overrides.get(number, self.default)

    def render(self) -> str:
        parts = [self.default] + [f"{n:02d}={impl}" for n, impl in sorted(self.overrides.items())]
        return ",".join(parts)


def parse_impl(text: str | None) -> ImplSpec:
    """Parse "katas", "reference" or "katas,05=reference,...", naming any bad part."""
    if not text:
        return ImplSpec()
    default = "katas"
    overrides: dict[int, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part:
            module, _, impl = part.partition("=")
            if impl not in IMPLS:
                raise ImplSpecError(f"{IMPL_ENV}: {part!r} must end in one of {IMPLS}")
            try:
                number = _curriculum.load().module(module).number
            except _curriculum.CurriculumError as err:
                raise ImplSpecError(f"{IMPL_ENV}: {err}") from None
            overrides[number] = impl
        elif part in IMPLS:
            default = part
        else:
            raise ImplSpecError(f"{IMPL_ENV}: {part!r} is not one of {IMPLS} or NN=impl")
    return ImplSpec(default, overrides)


def current_spec() -> ImplSpec:
    return parse_impl(os.environ.get(IMPL_ENV))


def katas_root() -> Path:
    return Path(os.environ.get(KATAS_ENV) or _curriculum.PROJECT_ROOT / "katas").resolve()


def source_file(export: str, spec: ImplSpec | None = None) -> Path | None:
    """The file that backs `tinytorch.<export>`, or None if no module exports it."""
    module = _curriculum.load().export_owner(export)
    if module is None:
        return None
    spec = spec or current_spec()
    if spec.for_module(module.number) == "reference":
        folder = module.reference_dir()
    else:
        folder = katas_root() / module.key
    return folder / f"{export}.py"
