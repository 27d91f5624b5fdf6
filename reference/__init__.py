"""Reference solutions for Deep Learning Assignment 1, one module per question.

Imports numpy (and torch for Q3) and, of the grader, only ``graders.numerics``: the machinery
that measures a network on given weights and reads the data, which the solutions build on and
the student kit ships. The grader compares student results with what these give, in its own
process; the sandboxed student kernel can never import this package, and the kit holds none of
it (``docs/kit.md``).
"""
