"""agenticrec.graphs."""
