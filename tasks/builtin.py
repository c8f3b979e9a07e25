"""The task specs shipped with uisbench (targets of the ``uisbench.tasks`` entry points)."""

from __future__ import annotations

from uisbench.tasks import YamlSpec

gsm8k = YamlSpec("gsm8k.yaml")
math500 = YamlSpec("math500.yaml")
arc_challenge = YamlSpec("arc_challenge.yaml")
mmlu = YamlSpec("mmlu.yaml")
humaneval = YamlSpec("humaneval.yaml")
arith_smoke = YamlSpec("arith-smoke.yaml")
