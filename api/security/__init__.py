"""Personal-information protection: field validation, encryption at rest, blind index, masking.

The modules here know no HTTP. Every error names the field and the rule it
broke and never contains the value, so it is safe to log and to return.
"""
