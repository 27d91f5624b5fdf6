"""Instruction text that several questions' notebooks share, so that it reads the same in each.

A question module puts these blocks after its own introduction (``md(..., INTRO, HOW_TO_ANSWER)``);
``DATA_RULES`` is for the notebooks that read a dataset or may use a GPU.
"""

from __future__ import annotations

HOW_TO_ANSWER = """
**How to fill this notebook in**

* Wherever a cell says `# YOUR CODE HERE` followed by `raise NotImplementedError()`, delete
  those two lines and write your code in their place. Keep every function name, argument list
  and variable name that the instructions mention: the grader looks them up by name.
* The cell tagged `parameters` holds the settings. You may change them while you experiment,
  but the grader replaces them with its own values, so later cells must always use these
  variables and never repeat the numbers.
* Written answers go in the cells that begin with **Your answer (...)**: replace
  `YOUR ANSWER HERE` with your text and keep the first line as it is.
* Before you submit, restart the kernel and run all cells from the top.
"""

DATA_RULES = """
**Data and hardware.** The grader has no internet access. Datasets are read only from
`DATA_ROOT` with `download=False` (torchvision layout: `DATA_ROOT/<Dataset>/raw/`). Do not
assume a GPU: put models and tensors on `DEVICE` with `.to(DEVICE)`, which falls back to the
CPU when CUDA is not available.
"""
