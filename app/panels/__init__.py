"""Whole panels of the longer pages, as ``*_ui()`` functions that draw widgets and return what was picked.

One module per panel group, named after its page (``triage_exam`` is the Outlier triage page's one-exam panel);
the pages in ``views/`` call them in layout order. Computation stays in the access modules beside this package.
"""
