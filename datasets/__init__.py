"""Demonstration datasets (collection, HDF5 reading, windows): see the issue on datasets."""
