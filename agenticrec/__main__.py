"""``python -m agenticrec`` is the ``agenticrec`` command."""

from agenticrec.cli import main

main()
