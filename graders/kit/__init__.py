"""The student kit: the public checks, without the answers, as a package students install.

``dlgrade kit build`` (``build.py``, with the list of what ships in ``contents.py``) writes a
pip-installable copy of the grader's public half: the harness that runs a notebook in its own
kernel and probes it, each question's public checks, the template notebooks, the quick
profile's data slices, and the expected values the reference gave on the kit's fixed inputs
(``store.py`` writes and reads them). A student runs ``dlgrade-check`` or, in a notebook,
``check_me``; both are ``graders.selfcheck``, which uses the stored values when it finds them.

Only ``__init__.py`` and ``store.py`` of this package ship; the build itself stays with the
course.
"""
