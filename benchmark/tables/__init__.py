"""Paper tables from runs (docs/tables.md) and the published numbers beside them (docs/references.md).

- ``spec``: a table's layout as data (``specs/*.yaml``); ``fill``: cells from runs; ``render``: md, LaTeX,
  CSV, HTML; ``runs``: what is read from a run folder; ``references``: results/references/{paper}.csv;
  ``references_build``: the converter that writes those files; ``command``: the CLI's work.
"""
