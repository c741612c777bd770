"""Helpers only: nothing that builds a model."""


def helper(x):
    return x + 1
