"""The synthetic world: procedural writing instructions with checkable rules, and their
checklist gold judge (``score_response`` / ``compare_responses``). See docs/synthetic-world.md."""

from judgelab.data.world.constraints import (
    COUNTING_KINDS,
    EASY_KINDS,
    HARD_KINDS,
    Constraint,
    ConstraintKind,
)
from judgelab.data.world.generate import (
    WorldConfig,
    draw_instruction,
    family_ids,
    generate_prompts,
)
from judgelab.data.world.gold import (
    GOLD_VERSION,
    Check,
    GoldComparison,
    GoldScore,
    compare_responses,
    score_response,
)
from judgelab.data.world.instruction import (
    Instruction,
    InstructionParseError,
    parse_instruction,
)

__all__ = [
    "COUNTING_KINDS",
    "EASY_KINDS",
    "GOLD_VERSION",
    "HARD_KINDS",
    "Check",
    "Constraint",
    "ConstraintKind",
    "GoldComparison",
    "GoldScore",
    "Instruction",
    "InstructionParseError",
    "WorldConfig",
    "compare_responses",
    "draw_instruction",
    "family_ids",
    "generate_prompts",
    "parse_instruction",
    "score_response",
]
