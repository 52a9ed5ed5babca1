"""DIMSE interface: the DICOM SCP (echo, store, find, move, get) and SCU (echo, send)."""
