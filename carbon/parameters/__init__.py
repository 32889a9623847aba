"""Cited, versioned methodology parameter sets.

``models`` (pure) defines the frozen shapes; ``loader`` reads the packaged YAML files in ``data/``.
Methodologies import only ``models``: they receive a loaded :class:`~carbon.parameters.models.ParameterSet`
as an explicit argument and never read files themselves.
"""
