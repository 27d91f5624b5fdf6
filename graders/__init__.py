"""The autograder for Deep Learning Assignment 1.

Flow (one module per step, at this level): load -> execute (inject, sandbox, kernel) -> probe ->
check -> score -> render; ``pipeline`` runs them in order (``evaluate`` is its middle, which
the self-check shares) and ``cli`` is the command. The shared model is ``models``, ``config``
and ``errors``; each role has its package: ``kernel`` (code that runs inside the student's
kernel), ``sandbox``, ``questions``, ``numerics``, ``render``, ``batch``, ``gradescope``,
``kit`` (the student kit). See docs/engine.md.

Importing the package imports nothing else, so ``python -m graders.cli --help`` stays fast.
"""

GRADER_VERSION = "0.1.0"
"""Recorded in every result; a regrade with another version is a different grade."""
