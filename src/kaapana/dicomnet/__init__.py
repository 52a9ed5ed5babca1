"""DICOM networking below the interfaces: the SCU (echo, send, C-FIND and C-GET of a remote
node), DIMSE status codes and the pynetdicom transport fixes the SCP shares. Workflows and
the interfaces call it; it calls no interface."""
