"""DICOMweb interface: QIDO-RS, WADO-RS and STOW-RS (PS3.18)."""
