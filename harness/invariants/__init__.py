"""The properties checked after every step, one module each.

Each module has a ``check...`` function returning ``list[Violation]``: empty when the property
holds. None of them knows Hypothesis or how the step was chosen.
"""
