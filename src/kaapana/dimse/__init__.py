"""DIMSE interface: the DICOM SCP (echo, store, find, move, get). The SCU is
``kaapana.dicomnet``."""
