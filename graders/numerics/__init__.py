"""Machinery the checks need that is no answer to the assignment, shared with the reference.

Evaluating a network the student built (a step network on given weights, a numpy MLP on given
weights, its accuracy and loss on a test set) and reading the datasets: what a check must be
able to do to *measure* a student's work, as opposed to what the student must write (the box
network, the approximation, the initialization rules, the backward pass, a trained model),
which stays in ``reference/``. The reference solutions build on these modules; the student kit
ships them, and its exclusion test holds them to containing none of the reference's bodies.

Leaf modules: numpy and the standard library only, nothing else of ``graders`` (import-linter
holds them to it), so ``reference/`` still imports without the rest of the grader.
"""
