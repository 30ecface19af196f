"""The merged tool list: exposed names, routing, the on-disk tool cache."""
