"""agenticrec.skills."""
