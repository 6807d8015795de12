"""The policy language (docs/contracts.md, Policy file): what clusters must carry, and where.

- ``models``: the pydantic models of a ``FluxPolicy`` document (a contract);
- ``loading``: files to a frozen ``PolicySet``, with ``FILE:LINE: field.path: message`` errors
  (``yamltree`` keeps the lines, ``errors`` words pydantic's errors, ``checks`` holds the
  multi-field rules);
- ``selection``: which policies apply to a cluster (pure);
- ``globs``: the case-insensitive globs of selectors and exemptions;
- ``schema`` and ``reference``: the JSON Schema and the Markdown reference, from the models.
"""
