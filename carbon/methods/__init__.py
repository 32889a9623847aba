"""Carbon methodologies as pure, traceable, versioned calculations.

``base`` is the framework (protocol, trace, result, registry); one module per methodology
(``ipcc``, ``ccer_14_001``, ``fujian_ticket``, ``restoration``, ``ocean_fishery``); shared equations in
``inventory``, ``sanity`` and ``registrations``; :func:`carbon.methods.registry.default_registry` lists
the shipped methodologies. This package imports nothing on its own, so nothing registers itself.
"""
