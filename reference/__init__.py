"""Reference solutions for Deep Learning Assignment 1, one module per question.

Importable on its own (numpy, and torch for Q3); the grader compares student results with
these in its own process. The sandboxed student kernel can never import this package.
"""
