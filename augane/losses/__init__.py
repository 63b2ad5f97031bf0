"""AUGANE's losses as pure functions of tensors, each returning a dict of named terms."""
