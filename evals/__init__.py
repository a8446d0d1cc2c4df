"""agenticrec.evals."""
