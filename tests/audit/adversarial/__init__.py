"""Adversarial models: each a small nn.Module built to fool a homogeneity analysis into a false
scale-invariance claim (issue 10 item 2). `CASES` maps a case name to its `Case`."""


def all_cases():
    """Every registered case (importing the case modules registers them)."""
    from tests.audit.adversarial import structure, values  # noqa: F401
    from tests.audit.adversarial.cases import CASES
    return CASES
