"""The autograder for Deep Learning Assignment 1.

Flow (one module per step): load -> inject/sandbox -> execute -> probe -> record -> render.
"""

from graders.errors import GraderError
from graders.pipeline import GRADER_VERSION, GradeOptions, grade

__all__ = ["GRADER_VERSION", "GradeOptions", "GraderError", "grade"]
