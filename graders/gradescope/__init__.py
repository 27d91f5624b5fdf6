"""Gradescope: the autograder zip (``bundle``), the entry point its ``run_autograder`` calls
(``entry``), an image of it on this machine for tests and benchmarks (``image``) and the shell
scripts it ships (``templates/``). The results.json itself is a pure renderer,
``graders/render/gradescope.py``.
"""
