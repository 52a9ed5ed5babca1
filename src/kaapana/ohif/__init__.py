"""The OHIF Viewer as an optional second viewer, fetched from npm into the data dir.

No OHIF code lives in this package: ``install`` downloads the prebuilt ``@ohif/app`` release,
``mount`` makes it work under ``/ohif/``, and ``app_config`` writes the configuration that
points it at this server's DICOMweb.
"""
