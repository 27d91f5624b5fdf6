"""The source of the student templates and the fixture submissions, one module per question.

``q<N>_<name>.py`` (named after the question's folder under ``graders/questions/``) holds that
question's cells as strings and a ``spec()`` that returns its ``NotebookSpec``; ``builder.py``
finds every such module by name and renders it, so adding a question adds one module here and
edits nothing else. ``tools/make_notebooks.py`` is the command line.
"""
