"""Issuance's domain: the issuance state of a request and the promised dates."""
